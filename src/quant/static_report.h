// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// The --report-out JSON of `tinyq ptq-static`, less run_provenance (which the command adds: it
// knows the command line and every file it read and wrote).

#include <nlohmann/json.hpp>

#include "tinyq/calibrate.h"

namespace tinyq::quant {

/// {"mode": "static", "format": "qdq", "input", "output", "fp32_bytes", "int8_bytes",
///  "size_ratio", "method", "percentile" (percentile only), "per_channel", "activation_type",
///  "weight_type": "int8", "calibration": {"path", "inputs", "samples", "nonfinite_values",
///  "warnings", "ranges_from"}, "nodes_quantised", "quantised": [{"node", "op_type"}],
///  "folded": [...], "left_fp32": [{"node", "op_type", "reason"}], "unquantisable_ops": {op: n},
///  "weights_quantised", "biases_quantised", "activations": [{"tensor", "min", "max",
///  "calibrated_min", "calibrated_max", "scale", "zero_point", "shared_with"}],
///  "value_info_removed", "notes"}
nlohmann::ordered_json static_report_json(const StaticQuantFileResult& result);

}  // namespace tinyq::quant
