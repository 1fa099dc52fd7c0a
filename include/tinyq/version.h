// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

namespace tinyq {

/// "0.1.0".
const char* version_string();
/// The git commit tinyq was built from ("unknown" outside a checkout).
const char* build_commit();

}  // namespace tinyq
