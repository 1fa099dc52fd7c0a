// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include <iomanip>
#include <set>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/cli_util.h"
#include "graph/model_summary.h"
#include "tinyq/model_io.h"

namespace tinyq::cli {
namespace {

nlohmann::json values_json(const std::vector<ValueInfo>& values) {
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& v : values) {
    nlohmann::json dims = nlohmann::json::array();
    for (const auto& d : v.dims) {
      if (d.known()) dims.push_back(d.value);
      else dims.push_back(d.param.empty() ? nlohmann::json() : nlohmann::json(d.param));
    }
    arr.push_back({{"name", v.name}, {"dtype", dtype_name(v.dtype)}, {"shape", v.has_shape ? dims : nlohmann::json()}});
  }
  return arr;
}

int inspect(const std::string& path, bool as_json) {
  require_onnx_file(path);
  LoadedModel loaded = load_model_file(path);
  graph::ModelSummary s = graph::summarize(loaded.model);
  std::set<std::string> data_files;
  for (const auto& ref : loaded.external_data) data_files.insert(ref.location);
  if (as_json) {
    nlohmann::json j = {
        {"file", path},
        {"ir_version", s.ir_version},
        {"opset", s.opset},
        {"producer", s.producer},
        {"inputs", values_json(s.inputs)},
        {"outputs", values_json(s.outputs)},
        {"ops", s.op_histogram},
        {"node_count", s.node_count},
        {"parameter_count", s.parameter_count},
        {"initializer_bytes", s.initializer_bytes},
        {"initializer_bytes_by_type", s.initializer_bytes_by_type},
        {"external_data_files", data_files},
        {"quantised", s.quant_format != graph::QuantFormat::None},
        {"quant_format", graph::quant_format_name(s.quant_format)},
    };
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::cout << path << "\n"
            << "  IR version " << s.ir_version << ", opset " << s.opset << ", producer " << s.producer << "\n";
  for (const auto& v : s.inputs) std::cout << "  input  " << v.name << " " << dtype_name(v.dtype) << " " << v.shape_string() << "\n";
  for (const auto& v : s.outputs) std::cout << "  output " << v.name << " " << dtype_name(v.dtype) << " " << v.shape_string() << "\n";
  std::cout << "  " << s.node_count << " nodes:";
  for (const auto& [op, n] : s.op_histogram) std::cout << " " << op << "×" << n;
  std::cout << "\n  " << s.parameter_count << " parameters (initializer elements), " << s.initializer_bytes << " bytes of initializers";
  if (!s.initializer_bytes_by_type.empty()) {
    std::cout << " (";
    bool first = true;
    for (const auto& [t, b] : s.initializer_bytes_by_type) {
      std::cout << (first ? "" : ", ") << t << " " << b;
      first = false;
    }
    std::cout << ")";
  }
  std::cout << "\n";
  for (const auto& f : data_files) std::cout << "  external data: " << f << "\n";
  std::cout << "  quantisation: " << graph::quant_format_name(s.quant_format) << "\n";
  return 0;
}

}  // namespace

CommandAction setup_inspect(CLI::App& app) {
  auto path = std::make_shared<std::string>();
  auto as_json = std::make_shared<bool>(false);
  app.add_option("model", *path, "ONNX model file")->required();
  app.add_flag("--json", *as_json, "Print JSON instead of text");
  return [=] { return inspect(*path, *as_json); };
}

}  // namespace tinyq::cli
