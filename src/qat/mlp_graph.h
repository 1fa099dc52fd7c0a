// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// The trained MLP as a tinyq Model (opset 13): Sub/Div input scaler, Gemm (transB = 1) + Relu
// per hidden layer, a last Gemm to one output, and an optional Squeeze. Tensor names are
// mlp_tensor_names(spec), which is how the trainer knows where the exporter quantises.

#include <vector>

#include "qat/mlp_trainer.h"
#include "tinyq/model.h"

namespace tinyq::qat {

Model build_mlp_model(const MlpSpec& spec, const std::vector<LayerWeights>& layers);

}  // namespace tinyq::qat
