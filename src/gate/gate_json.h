// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// JSON form of gate rows, for commands that add run_provenance beside them.

#include <nlohmann/json.hpp>
#include <vector>

#include "tinyq/gate.h"

namespace tinyq {

/// One object per row; NaN and infinities become null (JSON has no spelling for them).
nlohmann::json gate_rows_to_json(const std::vector<GateRow>& rows);

}  // namespace tinyq
