// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include "cli/cli_util.h"

#include "common/file_util.h"

namespace tinyq::cli {

void require_file(const std::string& path) {
  if (!file_exists(path)) throw Error(path, "no such file");
}

void require_onnx_file(const std::string& path) {
  require_file(path);
  if (path.size() < 5 || path.substr(path.size() - 5) != ".onnx")
    throw Error(path, "expected an .onnx model file");
}

}  // namespace tinyq::cli
