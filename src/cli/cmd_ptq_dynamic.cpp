// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
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
#include "quant/dynamic_report.h"
#include "tinyq/quantize.h"

namespace tinyq::cli {
namespace {

// 80308 -> "80,308".
std::string with_commas(uint64_t v) {
  std::string digits = std::to_string(v), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

struct Args {
  std::string model, output, report;
  bool per_channel = false;
  std::vector<std::string> op_types{"MatMul", "Gemm", "Conv"};
};

int ptq_dynamic(const Args& a) {
  require_onnx_file(a.model);
  DynamicQuantOptions options;
  options.per_channel = a.per_channel;
  options.op_types.clear();
  for (std::string op : a.op_types) {  // "MatMul, Conv" works too
    op.erase(0, op.find_first_not_of(" \t"));
    op.erase(op.find_last_not_of(" \t") + 1);
    if (!op.empty()) options.op_types.push_back(op);
  }
  const std::string output = a.output.empty() ? int8_sibling_path(a.model) : a.output;
  // Checked before any work so a bad report path cannot leave a quantised model behind it.
  if (!a.report.empty() && (same_file(a.report, a.model) || same_file(a.report, output)))
    throw Error(a.report, "--report-out must not be the input or the output model");

  std::cout << "[ptq-dynamic] " << a.model << " -> " << output
            << " per-channel=" << (a.per_channel ? "true" : "false") << std::endl;
  DynamicQuantFileResult r = quantize_dynamic_file(a.model, output, options);
  char ratio[32];
  std::snprintf(ratio, sizeof ratio, "%.2f", r.size_ratio());
  std::cout << "done — " << with_commas(r.fp32_bytes) << " -> " << with_commas(r.int8_bytes) << " bytes ("
            << ratio << "×)\n";
  if (r.rewritten.empty()) std::cerr << "warning: " << a.model << ": no node was quantised\n";
  for (const auto& n : r.left_fp32)
    std::cerr << "note: " << n.op_type << " '" << n.node << "' left fp32: " << n.reason << "\n";

  if (!a.report.empty()) {
    nlohmann::json report = quant::dynamic_report_json(r);
    std::vector<std::string> inputs{r.input};
    inputs.insert(inputs.end(), r.external_data.begin(), r.external_data.end());
    report["run_provenance"] = run_provenance(command_line(), inputs, {r.output});
    write_file_atomic(a.report, report.dump(2) + "\n");
  }
  return 0;
}

}  // namespace

CommandAction setup_ptq_dynamic(CLI::App& app) {
  auto a = std::make_shared<Args>();
  app.add_option("model", a->model, "fp32 ONNX model")->required();
  app.add_option("--output", a->output, "int8 model to write (default: the sibling <basename>.int8.onnx)");
  app.add_flag("--per-channel", a->per_channel, "One weight scale per output channel (MatMul, Gemm and Conv)");
  app.add_option("--op-types", a->op_types, "Op types to quantise, comma-separated (default MatMul,Gemm,Conv)")
      ->delimiter(',');
  app.add_option("--report-out", a->report, "Write a JSON report (sizes, nodes, run provenance)");
  return [a] { return ptq_dynamic(*a); };
}

}  // namespace tinyq::cli
