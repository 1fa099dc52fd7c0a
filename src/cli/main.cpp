// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// The tinyq command line: argument parsing and printing only; the work is in the library.

#include <iostream>
#include <map>

#include "cli/command.h"
#include "common/one_line.h"
#include "tinyq/error.h"
#include "tinyq/version.h"

namespace tinyq::cli {
namespace {

#ifdef TINYQ_CLI_QAT_BINARY
// tinyq-qat: the one command that needs libtorch, reached through `tinyq qat`.
const CommandDef kCommands[] = {
    {"qat", kQatSummary, setup_qat},
};
#else
const CommandDef kCommands[] = {
    {"inspect", "Describe an ONNX model: opset, inputs/outputs, ops, parameters, quantisation", setup_inspect},
    {"run", "Run a model on inputs from an .npz and write its outputs to an .npz", setup_run},
    {"ptq-dynamic", "Quantise an fp32 model to int8 (dynamic PTQ, ONNX Runtime's format)", setup_ptq_dynamic},
    {"ptq-static", "Quantise an fp32 model to int8 QDQ, calibrated on sample data (static PTQ)", setup_ptq_static},
    {"registry", "Validate the model registry, resolve a model id, or set its quantisation", setup_registry},
    {"measure-quant-drop", "Accuracy gate: PLCC drop of each int8 model against its fp32 baseline", setup_measure_quant_drop},
    {"build-calibration-set", "Build a calibration .npz from Parquet, CSV or raw YUV (first/random/stratified)", setup_build_calibration_set},
    {"bench", "Latency of a model and its int8 version in tinyq (and, with --ort, ONNX Runtime)", setup_bench},
    {"qat", kQatSummary, setup_qat_forward},
};
#endif

std::vector<std::string> g_command_line;  // argv as given, for run provenance

int main_impl(int argc, char** argv) {
  g_command_line.assign(argv, argv + argc);
  CLI::App app{"tinyq — int8 quantisation and inference for tiny ONNX models"};
  app.name("tinyq");
  app.set_version_flag("--version", std::string("tinyq ") + version_string());
  app.require_subcommand(1);
  std::map<CLI::App*, CommandAction> actions;
  for (const auto& def : kCommands) {
    CLI::App* sub = app.add_subcommand(def.name, def.summary);
    actions[sub] = def.setup(*sub);
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "error: "
              << one_line(e.get_name() == "RequiredError" && app.get_subcommands().empty()
                              ? std::string("a command is required (see tinyq --help)")
                              : std::string(e.what()))
              << "\n";
    return 2;
  }
  for (CLI::App* sub : app.get_subcommands()) return actions.at(sub)();
  return 2;
}

}  // namespace

const std::vector<std::string>& command_line() { return g_command_line; }

}  // namespace tinyq::cli

int main(int argc, char** argv) {
  try {
    return tinyq::cli::main_impl(argc, argv);
  } catch (const tinyq::Error& e) {
    std::cerr << "error: " << tinyq::one_line(e.message()) << "\n";
  } catch (const std::bad_alloc&) {
    std::cerr << "error: out of memory\n";
  } catch (const std::exception& e) {
    std::cerr << "error: " << tinyq::one_line(e.what()) << "\n";
  }
  return 2;
}
