// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// The built-in MLP (the vmaf_tiny family) as a tinyq Model (opset 13): Sub/Div input scaler,
// Gemm (transB = 1) + Relu per hidden layer, a last Gemm to one output, and an optional Squeeze.

#include <cstdint>
#include <string>
#include <vector>

#include "tinyq/model.h"

namespace tinyq::qat {

struct MlpSpec {
  int64_t inputs = 0;
  std::vector<int64_t> hidden;
  std::vector<float> mean, stddev;  ///< the input scaler, baked in as Sub/Div
  bool squeeze = true;
  std::string input_name = "input";
  std::string output_name = "output";
};

struct LayerWeights {
  std::vector<float> weight;  ///< [out, in] row-major (Gemm transB = 1)
  std::vector<float> bias;    ///< [out]
  int64_t out = 0, in = 0;
};

/// Names of the activation tensors in graph order: input, "scaled" (after Sub/Div), then per
/// layer i "gemm_i" and (hidden layers) "relu_i", then the output (after the optional Squeeze).
std::vector<std::string> mlp_tensor_names(const MlpSpec& spec);

Model build_mlp_model(const MlpSpec& spec, const std::vector<LayerWeights>& layers);

}  // namespace tinyq::qat
