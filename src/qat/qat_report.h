// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// The JSON report of a QAT run (without run_provenance, which the caller adds once the files
// are written).

#include <nlohmann/json.hpp>

#include "tinyq/qat.h"

namespace tinyq::qat {

nlohmann::ordered_json qat_report_json(const QatConfig& config, const QatResult& result);

}  // namespace tinyq::qat
