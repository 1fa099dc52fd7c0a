// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// Per-model sidecars (<basename>.json beside the model): the fork writes them in two styles
// (input_name/output_name with optional input_shape/output_shape, or input_names/output_names
// lists), with feature lists (features / feature_order) and normalisation vectors (input_mean,
// input_std, feature_mean, feature_std). Some also repeat registry fields (id, kind, onnx,
// sha256, opset/onnx_opset, quant_*), which must then agree with the registry.

#include <algorithm>
#include <cmath>
#include <optional>

#include "common/file_util.h"
#include "registry/registry_internal.h"

namespace tinyq::registry {
namespace {

using nlohmann::json;

std::string shape_text(const std::vector<int64_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? "," : "") + std::to_string(dims[i]);
  return s + "]";
}

std::string names_text(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : ", ") + n;
  return s.empty() ? "none" : s;
}

class SidecarCheck {
 public:
  SidecarCheck(const std::string& path, const json& doc, std::vector<std::string>& out)
      : name_("sidecar " + path_basename(path)), doc_(doc), out_(out) {}

  void add(const std::string& text) { out_.push_back(name_ + ": " + text); }

  // A string field, or nullopt (with a problem when present with the wrong type).
  std::optional<std::string> string_field(const char* key) {
    if (!doc_.contains(key)) return std::nullopt;
    if (!doc_[key].is_string()) {
      add(std::string(key) + " must be a string, not " + json_text(doc_[key]));
      return std::nullopt;
    }
    return doc_[key].get<std::string>();
  }

  std::optional<std::vector<std::string>> strings_field(const char* key) {
    if (!doc_.contains(key)) return std::nullopt;
    const json& v = doc_[key];
    std::vector<std::string> out;
    bool ok = v.is_array();
    for (size_t i = 0; ok && i < v.size(); ++i) {
      ok = v[i].is_string();
      if (ok) out.push_back(v[i].get<std::string>());
    }
    if (!ok) {
      add(std::string(key) + " must be an array of strings");
      return std::nullopt;
    }
    return out;
  }

  std::optional<std::vector<int64_t>> shape_field(const char* key) {
    if (!doc_.contains(key)) return std::nullopt;
    const json& v = doc_[key];
    std::vector<int64_t> out;
    bool ok = v.is_array();
    for (size_t i = 0; ok && i < v.size(); ++i) {
      ok = v[i].is_number_integer() && v[i].get<int64_t>() >= -1;
      if (ok) out.push_back(v[i].get<int64_t>());
    }
    if (!ok) {
      add(std::string(key) + " must be an array of dimensions (integers >= 0, or -1 for a dynamic one)");
      return std::nullopt;
    }
    return out;
  }

  std::optional<size_t> numbers_length(const char* key) {
    if (!doc_.contains(key)) return std::nullopt;
    const json& v = doc_[key];
    bool ok = v.is_array();
    for (size_t i = 0; ok && i < v.size(); ++i) ok = v[i].is_number() && std::isfinite(v[i].get<double>());
    if (!ok) {
      add(std::string(key) + " must be an array of finite numbers");
      return std::nullopt;
    }
    return v.size();
  }

  // Names from `single` (one string) or `list` (an array); `complete` tells the list form apart.
  std::vector<std::string> names(const char* single, const char* list, bool* complete) {
    std::vector<std::string> out;
    *complete = false;
    if (auto one = string_field(single)) out.push_back(*one);
    if (auto many = strings_field(list)) {
      *complete = true;
      for (const auto& n : *many)
        if (std::find(out.begin(), out.end(), n) == out.end()) out.push_back(n);
    }
    return out;
  }

  void mirror(const char* key, const std::string& registry_value) {
    auto v = string_field(key);
    if (v && !registry_value.empty() && *v != registry_value)
      add(std::string(key) + " \"" + *v + "\" differs from the registry's \"" + registry_value + "\"");
  }

  const std::string name_;
  const json& doc_;
  std::vector<std::string>& out_;
};

// Sidecar names and shape against the graph's inputs (or outputs).
void check_io(SidecarCheck& c, const char* what, const std::vector<std::string>& names, bool complete,
              const std::optional<std::vector<int64_t>>& shape, const char* shape_key,
              const std::vector<const ValueInfo*>& graph_values, const std::string& model_name) {
  std::vector<std::string> graph_names;
  for (const ValueInfo* v : graph_values) graph_names.push_back(v->name);
  for (const auto& n : names) {
    if (std::find(graph_names.begin(), graph_names.end(), n) == graph_names.end())
      c.add(std::string(what) + " '" + n + "' is not an " + what + " of " + model_name + " (its " + what +
            "s: " + names_text(graph_names) + ")");
  }
  if (complete && names.size() != graph_names.size())
    c.add("lists " + std::to_string(names.size()) + " " + what + "s, " + model_name + " has " +
          std::to_string(graph_names.size()) + " (" + names_text(graph_names) + ")");
  if (!shape || names.empty()) return;
  const ValueInfo* target = nullptr;
  for (const ValueInfo* v : graph_values)
    if (v->name == names.front()) target = v;
  if (!target || !target->has_shape) return;
  bool ok = target->dims.size() == shape->size();
  for (size_t i = 0; ok && i < shape->size(); ++i)
    if ((*shape)[i] >= 0 && target->dims[i].known() && target->dims[i].value != (*shape)[i]) ok = false;
  if (!ok)
    c.add(std::string(shape_key) + " " + shape_text(*shape) + " does not match " + what + " '" + target->name +
          "' of " + model_name + ", declared " + target->shape_string());
}

}  // namespace

std::vector<std::string> sidecar_problems(const std::string& sidecar_path, const RegistryEntry& e,
                                          const Model* model, const std::string& model_name) {
  std::vector<std::string> out;
  json doc;
  try {
    doc = read_json_file(sidecar_path, 16u << 20);
  } catch (const Error& err) {
    out.push_back("sidecar " + err.message());
    return out;
  }
  SidecarCheck c(sidecar_path, doc, out);
  if (!doc.is_object()) {
    c.add("must be a JSON object");
    return out;
  }

  // Fields that repeat the registry must agree with it.
  c.mirror("id", e.id);
  c.mirror("kind", e.kind);
  c.mirror("onnx", e.onnx);
  c.mirror("sha256", e.sha256);
  c.mirror("int8_sha256", e.int8_sha256);
  c.mirror("quant_mode", quant_mode_name(e.quant_mode));
  for (const char* key : {"opset", "onnx_opset"}) {
    if (!doc.contains(key)) continue;
    if (!doc[key].is_number_integer()) c.add(std::string(key) + " must be an integer, not " + json_text(doc[key]));
    else if (e.opset != 0 && doc[key].get<int64_t>() != e.opset)
      c.add(std::string(key) + " " + doc[key].dump() + " differs from the registry's opset " + std::to_string(e.opset));
  }
  if (doc.contains("quant_accuracy_budget_plcc")) {
    const json& b = doc["quant_accuracy_budget_plcc"];
    if (!b.is_number()) c.add("quant_accuracy_budget_plcc must be a number, not " + json_text(b));
    else if (b.get<double>() != e.quant_accuracy_budget_plcc)
      c.add("quant_accuracy_budget_plcc " + b.dump() + " differs from the registry's " +
            json(e.quant_accuracy_budget_plcc).dump());
  }

  bool inputs_complete = false, outputs_complete = false;
  std::vector<std::string> inputs = c.names("input_name", "input_names", &inputs_complete);
  std::vector<std::string> outputs = c.names("output_name", "output_names", &outputs_complete);
  auto input_shape = c.shape_field("input_shape");
  auto output_shape = c.shape_field("output_shape");

  // Feature names and the per-feature normalisation vectors must have one value per feature.
  std::optional<size_t> feature_count;
  for (const char* key : {"features", "feature_order"}) {
    auto f = c.strings_field(key);
    if (!f) continue;
    if (feature_count && *feature_count != f->size())
      c.add(std::string(key) + " has " + std::to_string(f->size()) + " names, another feature list has " +
            std::to_string(*feature_count));
    if (!feature_count) feature_count = f->size();
  }
  for (const char* key : {"input_mean", "input_std", "feature_mean", "feature_std"}) {
    auto n = c.numbers_length(key);
    if (!n) continue;
    if (!feature_count) feature_count = *n;
    else if (*n != *feature_count)
      c.add(std::string(key) + " has " + std::to_string(*n) + " values for " + std::to_string(*feature_count) + " features");
  }

  if (!model) return out;
  std::vector<const ValueInfo*> graph_inputs = model->graph.real_inputs();
  std::vector<const ValueInfo*> graph_outputs;
  for (const auto& o : model->graph.outputs) graph_outputs.push_back(&o);
  check_io(c, "input", inputs, inputs_complete, input_shape, "input_shape", graph_inputs, model_name);
  check_io(c, "output", outputs, outputs_complete, output_shape, "output_shape", graph_outputs, model_name);

  // The features feed the first named input (the fork's feature-vector models): its last
  // dimension, when fixed, is the feature count.
  if (feature_count && !inputs.empty()) {
    for (const ValueInfo* v : graph_inputs) {
      if (v->name != inputs.front() || !v->has_shape || v->dims.empty() || !v->dims.back().known()) continue;
      if (v->dims.back().value != static_cast<int64_t>(*feature_count))
        c.add(std::to_string(*feature_count) + " features, but input '" + v->name + "' of " + model_name +
              " takes " + std::to_string(v->dims.back().value) + " per row (" + v->shape_string() + ")");
    }
  }
  return out;
}

}  // namespace tinyq::registry
