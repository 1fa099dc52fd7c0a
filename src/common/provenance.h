// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// The run_provenance block every report-writing command (ptq-dynamic, ptq-static, gate, qat)
// puts in its JSON, so a report can be traced back to the tool, the host and the exact bytes it
// read and wrote.

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace tinyq {

/// {"path", "bytes", "sha256"} for a file; {"path", "missing": true} when it cannot be read, so
/// a report can still say which file was absent.
nlohmann::json file_provenance(const std::string& path);

/// Versions of the libraries tinyq was built with: protobuf, libzip, zlib, OpenSSL (the one
/// loaded at run time) and nlohmann_json; header-only versions are the ones compiled against.
nlohmann::json library_versions();

/// The host: CPU model, its int8-relevant features as detected (AVX2, AVX-512 VNNI, AVX-VNNI,
/// AMX, Arm dotprod), the TINYQ_MAX_ISA cap when set, and the OS (uname).
nlohmann::json host_provenance();

/// Current time in UTC as ISO 8601, "2025-01-31T12:34:56Z".
std::string utc_timestamp();

/// The whole block:
///   tool, tool_version, git_commit, command_line (argv as given, and joined shell-quoted),
///   timestamp_utc, host, libraries, inputs[] and outputs[] (file_provenance of each).
/// Output files must already be written; a report cannot carry its own digest, so callers list
/// every file they wrote except the report itself.
nlohmann::json run_provenance(const std::vector<std::string>& argv,
                              const std::vector<std::string>& input_files,
                              const std::vector<std::string>& output_files);

/// argv joined into one line, quoting arguments the shell would split or expand.
std::string shell_join(const std::vector<std::string>& argv);

}  // namespace tinyq
