// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// Each subcommand lives in its own cmd_<name>.cpp and registers itself through this table:
// add the declaration here and one row in main.cpp's kCommands.

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

namespace tinyq::cli {

/// A subcommand's setup: adds its options to `app` and returns the action run after parsing.
/// The action returns the process exit code; tinyq::Error thrown from it becomes
/// `error: <subject>: <what>` and exit 2.
using CommandAction = std::function<int()>;
using CommandSetup = CommandAction (*)(CLI::App& app);

struct CommandDef {
  const char* name;
  const char* summary;
  CommandSetup setup;
};

CommandAction setup_inspect(CLI::App& app);
CommandAction setup_run(CLI::App& app);
CommandAction setup_ptq_dynamic(CLI::App& app);
CommandAction setup_ptq_static(CLI::App& app);
CommandAction setup_registry(CLI::App& app);
CommandAction setup_measure_quant_drop(CLI::App& app);
CommandAction setup_build_calibration_set(CLI::App& app);
CommandAction setup_bench(CLI::App& app);
#ifdef TINYQ_WITH_QAT
CommandAction setup_qat(CLI::App& app);
#endif
/// `tinyq qat` in the main CLI: hands the command line to tinyq-qat (libtorch stays out of
/// every other command's start-up).
CommandAction setup_qat_forward(CLI::App& app);
inline constexpr const char* kQatSummary =
    "Quantisation-aware training (libtorch): fine-tune with fake quantisation, export int8 QDQ";

/// The process's argv as main() received it, for the run_provenance block of reports.
const std::vector<std::string>& command_line();

}  // namespace tinyq::cli
