// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include "quant/static_report.h"

namespace tinyq::quant {
namespace {

nlohmann::ordered_json nodes_json(const std::vector<QuantNodeRecord>& nodes, bool with_reason) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const auto& n : nodes) {
    nlohmann::ordered_json j = {{"node", n.node}, {"op_type", n.op_type}};
    if (with_reason) j["reason"] = n.reason;
    out.push_back(std::move(j));
  }
  return out;
}

}  // namespace

nlohmann::ordered_json static_report_json(const StaticQuantFileResult& r) {
  const RangeTable& t = r.ranges;
  nlohmann::ordered_json j;
  j["mode"] = "static";
  j["format"] = "qdq";
  j["input"] = r.input;
  j["output"] = r.output;
  j["fp32_bytes"] = r.fp32_bytes;
  j["int8_bytes"] = r.int8_bytes;
  j["size_ratio"] = r.size_ratio();
  j["method"] = calibration_method_name(t.method);
  if (t.method == CalibrationMethod::Percentile) j["percentile"] = t.percentile;
  j["per_channel"] = r.options.quant.per_channel;
  j["activation_type"] = activation_type_name(r.options.quant.activation_type);
  j["weight_type"] = "int8";
  j["calibration"] = {{"path", r.calibration},
                      {"ranges_from", r.options.ranges_in.empty() ? "calibration" : r.options.ranges_in},
                      {"inputs", t.inputs},
                      {"samples", t.samples},
                      {"nonfinite_values", r.calibration_nonfinite},
                      {"warnings", r.calibration_warnings}};
  j["excluded_nodes"] = r.options.quant.exclude_nodes;
  j["nodes_quantised"] = r.quant.quantised.size();
  j["quantised"] = nodes_json(r.quant.quantised, false);
  j["folded"] = nodes_json(r.quant.folded, false);
  j["left_fp32"] = nodes_json(r.quant.left_fp32, true);
  j["unquantisable_ops"] = r.quant.unquantisable_ops;
  j["weights_quantised"] = r.quant.weights_quantised;
  j["biases_quantised"] = r.quant.biases_quantised;
  nlohmann::ordered_json acts = nlohmann::ordered_json::array();
  for (const auto& a : r.quant.activations) {
    nlohmann::ordered_json x = {{"tensor", a.tensor},
                                {"min", static_cast<double>(a.min)},
                                {"max", static_cast<double>(a.max)}};
    const std::string& source = a.shared_with.empty() ? a.tensor : a.shared_with;
    if (const TensorRange* cal = t.find(source)) {
      x["calibrated_min"] = static_cast<double>(cal->observed_min);
      x["calibrated_max"] = static_cast<double>(cal->observed_max);
    }
    x["scale"] = static_cast<double>(a.scale);
    x["zero_point"] = a.zero_point;
    if (!a.shared_with.empty()) x["shared_with"] = a.shared_with;
    acts.push_back(std::move(x));
  }
  j["activations"] = std::move(acts);
  j["value_info_removed"] = r.quant.value_info_removed;
  j["notes"] = r.quant.notes;
  return j;
}

}  // namespace tinyq::quant
