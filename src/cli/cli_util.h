// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

#include <string>

#include "tinyq/error.h"

namespace tinyq::cli {

/// Refuses a path that does not exist or does not end in .onnx, with tinyq's error style.
void require_onnx_file(const std::string& path);
/// Refuses a path that does not exist.
void require_file(const std::string& path);

}  // namespace tinyq::cli
