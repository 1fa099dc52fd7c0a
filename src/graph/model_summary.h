// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tinyq/model.h"

namespace tinyq::graph {

/// How a model is quantised, judged from its ops.
enum class QuantFormat { None, Dynamic, Qdq, QOperator, Mixed };
const char* quant_format_name(QuantFormat f);

struct ModelSummary {
  int64_t ir_version = 0;
  int64_t opset = 0;
  std::string producer;  ///< "name version"
  std::vector<ValueInfo> inputs;  ///< real inputs only
  std::vector<ValueInfo> outputs;
  std::map<std::string, int> op_histogram;  ///< op type -> count, subgraphs included
  int64_t node_count = 0;
  int64_t parameter_count = 0;    ///< elements of every initializer
  uint64_t initializer_bytes = 0;
  std::map<std::string, int64_t> initializer_bytes_by_type;
  QuantFormat quant_format = QuantFormat::None;
};

ModelSummary summarize(const Model& model);

}  // namespace tinyq::graph
