// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

#include <string>

namespace tinyq {

/// Lower-case hex SHA-256 of a byte string (OpenSSL's libcrypto).
std::string sha256_hex(const std::string& bytes);
/// Lower-case hex SHA-256 of a file's contents, streamed.
std::string sha256_file(const std::string& path);

}  // namespace tinyq
