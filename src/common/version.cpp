// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include "tinyq/version.h"

#ifndef TINYQ_GIT_COMMIT
#define TINYQ_GIT_COMMIT "unknown"
#endif

namespace tinyq {

const char* version_string() { return TINYQ_VERSION_STRING; }
const char* build_commit() { return TINYQ_GIT_COMMIT; }

}  // namespace tinyq
