// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include "runtime/qdq_fusion.h"

#include <unordered_map>
#include <unordered_set>

namespace tinyq::rt {

namespace {

bool is_8bit(DType t) { return t == DType::U8 || t == DType::I8; }

struct GraphIndex {
  const Graph& g;
  std::unordered_map<std::string, size_t> producer;
  std::unordered_map<std::string, int> readers;  // node inputs and graph outputs
  std::unordered_map<std::string, const Tensor*> initializer;

  explicit GraphIndex(const Graph& graph) : g(graph) {
    for (size_t i = 0; i < g.nodes.size(); ++i)
      for (const auto& o : g.nodes[i].outputs)
        if (!o.empty()) producer[o] = i;
    for (const Node& n : g.nodes)
      for (const auto& in : n.inputs)
        if (!in.empty()) ++readers[in];
    for (const ValueInfo& o : g.outputs) ++readers[o.name];
    for (const Initializer& init : g.initializers) initializer[init.name] = &init.tensor;
  }

  const Node* producer_of(const std::string& value, const char* op_type) const {
    auto it = producer.find(value);
    if (it == producer.end()) return nullptr;
    const Node& n = g.nodes[it->second];
    return n.op_type == op_type && is_default_domain(n.domain) ? &n : nullptr;
  }
  const Node* dq_of(const std::string& value) const { return producer_of(value, "DequantizeLinear"); }
  const Tensor* constant(const Node& n, size_t i) const {
    if (!n.has_input(i)) return nullptr;
    auto it = initializer.find(n.inputs[i]);
    return it == initializer.end() ? nullptr : it->second;
  }
  int reader_count(const std::string& value) const {
    auto it = readers.find(value);
    return it == readers.end() ? 0 : it->second;
  }
};

// A DequantizeLinear / QuantizeLinear whose scale and zero point are constant; `per_tensor`
// when both hold one value.
struct QParamsOf {
  const Tensor* scale = nullptr;
  const Tensor* zero_point = nullptr;
  bool per_tensor = false;
};

bool constant_params(const GraphIndex& ix, const Node& n, QParamsOf* out) {
  if (n.inputs.size() != 3) return false;  // the zero point (and so the type) must be explicit
  out->scale = ix.constant(n, 1);
  out->zero_point = ix.constant(n, 2);
  if (!out->scale || !out->zero_point || out->scale->dtype() != DType::F32) return false;
  if (out->scale->numel() != out->zero_point->numel()) return false;
  out->per_tensor = out->scale->numel() == 1 && out->scale->rank() <= 1;
  return true;
}

// The single QuantizeLinear reading `value` (its only reader, not a graph output), or nullptr.
const Node* sole_quantize_reader(const GraphIndex& ix, const std::string& value) {
  if (ix.reader_count(value) != 1) return nullptr;
  for (const Node& n : ix.g.nodes)
    if (n.op_type == "QuantizeLinear" && is_default_domain(n.domain) && n.has_input(0) && n.inputs[0] == value) return &n;
  return nullptr;
}

// The normalised `axis` of a DequantizeLinear over a tensor of `rank`, or -1 when invalid.
int64_t dq_axis(const Node& dq, size_t rank) {
  int64_t axis = dq.attr_int("axis", 1);
  const int64_t r = static_cast<int64_t>(rank);
  if (axis < -r || axis >= r) return -1;
  return axis < 0 ? axis + r : axis;
}

struct Fusion {
  size_t node;        // index of the Conv / MatMul, replaced by the fused node
  const Node* quant;  // the Q node, removed
  Node fused;
};

// DQ(x), DQ(w)[, DQ(b)] -> Conv -> Q.
bool match_conv(const GraphIndex& ix, size_t index, Fusion* f) {
  const Node& conv = ix.g.nodes[index];
  if (conv.inputs.size() < 2 || conv.inputs.size() > 3 || conv.outputs.size() != 1) return false;
  const Node* dq_x = ix.dq_of(conv.input(0));
  const Node* dq_w = ix.dq_of(conv.input(1));
  const Node* dq_b = conv.has_input(2) ? ix.dq_of(conv.input(2)) : nullptr;
  if (!dq_x || !dq_w || (conv.has_input(2) && !dq_b)) return false;
  const Node* q = sole_quantize_reader(ix, conv.outputs[0]);
  if (!q) return false;
  QParamsOf px, pw, py;
  if (!constant_params(ix, *dq_x, &px) || !constant_params(ix, *dq_w, &pw) || !constant_params(ix, *q, &py)) return false;
  if (!px.per_tensor || !py.per_tensor) return false;
  const DType tx = px.zero_point->dtype(), tw = pw.zero_point->dtype(), ty = py.zero_point->dtype();
  if (!is_8bit(tx) || !is_8bit(tw) || tx != ty || (tx == DType::I8 && tw != DType::I8)) return false;
  if (!pw.per_tensor) {
    // Per output channel: a 1-D scale along axis 0 of constant weights.
    const Tensor* w = ix.constant(*dq_w, 0);
    if (!w || pw.scale->rank() != 1 || w->rank() < 3 || dq_axis(*dq_w, w->rank()) != 0 ||
        pw.scale->numel() != w->dim(0))
      return false;
  }
  if (dq_b) {
    // An int32 bias with zero point 0 adds to QLinearConv's accumulator as it is.
    const Tensor* b = ix.constant(*dq_b, 0);
    if (!b || b->dtype() != DType::I32 || b->rank() != 1) return false;
    if (const Tensor* zb = ix.constant(*dq_b, 2)) {
      if (zb->dtype() != DType::I32) return false;
      for (int32_t v : zb->to_vector<int32_t>())
        if (v != 0) return false;
    } else if (dq_b->has_input(2)) {
      return false;
    }
  }
  f->node = index;
  f->quant = q;
  f->fused = Node();
  f->fused.name = conv.name;
  f->fused.op_type = "QLinearConv";
  f->fused.inputs = {dq_x->input(0), dq_x->input(1), dq_x->input(2), dq_w->input(0), dq_w->input(1),
                     dq_w->input(2), q->input(1), q->input(2)};
  if (dq_b) f->fused.inputs.push_back(dq_b->input(0));
  f->fused.outputs = {q->outputs[0]};
  f->fused.attributes = conv.attributes;
  f->fused.doc = "fused from " + dq_x->label() + ", " + conv.label() + ", " + q->label();
  return true;
}

// DQ(a), DQ(b) -> MatMul -> Q, with a 2-D constant B when its parameters are per column.
bool match_matmul(const GraphIndex& ix, size_t index, Fusion* f) {
  const Node& mm = ix.g.nodes[index];
  if (mm.inputs.size() != 2 || mm.outputs.size() != 1) return false;
  const Node* dq_a = ix.dq_of(mm.input(0));
  const Node* dq_b = ix.dq_of(mm.input(1));
  if (!dq_a || !dq_b) return false;
  const Node* q = sole_quantize_reader(ix, mm.outputs[0]);
  if (!q) return false;
  QParamsOf pa, pb, py;
  if (!constant_params(ix, *dq_a, &pa) || !constant_params(ix, *dq_b, &pb) || !constant_params(ix, *q, &py)) return false;
  if (!pa.per_tensor || !py.per_tensor) return false;
  const DType ta = pa.zero_point->dtype(), tb = pb.zero_point->dtype(), ty = py.zero_point->dtype();
  if (!is_8bit(ta) || !is_8bit(tb) || ta != ty || (ta == DType::I8 && tb != DType::I8)) return false;
  if (!pb.per_tensor) {
    const Tensor* b = ix.constant(*dq_b, 0);
    if (!b || b->rank() != 2 || pb.scale->rank() != 1 || dq_axis(*dq_b, 2) != 1 || pb.scale->numel() != b->dim(1))
      return false;
  }
  f->node = index;
  f->quant = q;
  f->fused = Node();
  f->fused.name = mm.name;
  f->fused.op_type = "QLinearMatMul";
  f->fused.inputs = {dq_a->input(0), dq_a->input(1), dq_a->input(2), dq_b->input(0),
                     dq_b->input(1), dq_b->input(2), q->input(1),  q->input(2)};
  f->fused.outputs = {q->outputs[0]};
  f->fused.doc = "fused from " + dq_a->label() + ", " + mm.label() + ", " + q->label();
  return true;
}

}  // namespace

int fuse_qdq_groups(Graph& g) {
  std::vector<Fusion> fusions;
  {
    const GraphIndex ix(g);
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      const Node& n = g.nodes[i];
      if (!is_default_domain(n.domain)) continue;
      Fusion f;
      if ((n.op_type == "Conv" && match_conv(ix, i, &f)) || (n.op_type == "MatMul" && match_matmul(ix, i, &f)))
        fusions.push_back(std::move(f));
    }
  }
  if (fusions.empty()) return 0;

  // The fused node takes the Conv's place (its inputs come from before it; its output's readers
  // followed the Q, which followed the Conv), and the Q goes.
  std::unordered_set<const Node*> drop;
  for (Fusion& f : fusions) {
    drop.insert(f.quant);
    g.nodes[f.node] = std::move(f.fused);
  }
  std::vector<Node> kept;
  kept.reserve(g.nodes.size());
  for (Node& n : g.nodes)
    if (!drop.count(&n)) kept.push_back(std::move(n));
  g.nodes = std::move(kept);

  // DequantizeLinear nodes whose outputs nobody reads any more (walked backwards, so a chain of
  // them goes in one pass).
  std::unordered_map<std::string, int> readers;
  for (const Node& n : g.nodes)
    for (const auto& in : n.inputs) ++readers[in];
  for (const ValueInfo& o : g.outputs) ++readers[o.name];
  std::vector<bool> dead(g.nodes.size(), false);
  for (size_t i = g.nodes.size(); i-- > 0;) {
    const Node& n = g.nodes[i];
    if (n.op_type != "DequantizeLinear" || !is_default_domain(n.domain) || n.outputs.size() != 1 || readers[n.outputs[0]] > 0)
      continue;
    dead[i] = true;
    for (const auto& in : n.inputs) --readers[in];
  }
  std::vector<Node> live;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (!dead[i]) live.push_back(std::move(g.nodes[i]));
  g.nodes = std::move(live);
  return static_cast<int>(fusions.size());
}

}  // namespace tinyq::rt
