// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// `tinyq qat` lives in its own executable, tinyq-qat, installed next to tinyq: linking libtorch
// into the main CLI cost every command ~0.5 s of start-up and ~120 MiB of resident memory for
// libtorch's static initialisers. This row of the command table replaces the process with
// tinyq-qat, passing the command line on unchanged (argv[0] too, for run provenance).

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "cli/command.h"
#include "tinyq/error.h"

namespace tinyq::cli {
namespace {

/// tinyq-qat in the directory of the running executable.
std::string qat_executable() {
  std::vector<char> buf(4096);
  ssize_t n = readlink("/proc/self/exe", buf.data(), buf.size() - 1);
  if (n <= 0) throw Error("qat", std::string("cannot locate the tinyq executable: ") + std::strerror(errno));
  std::string self(buf.data(), static_cast<size_t>(n));
  return self.substr(0, self.rfind('/') + 1) + "tinyq-qat";
}

}  // namespace

CommandAction setup_qat_forward(CLI::App& app) {
  // Everything after `qat`, --help included, belongs to tinyq-qat.
  app.prefix_command();
  app.set_help_flag();
  return [&app]() -> int {
    const std::string exe = qat_executable();
    if (access(exe.c_str(), X_OK) != 0)
      throw Error("qat", "this build has no QAT: " + exe + " is missing (libtorch-dev was not found when tinyq was built)");
    const std::vector<std::string>& line = command_line();
    std::vector<char*> argv;
    for (const std::string& a : line) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(exe.c_str(), argv.data());
    throw Error("qat", "cannot run " + exe + ": " + std::strerror(errno));
  };
}

}  // namespace tinyq::cli
