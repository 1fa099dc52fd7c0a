// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include "quant/dynamic_report.h"

#include <map>

namespace tinyq::quant {

nlohmann::json dynamic_report_json(const DynamicQuantFileResult& r) {
  std::map<std::string, int> by_op;
  nlohmann::json rewritten = nlohmann::json::array();
  for (const auto& n : r.rewritten) {
    ++by_op[n.op_type];
    rewritten.push_back({{"node", n.node}, {"op_type", n.op_type}});
  }
  nlohmann::json left = nlohmann::json::array();
  for (const auto& n : r.left_fp32) left.push_back({{"node", n.node}, {"op_type", n.op_type}, {"reason", n.reason}});
  return {
      {"mode", "dynamic"},
      {"input", r.input},
      {"output", r.output},
      {"external_data", r.external_data},
      {"fp32_bytes", r.fp32_bytes},
      {"int8_bytes", r.int8_bytes},
      {"size_ratio", r.size_ratio()},
      {"per_channel", r.options.per_channel},
      {"op_types", r.options.op_types},
      {"nodes_rewritten", r.rewritten.size()},
      {"rewritten_by_op_type", by_op},
      {"rewritten", rewritten},
      {"left_fp32", left},
      {"value_info_removed", r.value_info_removed},
  };
}

}  // namespace tinyq::quant
