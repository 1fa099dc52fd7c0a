// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// Which initializers QAT trains, and where it fake-quantises: exactly where tinyq's static QDQ
// exporter (quantize_static, src/quant) will put Q/DQ pairs in the int8 file, so the network
// trains against the arithmetic it will run with.

#include <string>
#include <vector>

#include "qat/graph_trainer.h"
#include "tinyq/calibrate.h"
#include "tinyq/model.h"

namespace tinyq::qat {

/// The weights and biases of Conv, Gemm and MatMul nodes (their float32 initializer inputs), in
/// graph order. Everything else (input scalers, Clip bounds, shapes) stays as it is.
std::vector<std::string> trainable_initializers(const Model& model);

/// static_quant_plan's activations (a Relu/Clip folded into its producer contributes its output,
/// the range after clipping) and weights with their axes (per tensor when `options.per_channel`
/// is off); excluded nodes keep theirs in float.
FakeQuantPlan fake_quant_plan(const Model& model, const StaticQuantOptions& options, bool running_minmax);

}  // namespace tinyq::qat
