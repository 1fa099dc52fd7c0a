// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include "common/provenance.h"

#include <openssl/crypto.h>
#include <sys/utsname.h>

#include <cstdlib>
#include <ctime>

#include "common/cpu_features.h"
#include "common/file_util.h"
#include "common/sha256.h"
#include "tinyq/error.h"
#include "tinyq/version.h"

// Only the version macros are read from these headers; common does not link the libraries, so
// the value is the version tinyq was compiled against (the layers that use them link the same
// Debian packages).
#if __has_include(<google/protobuf/stubs/common.h>)
#include <google/protobuf/stubs/common.h>
#endif
#if __has_include(<zipconf.h>)
#include <zipconf.h>
#endif
#if __has_include(<zlib.h>)
#include <zlib.h>
#endif

namespace tinyq {

nlohmann::json file_provenance(const std::string& path) {
  nlohmann::json j;
  j["path"] = path;
  try {
    // A file that vanished or cannot be read is reported as missing rather than failing the
    // whole report: the report is often written because something went wrong.
    j["bytes"] = file_size(path);
    j["sha256"] = sha256_file(path);
  } catch (const Error&) {
    j.erase("bytes");
    j["missing"] = true;
  }
  return j;
}

nlohmann::json library_versions() {
  nlohmann::json j;
#ifdef GOOGLE_PROTOBUF_VERSION
  // 3021012 -> "3.21.12".
  j["protobuf"] = std::to_string(GOOGLE_PROTOBUF_VERSION / 1000000) + "." +
                  std::to_string(GOOGLE_PROTOBUF_VERSION / 1000 % 1000) + "." +
                  std::to_string(GOOGLE_PROTOBUF_VERSION % 1000);
#endif
#ifdef LIBZIP_VERSION
  j["libzip"] = LIBZIP_VERSION;
#endif
#ifdef ZLIB_VERSION
  j["zlib"] = ZLIB_VERSION;
#endif
  j["openssl"] = OpenSSL_version(OPENSSL_VERSION);
  j["nlohmann_json"] = std::to_string(NLOHMANN_JSON_VERSION_MAJOR) + "." +
                       std::to_string(NLOHMANN_JSON_VERSION_MINOR) + "." +
                       std::to_string(NLOHMANN_JSON_VERSION_PATCH);
#if defined(__clang__)
  j["compiler"] = std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
  j["compiler"] = std::string("gcc ") + __VERSION__;
#endif
  return j;
}

nlohmann::json host_provenance() {
  // The detected features, not the capped ones: provenance records the machine; the cap is
  // reported beside it because it changes which kernels ran.
  const CpuFeatures& f = cpu_features_detected();
  nlohmann::json j;
  j["cpu_model"] = f.model_name;
  j["int8_features"] = {{"avx2", f.avx2},
                        {"avx512_vnni", f.avx512vnni},
                        {"avx_vnni", f.avx_vnni},
                        {"amx_int8", f.amx_int8},
                        {"arm_dotprod", f.arm_dotprod}};
  j["cpu_features"] = f.to_string();
  const char* cap = std::getenv("TINYQ_MAX_ISA");
  j["max_isa"] = cap && *cap ? nlohmann::json(cap) : nlohmann::json(nullptr);
  j["kernel_features"] = cpu_features().to_string();
  struct utsname u {};
  if (::uname(&u) == 0) {
    j["os"] = std::string(u.sysname) + " " + u.release;
    j["arch"] = u.machine;
  }
  return j;
}

std::string utc_timestamp() {
  std::time_t now = std::time(nullptr);
  std::tm tm {};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string shell_join(const std::vector<std::string>& argv) {
  std::string out;
  for (const std::string& arg : argv) {
    if (!out.empty()) out += ' ';
    bool plain = !arg.empty();
    for (char c : arg) {
      bool safe = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  std::string("-_./=:,+@%").find(c) != std::string::npos;
      if (!safe) plain = false;
    }
    if (plain) {
      out += arg;
      continue;
    }
    // Single quotes keep everything literal; an embedded quote closes, escapes and reopens.
    out += '\'';
    for (char c : arg) {
      if (c == '\'')
        out += "'\\''";
      else
        out += c;
    }
    out += '\'';
  }
  return out;
}

nlohmann::json run_provenance(const std::vector<std::string>& argv,
                              const std::vector<std::string>& input_files,
                              const std::vector<std::string>& output_files) {
  nlohmann::json j;
  j["tool"] = "tinyq";
  j["tool_version"] = version_string();
  j["git_commit"] = build_commit();
  j["command_line"] = shell_join(argv);
  j["argv"] = argv;
  j["timestamp_utc"] = utc_timestamp();
  j["host"] = host_provenance();
  j["libraries"] = library_versions();
  j["inputs"] = nlohmann::json::array();
  for (const std::string& p : input_files) j["inputs"].push_back(file_provenance(p));
  j["outputs"] = nlohmann::json::array();
  for (const std::string& p : output_files) j["outputs"].push_back(file_provenance(p));
  return j;
}

}  // namespace tinyq
