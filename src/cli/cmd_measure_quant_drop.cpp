// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// `tinyq measure-quant-drop`: the seed's CI accuracy gate. Walks the registry, gates every
// quantised entry (or the one whose onnx is given) and exits 0 when all pass, 1 on a budget
// violation, 2 when the gate could not run (unreadable registry, missing or bad model).

#include <iostream>
#include <memory>

#include "cli/cli_util.h"
#include "cli/command.h"
#include "common/file_util.h"
#include "common/one_line.h"
#include "common/provenance.h"
#include "gate/gate_json.h"
#include "tinyq/gate.h"
#include "tinyq/registry.h"

namespace tinyq::cli {
namespace {

// The seed's default: the fork keeps its registry here, relative to the repo root.
const char* const kDefaultRegistry = "model/tiny/registry.json";

struct GateArgs {
  std::string model;
  bool all = false;
  std::string registry;
  std::string out_json;
  std::string data;
  std::string html;
  std::string output_name;
  bool all_outputs = false;
};

// The entry whose onnx names the given model: the same file, or the registry's own spelling.
const RegistryEntry& entry_for_model(const Registry& reg, const std::string& model) {
  for (const RegistryEntry& e : reg.models)
    if (same_file(reg.fp32_path(e), model) || e.onnx == model) return e;
  throw Error(model, "no entry in " + reg.path + " has this onnx file");
}

int run(const GateArgs& a) {
  if (!a.model.empty() && a.all) throw Error("measure-quant-drop", "give a model or --all, not both");
  // A registry indexes the models in its own folder, so a model's registry sits beside it.
  std::string registry_path = a.registry;
  if (registry_path.empty())
    registry_path = a.model.empty() ? kDefaultRegistry : path_join(path_dirname(a.model), "registry.json");
  if (!a.data.empty()) require_file(a.data);
  Registry reg = load_registry(registry_path);

  std::vector<const RegistryEntry*> entries;
  if (a.model.empty()) {
    for (const RegistryEntry& e : reg.models) entries.push_back(&e);
  } else {
    entries.push_back(&entry_for_model(reg, a.model));
  }

  GateOptions opt;
  opt.data_path = a.data;
  // Under --all one data file serves the models whose input names it holds.
  opt.data_if_present = a.model.empty();
  opt.output_name = a.output_name;
  opt.all_outputs = a.all_outputs;
  opt.keep_values = !a.html.empty();

  std::vector<GateRow> rows;
  bool data_rows = false;
  std::vector<std::string> skipped, inputs{registry_path};
  for (const RegistryEntry* e : entries) {
    if (e->quant_mode == QuantMode::Fp32) {
      std::cout << gate_skip_line(e->id) << std::endl;
      skipped.push_back(e->id);
      continue;
    }
    bool data_row = false, error = false;
    for (GateRow& r : gate_registry_entry(reg, *e, opt)) {
      std::cout << gate_row_line(r) << std::endl;
      data_row = data_row || r.inputs == "data";
      error = error || r.status == GateStatus::Error;
      rows.push_back(std::move(r));
    }
    if (!a.data.empty() && !data_row && !error)
      std::cout << "[skip] " << e->id << " \xe2\x80\x94 inputs=data: " << a.data << " holds none of its inputs" << std::endl;
    data_rows = data_rows || data_row;
    inputs.push_back(reg.fp32_path(*e));
    inputs.push_back(reg.int8_path(*e));
  }
  if (!a.data.empty()) inputs.push_back(a.data);
  int code = gate_exit_code(rows);
  if (!a.data.empty() && !rows.empty() && !data_rows) {
    // Asked for real-data gating and got none: that must not read as a pass.
    std::cerr << "error: " << one_line(a.data) << ": holds no array for the inputs of any gated model\n";
    code = 2;
  }

  std::vector<std::string> outputs;
  if (!a.html.empty()) {
    write_file_atomic(a.html, gate_html_report(rows, "tinyq accuracy gate \xe2\x80\x94 " + registry_path));
    outputs.push_back(a.html);
  }
  if (!a.out_json.empty()) {
    nlohmann::json report;
    report["tool"] = "measure-quant-drop";
    report["registry"] = registry_path;
    report["samples"] = opt.samples;
    report["seed"] = opt.seed;
    report["data"] = a.data.empty() ? nlohmann::json(nullptr) : nlohmann::json(a.data);
    report["output_name"] = a.output_name.empty() ? nlohmann::json(nullptr) : nlohmann::json(a.output_name);
    report["all_outputs"] = a.all_outputs;
    report["rows"] = gate_rows_to_json(rows);
    report["skipped"] = skipped;
    report["pass"] = code == 0;
    report["exit_code"] = code;
    report["run_provenance"] = run_provenance(command_line(), inputs, outputs);
    write_file_atomic(a.out_json, report.dump(2) + "\n");
  }
  return code;
}

}  // namespace

CommandAction setup_measure_quant_drop(CLI::App& app) {
  auto a = std::make_shared<GateArgs>();
  app.add_option("model", a->model, "Gate only the registry entry whose onnx is this file");
  app.add_flag("--all", a->all, "Gate every quantised registry entry (the default without a model)");
  app.add_option("--registry", a->registry,
                 std::string("registry.json (default: beside MODEL, else ") + kDefaultRegistry + ")");
  app.add_option("--out-json", a->out_json, "Write the rows and run provenance as JSON");
  app.add_option("--data", a->data, "Also gate on real inputs: .npz with one [N, ...] array per input name");
  app.add_option("--html", a->html, "Write a self-contained HTML report (scatter, error histogram, numbers)");
  auto* name = app.add_option("--output-name", a->output_name, "Gate this graph output instead of the first");
  auto* each = app.add_flag("--all-outputs", a->all_outputs, "Gate every graph output, one row each");
  name->excludes(each);
  return [a] { return run(*a); };
}

}  // namespace tinyq::cli
