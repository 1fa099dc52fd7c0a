// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// `tinyq registry validate|resolve|set`: the model registry from the command line.
// validate exits 0 when valid, 1 when invalid (one line per problem on stdout), 2 when the
// registry cannot be read; set exits 1 when the edit would make the registry invalid.

#include <iostream>
#include <memory>

#include "cli/command.h"
#include "tinyq/registry.h"

namespace tinyq::cli {
namespace {

// Where the fork keeps its registry, relative to the repo root.
const char* const kDefaultRegistry = "model/tiny/registry.json";

struct RegistryArgs {
  std::string registry = kDefaultRegistry;
  std::string root = ".";
  bool check_files = false;
  std::string id;
  std::string quant_mode;
  double budget = 0.0;
  std::string calibration_set;
  std::string int8_file;
};

int run_validate(const RegistryArgs& a) {
  RegistryOptions opts;
  opts.root = a.root;
  opts.check_files = a.check_files;
  RegistryReport report = validate_registry(a.registry, opts);
  for (const auto& line : report.problems) std::cout << line << "\n";
  if (!report.ok()) {
    std::cerr << a.registry << ": invalid, " << report.problems.size()
              << (report.problems.size() == 1 ? " problem" : " problems") << "\n";
    return 1;
  }
  std::cout << a.registry << ": valid (" << report.registry.models.size() << " models, schema "
            << report.schema << (a.check_files ? ", files checked" : "") << ")\n";
  return 0;
}

int run_resolve(const RegistryArgs& a) {
  RegistryOptions opts;
  opts.root = a.root;
  Registry reg = load_registry(a.registry, opts);
  const RegistryEntry& e = reg.at(a.id);
  std::cout << reg.resolved_path(e) << "\n" << resolve_reason(reg, e) << "\n";
  return 0;
}

int run_set(const RegistryArgs& a, const CLI::App& sub) {
  auto mode = parse_quant_mode(a.quant_mode);
  if (!mode) throw Error("--quant-mode", "\"" + a.quant_mode + "\" is not one of fp32, dynamic, static, qat");
  RegistryUpdate up;
  up.quant_mode = *mode;
  if (sub.count("--budget")) up.budget = a.budget;
  if (sub.count("--calibration-set")) up.calibration_set = a.calibration_set;
  if (sub.count("--int8")) up.int8_file = a.int8_file;
  RegistryOptions opts;
  opts.root = a.root;
  RegistryUpdateResult r = update_registry_entry(a.registry, a.id, up, opts);
  if (!r.written) {
    for (const auto& line : r.problems) std::cout << line << "\n";
    std::cerr << a.registry << ": not written: the edit would make the registry invalid\n";
    return 1;
  }
  std::cout << a.registry << ": " << a.id << " set to quant_mode " << quant_mode_name(*mode);
  if (!r.int8_sha256.empty()) std::cout << ", int8_sha256 " << r.int8_sha256;
  std::cout << "\n";
  return 0;
}

}  // namespace

CommandAction setup_registry(CLI::App& app) {
  auto a = std::make_shared<RegistryArgs>();
  app.require_subcommand(1);
  auto add_common = [&](CLI::App* sub) {
    sub->add_option("--registry", a->registry, "registry.json to read")->capture_default_str();
    sub->add_option("--root", a->root, "Repo root that quant_calibration_set paths are relative to")
        ->capture_default_str();
  };

  CLI::App* validate = app.add_subcommand("validate", "Check the registry against its schema and cross-field rules");
  add_common(validate);
  validate->add_flag("--check-files", a->check_files,
                     "Also check that each file exists, matches its digest, loads, and agrees with its sidecar");

  CLI::App* resolve = app.add_subcommand("resolve", "Print the file the loader opens for a model id, and why");
  resolve->add_option("id", a->id, "Model id")->required();
  add_common(resolve);

  CLI::App* set = app.add_subcommand("set", "Change a model's quantisation fields (atomic rewrite)");
  set->add_option("id", a->id, "Model id")->required();
  add_common(set);
  set->add_option("--quant-mode", a->quant_mode, "fp32, dynamic, static or qat")->required();
  set->add_option("--budget", a->budget, "quant_accuracy_budget_plcc, in [0, 1]");
  set->add_option("--calibration-set", a->calibration_set, "Calibration data, relative to the repo root");
  set->add_option("--int8", a->int8_file, "The int8 model (copied beside the fp32 model when elsewhere)");

  return [a, validate, resolve, set]() -> int {
    if (validate->parsed()) return run_validate(*a);
    if (resolve->parsed()) return run_resolve(*a);
    if (set->parsed()) return run_set(*a, *set);
    return 2;
  };
}

}  // namespace tinyq::cli
