// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// The per-op QDQ quantisers, one row per op type (ONNX Runtime's QDQRegistry and the QLinear
// ops its quantize_static uses by default). A quantiser only marks tensors on the QdqWriter;
// the writer does the graph edits.

#include <map>
#include <string>
#include <vector>

#include "quant/qdq_writer.h"

namespace tinyq::quant {

struct QdqOpQuantiser {
  const char* op_type;
  /// Marks what the node needs; returns "" when it took part, else why it stays fp32.
  std::string (*quantise)(QdqWriter& w, const Node& node, size_t index);
};

const std::vector<QdqOpQuantiser>& qdq_quantisers();
const QdqOpQuantiser* find_qdq_quantiser(const std::string& op_type);

/// ONNX Runtime's range adjustments before the rewrite: the input of a Relu/Clip that is its
/// only reader takes the activation's output range (the clipped part can never reach the
/// next op), and a Softmax output is [0, 1]. `skip` holds excluded node names.
void adjust_ranges(const Graph& g, std::map<std::string, TensorRange>& ranges, const std::vector<std::string>& skip);

}  // namespace tinyq::quant
