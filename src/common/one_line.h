// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// Messages about a file quote what the file holds (node, input and tensor names, paths), and a
// hostile file can put newlines, control characters or invalid UTF-8 there. Every error that
// leaves tinyq (the CLI's `error:` line, the C API's last error, a registry problem) goes
// through one_line, so it stays one printable line.

#include <string>
#include <string_view>

namespace tinyq {

/// `text` with control characters written as \n, \r, \t or \xNN, a backslash as \\, and bytes
/// that are not UTF-8 as \xNN; valid UTF-8 (accents, CJK) is kept as it is.
std::string one_line(std::string_view text);

}  // namespace tinyq
