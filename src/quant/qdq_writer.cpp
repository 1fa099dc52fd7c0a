// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include "quant/qdq_writer.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <utility>

#include "common/qmath.h"
#include "graph/graph_edit.h"
#include "quant/weight_quant.h"
#include "tinyq/error.h"

namespace tinyq::quant {
namespace {

Node make_node(const std::string& op, const std::string& name, std::vector<std::string> inputs,
               std::vector<std::string> outputs, int axis) {
  Node n;
  n.op_type = op;
  n.name = name;
  n.inputs = std::move(inputs);
  n.outputs = std::move(outputs);
  if (axis >= 0) n.attributes.push_back(Attribute::make_int("axis", axis));
  return n;
}

template <typename T>
Tensor filled(Shape shape, T value) {
  Tensor t(DTypeOf<T>::value, std::move(shape));
  T* p = t.data<T>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = value;
  return t;
}

}  // namespace

QdqWriter::QdqWriter(Graph& graph, std::map<std::string, TensorRange> ranges, std::set<std::string> non_float,
                     const StaticQuantOptions& options)
    : g_(graph), ranges_(std::move(ranges)), non_float_(std::move(non_float)), options_(options) {
  auto use = [&](const std::string& s) {
    if (!s.empty()) used_names_.insert(s);
  };
  for (const auto& n : g_.nodes) {
    use(n.name);
    for (const auto& s : n.inputs) use(s);
    for (const auto& s : n.outputs) use(s);
  }
  for (const auto& i : g_.initializers) use(i.name);
  for (const auto* list : {&g_.inputs, &g_.outputs, &g_.value_info})
    for (const auto& v : *list) use(v.name);
}

// ---------------------------------------------------------------------------------------------
// Queries

const Tensor* QdqWriter::constant(const std::string& t) const {
  const Initializer* i = g_.find_initializer(t);
  return i ? &i->tensor : nullptr;
}

bool QdqWriter::quantisable(const std::string& t) const {
  if (t.empty()) return false;
  if (const Tensor* c = constant(t)) return c->dtype() == DType::F32 && c->numel() > 0;
  return non_float_.count(t) == 0;
}

size_t QdqWriter::consumer_count(const std::string& t) const {
  size_t n = 0;
  for (size_t i = 0; i < g_.nodes.size(); ++i) {
    if (folded_.count(i)) continue;
    for (const auto& in : g_.nodes[i].inputs) n += in == t;
  }
  return n;
}

bool QdqWriter::is_graph_input(const std::string& t) const {
  for (const ValueInfo* v : g_.real_inputs())
    if (v->name == t) return true;
  return false;
}

bool QdqWriter::is_graph_output(const std::string& t) const {
  for (const auto& o : g_.outputs)
    if (o.name == t) return true;
  return false;
}

bool QdqWriter::is_marked(const std::string& t) const {
  for (const auto& kv : marks_)
    if (kv.first == t) return true;
  for (const auto& kv : biases_)
    if (kv.first == t) return true;
  return false;
}

// ---------------------------------------------------------------------------------------------
// Marks

QdqWriter::Mark* QdqWriter::find_mark(const std::string& t) {
  for (auto& kv : marks_)
    if (kv.first == t) return &kv.second;
  return nullptr;
}

void QdqWriter::set_mark(const std::string& t, const Mark& m, bool replace) {
  if (Mark* existing = find_mark(t)) {
    if (replace) *existing = m;
    return;
  }
  marks_.emplace_back(t, m);
}

void QdqWriter::mark_activation(const std::string& t) {
  if (!quantisable(t)) return;
  // A tensor that is both a graph input and a graph output cannot get a Q/DQ pair (the pair
  // would need to write the name it reads).
  if (is_graph_input(t) && is_graph_output(t)) return;
  set_mark(t, Mark{Mark::Kind::Activation, -1, ""}, false);
}

void QdqWriter::mark_weight(const std::string& t, int axis) {
  if (!quantisable(t)) return;
  if (axis >= 0 && constant(t)) {
    set_mark(t, Mark{Mark::Kind::Weight, axis, ""}, true);
    return;
  }
  set_mark(t, Mark{Mark::Kind::Weight, -1, ""}, false);
}

void QdqWriter::mark_shared(const std::string& out, const std::string& provider) {
  // The output of a data-movement op holds its input's type, so no range or type check is
  // needed: it takes its provider's scale.
  if (out.empty() || constant(out) || non_float_.count(out) || is_graph_input(out)) return;
  set_mark(out, Mark{Mark::Kind::Activation, -1, provider}, true);
}

void QdqWriter::mark_bias(const std::string& bias, const std::string& input, const std::string& weight) {
  const Tensor* b = constant(bias);
  if (!b || b->dtype() != DType::F32) return;
  for (const auto& kv : biases_)
    if (kv.first == bias) return;  // the first node to claim a shared bias decides its scale
  biases_.emplace_back(bias, BiasMark{input, weight});
}

bool QdqWriter::try_fold(const std::string& upstream, const std::string& out, size_t node) {
  if (!has_range(out) || consumer_count(upstream) != 1 || is_graph_output(upstream) || is_graph_input(upstream))
    return false;
  long producer = -1;
  for (size_t i = 0; i < g_.nodes.size(); ++i) {
    if (folded_.count(i) || i == node) continue;
    for (const auto& o : g_.nodes[i].outputs)
      if (o == upstream) producer = static_cast<long>(i);
  }
  if (producer < 0) return false;
  for (auto& o : g_.nodes[static_cast<size_t>(producer)].outputs)
    if (o == upstream) o = out;
  folded_.insert(node);
  marks_.erase(std::remove_if(marks_.begin(), marks_.end(), [&](const auto& kv) { return kv.first == upstream; }),
               marks_.end());
  return true;
}

std::vector<std::string> QdqWriter::marked_activations(bool shared) const {
  std::vector<std::string> out;
  for (const auto& kv : marks_)
    if (!constant(kv.first) && (shared || kv.second.provider.empty())) out.push_back(kv.first);
  return out;
}

std::map<std::string, int> QdqWriter::marked_weights() const {
  std::map<std::string, int> out;
  for (const auto& kv : marks_)
    if (kv.second.kind == Mark::Kind::Weight && constant(kv.first)) out[kv.first] = kv.second.axis;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Emission

std::string QdqWriter::unique(const std::string& stem) {
  std::string name = stem;
  for (int k = 1; used_names_.count(name); ++k) name = stem + "_" + std::to_string(k);
  used_names_.insert(name);
  return name;
}

void QdqWriter::replace_inputs(const std::string& from, const std::string& to) {
  for (size_t i = 0; i < g_.nodes.size(); ++i) {
    if (folded_.count(i)) continue;
    for (auto& in : g_.nodes[i].inputs)
      if (in == from) in = to;
  }
}

void QdqWriter::quantise_initializer(const std::string& name, const Mark& m) {
  const Tensor& src = *constant(name);
  QdqValue v;
  Tensor q, zp;
  if (m.kind == Mark::Kind::Weight || options_.activation_type == ActivationType::Int8) {
    // Symmetric int8: weights always; constants quantised as int8 activations too (ONNX Runtime
    // quantises every initializer with its weight symmetry).
    const int axis = m.kind == Mark::Kind::Weight ? m.axis : -1;
    QuantizedWeight w = quantize_weight_symmetric_int8(src, axis);
    q = w.values;
    v.scales = w.scales;
    v.axis = axis;
    zp = axis >= 0 ? filled<int8_t>({static_cast<int64_t>(w.scales.size())}, 0) : Tensor::scalar<int8_t>(0);
  } else {
    // A constant input of a uint8-activation op: uint8, symmetric around the middle (128).
    const float* p = src.data<float>();
    float lo = 0.0f, hi = 0.0f;
    for (int64_t i = 0; i < src.numel(); ++i) {
      lo = std::min(lo, p[i]);
      hi = std::max(hi, p[i]);
    }
    const qmath::QRange range = qmath::qrange_uint8();
    const qmath::QParams qp = qmath::choose_qparams(lo, hi, range, /*symmetric=*/true);
    q = Tensor(DType::U8, src.shape());
    uint8_t* dst = q.data<uint8_t>();
    for (int64_t i = 0; i < src.numel(); ++i)
      dst[i] = static_cast<uint8_t>(qmath::quantize(p[i], qp.scale, qp.zero_point, range.qmin, range.qmax));
    v.scales = {qp.scale};
    zp = Tensor::scalar<uint8_t>(static_cast<uint8_t>(qp.zero_point));
  }
  const std::string q_name = unique(name + "_quantized");
  v.scale_name = unique(name + "_scale");
  v.zero_point_name = unique(name + "_zero_point");
  const std::string dq_out = unique(name + "_DequantizeLinear_Output");
  Tensor scale = v.axis >= 0 ? Tensor::from_vector<float>({static_cast<int64_t>(v.scales.size())}, v.scales)
                             : Tensor::scalar<float>(v.scales[0]);
  new_initializers_.push_back({q_name, q, ""});
  new_initializers_.push_back({v.scale_name, scale, ""});
  new_initializers_.push_back({v.zero_point_name, zp, ""});
  replace_inputs(name, dq_out);
  new_nodes_.push_back(make_node("DequantizeLinear", unique(name + "_DequantizeLinear"),
                                 {q_name, v.scale_name, v.zero_point_name}, {dq_out}, v.axis));
  dq_outputs_.insert(dq_out);
  values_[name] = v;
  if (m.kind == Mark::Kind::Weight) ++weights_quantised_;
}

void QdqWriter::quantise_activation(const std::string& name) {
  auto r = ranges_.find(name);
  if (r == ranges_.end()) {
    notes_.push_back("tensor '" + name + "' has no calibrated range; left fp32");
    return;
  }
  const bool u8 = options_.activation_type == ActivationType::Uint8;
  const qmath::QRange range = u8 ? qmath::qrange_uint8() : qmath::qrange_int8(/*symmetric=*/false);
  const qmath::QParams qp = qmath::choose_qparams(r->second.min, r->second.max, range, /*symmetric=*/false);
  QdqValue v;
  v.scales = {qp.scale};
  v.zero_point = qp.zero_point;
  v.min = r->second.min;
  v.max = r->second.max;
  v.scale_name = unique(name + "_scale");
  v.zero_point_name = unique(name + "_zero_point");
  new_initializers_.push_back({v.scale_name, Tensor::scalar<float>(qp.scale), ""});
  new_initializers_.push_back({v.zero_point_name,
                               u8 ? Tensor::scalar<uint8_t>(static_cast<uint8_t>(qp.zero_point))
                                  : Tensor::scalar<int8_t>(static_cast<int8_t>(qp.zero_point)),
                               ""});
  add_qdq_pair(name, v);
  activations_.push_back({name, v.min, v.max, qp.scale, qp.zero_point, ""});
}

void QdqWriter::add_qdq_pair(const std::string& t, const QdqValue& v) {
  const std::string q_out = unique(t + "_QuantizeLinear_Output");
  std::string q_in = t, dq_out;
  if (is_graph_output(t)) {
    // The graph output keeps its name, now written by the DequantizeLinear.
    q_in = unique(t + "_QuantizeLinear_Input");
    dq_out = t;
    for (size_t i = 0; i < g_.nodes.size(); ++i) {
      if (folded_.count(i)) continue;
      for (auto& o : g_.nodes[i].outputs)
        if (o == t) o = q_in;
    }
  } else {
    dq_out = unique(t + "_DequantizeLinear_Output");
    replace_inputs(t, dq_out);
  }
  new_nodes_.push_back(make_node("QuantizeLinear", unique(t + "_QuantizeLinear"), {q_in, v.scale_name, v.zero_point_name},
                                 {q_out}, -1));
  new_nodes_.push_back(make_node("DequantizeLinear", unique(t + "_DequantizeLinear"),
                                 {q_out, v.scale_name, v.zero_point_name}, {dq_out}, -1));
  q_inputs_.insert(q_in);
  dq_outputs_.insert(dq_out);
  QdqValue stored = v;
  values_[t] = stored;
}

void QdqWriter::quantise_bias(const std::string& name, const BiasMark& b) {
  auto in = values_.find(b.input), w = values_.find(b.weight);
  if (in == values_.end() || w == values_.end()) {
    notes_.push_back("bias '" + name + "' left fp32: its " + (in == values_.end() ? "input" : "weight") +
                     " is not quantised");
    return;
  }
  const Tensor& src = *constant(name);
  const size_t channels = w->second.scales.size();
  int axis = -1;
  if (channels > 1) {
    // Per-channel scales run along the bias's last axis, which must hold exactly the channels.
    if (src.rank() == 0 || static_cast<size_t>(src.dim(src.rank() - 1)) != channels ||
        static_cast<size_t>(src.numel()) != channels) {
      notes_.push_back("bias '" + name + "' left fp32: shape " + shape_to_string(src.shape()) + " does not match " +
                       std::to_string(channels) + " weight channels");
      return;
    }
    axis = static_cast<int>(src.rank()) - 1;
  }
  // scale = input scale x weight scale, in float as ONNX Runtime computes it (the scale an
  // integer kernel's accumulator has); values round half to even and saturate to int32.
  const float in_scale = in->second.scales[0];
  std::vector<float> scales(channels);
  for (size_t c = 0; c < channels; ++c) scales[c] = in_scale * w->second.scales[c];
  Tensor q(DType::I32, src.shape());
  const float* p = src.data<float>();
  int32_t* dst = q.data<int32_t>();
  for (int64_t i = 0; i < src.numel(); ++i) {
    const float s = scales[channels > 1 ? static_cast<size_t>(i) : 0];
    dst[i] = qmath::saturate_add_zero_point(qmath::round_half_even(p[i] / s), 0, std::numeric_limits<int32_t>::min(),
                                            std::numeric_limits<int32_t>::max());
  }
  const std::string q_name = unique(name + "_quantized");
  const std::string scale_name = unique(name + "_quantized_scale");
  const std::string zp_name = unique(name + "_quantized_zero_point");
  new_initializers_.push_back({q_name, q, ""});
  new_initializers_.push_back({scale_name, Tensor::from_vector<float>({static_cast<int64_t>(channels)}, scales), ""});
  new_initializers_.push_back(
      {zp_name, channels > 1 ? filled<int32_t>({static_cast<int64_t>(channels)}, 0) : Tensor::scalar<int32_t>(0), ""});
  // The DequantizeLinear takes the bias's own name, so its readers need no change.
  graph::remove_initializer(g_, name);
  new_nodes_.push_back(
      make_node("DequantizeLinear", unique(name + "_DequantizeLinear"), {q_name, scale_name, zp_name}, {name}, axis));
  dq_outputs_.insert(name);
  ++biases_quantised_;
}

void QdqWriter::finish() {
  // 1. Tensors with their own parameters, in marking order.
  for (const auto& kv : marks_) {
    if (!kv.second.provider.empty()) continue;
    if (constant(kv.first)) {
      quantise_initializer(kv.first, kv.second);
    } else {
      quantise_activation(kv.first);
    }
  }
  // 2. Tensors sharing their provider's parameters, as providers get theirs (chains of
  //    Reshape/Squeeze resolve in a few rounds).
  std::vector<std::pair<std::string, std::string>> pending;
  for (const auto& kv : marks_)
    if (!kv.second.provider.empty()) pending.emplace_back(kv.first, kv.second.provider);
  for (bool progress = true; progress && !pending.empty();) {
    progress = false;
    for (auto it = pending.begin(); it != pending.end();) {
      auto v = values_.find(it->second);
      if (v == values_.end() || values_.count(it->first)) {
        ++it;
        continue;
      }
      QdqValue shared = v->second;
      add_qdq_pair(it->first, shared);
      activations_.push_back({it->first, shared.min, shared.max, shared.scales[0], shared.zero_point, it->second});
      it = pending.erase(it);
      progress = true;
    }
  }
  for (const auto& p : pending)
    notes_.push_back("tensor '" + p.first + "' left fp32: '" + p.second + "', whose scale it shares, is not quantised");
  // 3. Biases, once inputs and weights have scales.
  for (const auto& kv : biases_) quantise_bias(kv.first, kv.second);
  // 4. The new graph.
  assemble();
}

void QdqWriter::assemble() {
  for (size_t i = 0; i < g_.nodes.size(); ++i) {
    if (folded_.count(i)) continue;
    const Node& n = g_.nodes[i];
    bool touch = false;
    for (const auto& in : n.inputs) touch |= dq_outputs_.count(in) != 0;
    for (const auto& out : n.outputs) touch |= q_inputs_.count(out) != 0;
    if (touch) touched_.insert(i);
  }

  // Readable order: weight and bias DequantizeLinear just before their first reader, activation
  // Q/DQ pairs right after their producer (graph inputs' pairs first).
  std::set<std::string> available;
  for (const auto& v : g_.inputs) available.insert(v.name);
  for (const auto& i : g_.initializers) available.insert(i.name);
  for (const auto& i : new_initializers_) available.insert(i.name);
  std::vector<bool> placed(new_nodes_.size(), false);
  std::map<std::string, size_t> constant_producer;  // DQ of a weight/bias, by output
  for (size_t k = 0; k < new_nodes_.size(); ++k) {
    bool all_constant = true;
    for (const auto& in : new_nodes_[k].inputs) all_constant &= available.count(in) != 0;
    if (all_constant && new_nodes_[k].op_type == "DequantizeLinear") constant_producer[new_nodes_[k].outputs[0]] = k;
  }
  std::vector<Node> order;
  order.reserve(g_.nodes.size() + new_nodes_.size());
  auto flush_ready = [&]() {
    for (bool again = true; again;) {
      again = false;
      for (size_t k = 0; k < new_nodes_.size(); ++k) {
        if (placed[k] || constant_producer.count(new_nodes_[k].outputs[0])) continue;
        bool ready = true;
        for (const auto& in : new_nodes_[k].inputs) ready &= available.count(in) != 0;
        if (!ready) continue;
        placed[k] = true;
        order.push_back(new_nodes_[k]);
        for (const auto& o : new_nodes_[k].outputs) available.insert(o);
        again = true;
      }
    }
  };
  flush_ready();
  for (size_t i = 0; i < g_.nodes.size(); ++i) {
    if (folded_.count(i)) continue;
    for (const auto& in : g_.nodes[i].inputs) {
      auto c = constant_producer.find(in);
      if (c == constant_producer.end() || placed[c->second]) continue;
      placed[c->second] = true;
      order.push_back(new_nodes_[c->second]);
      available.insert(in);
    }
    order.push_back(g_.nodes[i]);
    for (const auto& o : g_.nodes[i].outputs) available.insert(o);
    flush_ready();
  }
  for (size_t k = 0; k < new_nodes_.size(); ++k)
    if (!placed[k]) order.push_back(new_nodes_[k]);  // readers only in subgraphs: keep them
  g_.nodes = std::move(order);
  for (auto& i : new_initializers_) g_.initializers.push_back(std::move(i));
  new_initializers_.clear();
  graph::remove_unused_initializers(g_);
  graph::sort_topologically(g_);

  // value_info for names that no longer exist (folded activations' inputs, renamed outputs)
  // would describe nothing; drop them.
  std::set<std::string> produced;
  for (const auto& n : g_.nodes)
    for (const auto& o : n.outputs) produced.insert(o);
  g_.value_info.erase(std::remove_if(g_.value_info.begin(), g_.value_info.end(),
                                     [&](const ValueInfo& v) { return !produced.count(v.name); }),
                      g_.value_info.end());
}

}  // namespace tinyq::quant
