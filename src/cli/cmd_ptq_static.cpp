// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// `tinyq ptq-static`: static PTQ to ONNX Runtime's QDQ format, calibrated on an .npz (or the
// registry's quant_calibration_set for the model).

#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/cli_util.h"
#include "cli/command.h"
#include "common/file_util.h"
#include "common/provenance.h"
#include "quant/static_report.h"
#include "tinyq/calibrate.h"
#include "tinyq/registry.h"

namespace tinyq::cli {
namespace {

struct Args {
  std::string model, calibration, output, report, method = "minmax", activation_type = "int8";
  std::string registry, root = ".", ranges_in, ranges_out;
  double percentile = 99.999;
  bool per_channel = false, allow_nonfinite = false;
  std::vector<std::string> exclude_nodes;
  int threads = 0;
};

// The registry entry's calibration set for this model: the given registry, else a registry.json
// beside the model. Returns "" when there is none. An explicit --registry that cannot be read is
// an error; a registry merely found beside the model is skipped with a warning.
std::string calibration_from_registry(const Args& a) {
  const bool explicit_registry = !a.registry.empty();
  const std::string path = explicit_registry ? a.registry : path_join(path_dirname(a.model), "registry.json");
  if (!file_exists(path)) {
    if (explicit_registry) throw Error(path, "no such file");
    return "";
  }
  RegistryOptions opts;
  opts.root = a.root;
  Registry reg;
  try {
    reg = load_registry(path, opts);
  } catch (const Error& e) {
    if (explicit_registry) throw;
    std::cerr << "warning: " << e.message() << " (registry not used)\n";
    return "";
  }
  for (const auto& e : reg.models) {
    if (!same_file(reg.fp32_path(e), a.model)) continue;
    if (e.quant_calibration_set.empty()) {
      std::cerr << "note: " << path << ": " << e.label() << " has no quant_calibration_set\n";
      return "";
    }
    return reg.calibration_path(e);
  }
  return "";
}

int ptq_static(const Args& a) {
  require_onnx_file(a.model);
  StaticQuantFileOptions options;
  options.quant.per_channel = a.per_channel;
  options.quant.exclude_nodes = a.exclude_nodes;
  options.allow_nonfinite = a.allow_nonfinite;
  options.ranges_in = a.ranges_in;
  options.calibration.threads = a.threads;
  options.calibration.percentile = a.percentile;
  const auto method = parse_calibration_method(a.method);
  if (!method) throw Error("--calibrate-method", "'" + a.method + "' is not one of minmax, percentile, entropy, mse");
  options.calibration.method = *method;
  const auto act = parse_activation_type(a.activation_type);
  if (!act) throw Error("--activation-type", "'" + a.activation_type + "' is not int8 or uint8");
  options.quant.activation_type = *act;
  if (!(a.percentile > 0.0 && a.percentile <= 100.0))
    throw Error("--percentile", "must be in (0, 100], got " + std::to_string(a.percentile));
  if (!a.ranges_in.empty()) require_file(a.ranges_in);

  std::string calibration = a.calibration;
  if (calibration.empty() && a.ranges_in.empty()) {
    calibration = calibration_from_registry(a);
    if (calibration.empty())
      throw Error(a.model, "needs calibration data: pass --calibration SET.npz (one array per model input, each a "
                           "stack [N, ...]), or give the model a quant_calibration_set in its registry");
    std::cout << "[ptq-static] calibration set from the registry: " << calibration << "\n";
  }
  if (!calibration.empty()) require_file(calibration);

  const std::string output = a.output.empty() ? int8_sibling_path(a.model) : a.output;
  // Checked before any work so a bad path cannot leave a quantised model behind it.
  for (const std::string* side : {&a.report, &a.ranges_out}) {
    if (side->empty()) continue;
    if (same_file(*side, a.model) || same_file(*side, output) || (!calibration.empty() && same_file(*side, calibration)))
      throw Error(*side, "must not be the input model, the output model or the calibration set");
  }

  std::cout << "[ptq-static] " << a.model << " -> " << output << " method=" << a.method
            << " per-channel=" << (a.per_channel ? "true" : "false") << " activations=" << a.activation_type
            << std::endl;
  StaticQuantFileResult r = quantize_static_file(a.model, output, calibration, options);
  for (const auto& w : r.calibration_warnings) std::cerr << "warning: " << calibration << ": " << w << "\n";
  char ratio[32];
  std::snprintf(ratio, sizeof ratio, "%.2f", r.size_ratio());
  std::cout << "done — " << r.fp32_bytes << " -> " << r.int8_bytes << " bytes (" << ratio << "×), "
            << r.quant.activations.size() << " activations and " << r.quant.weights_quantised
            << " weights quantised, calibrated on " << r.ranges.samples << " samples\n";
  if (r.quant.quantised.empty()) std::cerr << "warning: " << a.model << ": no node was quantised\n";
  for (const auto& n : r.quant.left_fp32)
    std::cerr << "note: " << n.op_type << " '" << n.node << "' left fp32: " << n.reason << "\n";
  for (const auto& n : r.quant.notes) std::cerr << "note: " << n << "\n";

  if (!a.ranges_out.empty()) write_file_atomic(a.ranges_out, range_table_to_json(r.ranges));
  if (!a.report.empty()) {
    nlohmann::ordered_json report = quant::static_report_json(r);
    std::vector<std::string> inputs{r.input};
    if (!r.calibration.empty()) inputs.push_back(r.calibration);
    if (!a.ranges_in.empty()) inputs.push_back(a.ranges_in);
    std::vector<std::string> outputs{r.output};
    if (!a.ranges_out.empty()) outputs.push_back(a.ranges_out);
    report["run_provenance"] = run_provenance(command_line(), inputs, outputs);
    write_file_atomic(a.report, report.dump(2) + "\n");
  }
  return 0;
}

}  // namespace

CommandAction setup_ptq_static(CLI::App& app) {
  auto a = std::make_shared<Args>();
  app.add_option("model", a->model, "fp32 ONNX model")->required();
  CLI::Option* calibration = app.add_option("--calibration", a->calibration,
                 "Calibration .npz: one array per model input, each a stack [N, ...] of samples (default: the "
                 "registry's quant_calibration_set for the model)");
  app.add_option("--output", a->output, "int8 model to write (default: the sibling <basename>.int8.onnx)");
  app.add_flag("--per-channel", a->per_channel, "One weight scale per output channel");
  app.add_option("--calibrate-method", a->method, "minmax (default), percentile, entropy or mse");
  app.add_option("--percentile", a->percentile, "Percentile of |x| kept by --calibrate-method percentile")
      ->capture_default_str();
  app.add_option("--activation-type", a->activation_type, "int8 (default) or uint8");
  app.add_option("--exclude-nodes", a->exclude_nodes, "Node names kept fp32, comma-separated")->delimiter(',');
  app.add_flag("--allow-nonfinite", a->allow_nonfinite, "Calibrate on data holding NaN/Inf, skipping those values");
  app.add_option("--report-out", a->report, "Write a JSON report (ranges, sizes, nodes, run provenance)");
  app.add_option("--registry", a->registry, "Registry to find the calibration set in (default: registry.json "
                                            "beside the model)");
  app.add_option("--root", a->root, "Repo root that quant_calibration_set paths are relative to")->capture_default_str();
  app.add_option("--ranges-out", a->ranges_out, "Also write the calibrated range table (JSON)");
  app.add_option("--ranges", a->ranges_in, "Use a saved range table instead of calibrating")->excludes(calibration);
  app.add_option("--threads", a->threads, "Calibration worker threads (default: up to 4)");
  return [a] { return ptq_static(*a); };
}

}  // namespace tinyq::cli
