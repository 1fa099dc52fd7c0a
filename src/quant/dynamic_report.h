// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// The --report-out JSON of `tinyq ptq-dynamic`, less run_provenance (which the command adds:
// it knows the command line and the files it wrote).

#include <nlohmann/json.hpp>

#include "tinyq/quantize.h"

namespace tinyq::quant {

/// {"mode": "dynamic", "input", "output", "external_data", "fp32_bytes", "int8_bytes", "size_ratio",
///  "per_channel", "op_types", "nodes_rewritten", "rewritten_by_op_type": {op: n},
///  "rewritten": [{"node", "op_type"}], "left_fp32": [{"node", "op_type", "reason"}],
///  "value_info_removed"}
nlohmann::json dynamic_report_json(const DynamicQuantFileResult& result);

}  // namespace tinyq::quant
