// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include "quant/dynamic/dynamic_rewriter.h"

#include <cstring>

#include "quant/weight_quant.h"
#include "tinyq/error.h"

namespace tinyq::quant {
namespace {
// Subgraphs (If/Loop bodies) may read outer values implicitly, so their reads count too.
void count_uses(const Graph& g, std::unordered_map<std::string, size_t>& uses) {
  for (const auto& n : g.nodes) {
    for (const auto& s : n.inputs)
      if (!s.empty()) ++uses[s];
    for (const auto& a : n.attributes) {
      if (a.g) count_uses(*a.g, uses);
      for (const auto& sub : a.graphs) count_uses(*sub, uses);
    }
  }
  for (const auto& v : g.outputs) ++uses[v.name];
}

// Every value name in a graph and its subgraphs: a new name must not shadow one in a body either.
void collect_names(const Graph& g, std::unordered_set<std::string>& names) {
  for (const auto& n : g.nodes) {
    for (const auto& s : n.inputs) names.insert(s);
    for (const auto& s : n.outputs) names.insert(s);
    for (const auto& a : n.attributes) {
      if (a.g) collect_names(*a.g, names);
      for (const auto& sub : a.graphs) collect_names(*sub, names);
    }
  }
  for (const auto& i : g.initializers) names.insert(i.name);
  for (const auto* list : {&g.inputs, &g.outputs, &g.value_info})
    for (const auto& v : *list) names.insert(v.name);
}
}  // namespace

DynamicRewriter::DynamicRewriter(Graph& graph, bool per_channel)
    : graph_(graph), per_channel_(per_channel) {
  collect_names(graph_, names_);
  for (const auto& v : graph_.inputs) graph_inputs_.insert(v.name);
  count_uses(graph_, uses_);
  nodes_.reserve(graph_.nodes.size() * 4);
}

const Initializer* DynamicRewriter::constant(const std::string& value) const {
  if (value.empty() || graph_inputs_.count(value)) return nullptr;
  return graph_.find_initializer(value);
}

std::string DynamicRewriter::fresh_name(const std::string& stem) {
  std::string name = stem;
  for (int k = 1; names_.count(name); ++k) name = stem + "_" + std::to_string(k);
  names_.insert(name);
  return name;
}

std::string DynamicRewriter::add_initializer(const std::string& stem, Tensor tensor) {
  std::string name = fresh_name(stem);
  graph_.initializers.push_back(Initializer{name, std::move(tensor), {}});
  return name;
}

size_t DynamicRewriter::use_count(const std::string& value) const {
  auto it = uses_.find(value);
  return it == uses_.end() ? 0 : it->second;
}

std::string DynamicRewriter::reshaped_constant(const std::string& name, const Shape& shape) {
  Initializer* init = graph_.find_initializer(name);
  if (!init || graph_inputs_.count(name)) throw Error(name, "is not a constant initializer");
  if (use_count(name) == 1) {
    init->tensor = init->tensor.reshaped(shape);  // a view: the caller's buffer is not written
    return name;
  }
  return add_initializer(name + "_r", init->tensor.reshaped(shape));
}

const DynamicActivation& DynamicRewriter::quantize_activation(const std::string& value) {
  auto it = activations_.find(value);
  if (it != activations_.end()) return it->second;
  DynamicActivation a;
  a.quantized = fresh_name(value + "_q");
  a.scale = fresh_name(value + "_s");
  a.zero_point = fresh_name(value + "_z");
  emit("DynamicQuantizeLinear", {value}, {a.quantized, a.scale, a.zero_point});
  return activations_.emplace(value, std::move(a)).first->second;
}

const StoredWeight& DynamicRewriter::quantize_weight(const WeightRequest& req) {
  uint32_t multiplier_bits = 0;
  std::memcpy(&multiplier_bits, &req.multiplier, sizeof multiplier_bits);
  const std::string key = req.name + '\n' + (req.transpose ? "T" : "N") + std::to_string(multiplier_bits) +
                          '/' + std::to_string(req.channel_axis);
  auto it = weights_.find(key);
  if (it != weights_.end()) return it->second;

  const Initializer* init = constant(req.name);
  if (!init) throw Error(req.name, "is not a constant initializer");
  Tensor w = req.transpose ? transpose_2d(init->tensor) : init->tensor;
  if (req.multiplier != 1.0f) {
    w = w.clone();
    float* p = w.data<float>();
    for (int64_t i = 0; i < w.numel(); ++i) p[i] *= req.multiplier;
  }
  QuantizedWeight q = quantize_weight_symmetric_int8(w, req.channel_axis);

  StoredWeight s;
  s.quantized = add_initializer(req.name + "_q", std::move(q.values));
  Tensor scale = req.channel_axis < 0 ? Tensor::scalar(q.scales[0])
                                      : Tensor::from_vector(req.scale_shape, q.scales);
  s.scale = add_initializer(req.name + "_s", std::move(scale));
  // Symmetric weights have zero point 0 in every channel, so one int8 scalar serves every
  // integer op, per tensor and per channel alike (a scalar zero point is what both
  // MatMulInteger and ConvInteger accept everywhere).
  if (weight_zero_point_.empty()) weight_zero_point_ = add_initializer("w_zp", Tensor::scalar<int8_t>(0));
  s.zero_point = weight_zero_point_;
  return weights_.emplace(key, std::move(s)).first->second;
}

void DynamicRewriter::emit_rescale(const std::string& int32_value, const DynamicActivation& activation,
                                   const StoredWeight& weight, const std::string& dst,
                                   const std::string& stem) {
  const std::string as_float = fresh_name(stem + "_f");
  emit("Cast", {int32_value}, {as_float}).set_attr(Attribute::make_int("to", static_cast<int64_t>(DType::F32)));
  // The product of the two scales is a scalar (or [N] / [1,M,1,1] per channel), so it is
  // computed once per run rather than folded into the large tensor twice.
  const std::string scale = fresh_name(stem + "_sc");
  emit("Mul", {activation.scale, weight.scale}, {scale});
  emit("Mul", {as_float, scale}, {dst});
}

void DynamicRewriter::emit(Node node) { nodes_.push_back(std::move(node)); }

Node& DynamicRewriter::emit(const std::string& op_type, std::vector<std::string> inputs,
                            std::vector<std::string> outputs) {
  Node n;
  n.op_type = op_type;
  n.inputs = std::move(inputs);
  n.outputs = std::move(outputs);
  nodes_.push_back(std::move(n));
  return nodes_.back();
}

}  // namespace tinyq::quant
