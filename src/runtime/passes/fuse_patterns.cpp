// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// The pattern fusions (passes.h, step 2). Each matcher starts at the chain's heavy node and
// walks forward through values that exactly one node reads (and no graph output names), so
// nothing outside the chain ever needs an intermediate it drops. The fused node takes the
// place of the chain's last node, which keeps the graph topologically sorted: every input of
// the chain is produced before the chain node that reads it.
//
// Exactness of the dynamic-quantisation chains. The graph computes
//     acc = ConvInteger(q, W, zx, zw)             exact int32
//     y   = ((float(acc) * s) + b) + r            s = x_scale * w_scale, one rounding per op
// and DynQConv's epilogue performs the same float operations in the same order (the kernels
// are built without FMA contraction), so fused and unfused outputs agree bit for bit; x_scale
// and zx come from the same DynamicQuantizeLinear arithmetic (qmath::dynamic_qparams_uint8).

#include <algorithm>
#include <limits>
#include <unordered_map>
#include <unordered_set>

#include "runtime/passes/fused_common.h"
#include "runtime/passes/graph_index.h"
#include "runtime/passes/patterns.h"

namespace tinyq::rt::passes {

namespace {

// The pattern helpers' view of the graph: GraphIndex, with default-domain readers and
// producers only.
struct Index : GraphIndex {
  using GraphIndex::GraphIndex;
  const Node* sole_reader(const std::string& v, size_t* at) const {
    const Node* n = GraphIndex::sole_reader(v, at);
    return n && is_default_domain(n->domain) ? n : nullptr;
  }
  const Node* produced_by(const std::string& v, const char* op_type) const {
    auto it = producer.find(v);
    if (it == producer.end()) return nullptr;
    const Node& n = g.nodes[it->second];
    return n.op_type == op_type && is_default_domain(n.domain) ? &n : nullptr;
  }
};

bool is_f32_const(const Tensor* t) { return t && t->dtype() == DType::F32; }

// A float constant holding one value per index of the last axis of an N-wide output (or one
// value): shape [..., N] or [..., 1] with every other dimension 1.
bool per_column(const Tensor* t, int64_t n) {
  if (!is_f32_const(t) || (t->numel() != n && t->numel() != 1)) return false;
  const Shape& s = t->shape();
  for (size_t i = 0; i + 1 < s.size(); ++i)
    if (s[i] != 1) return false;
  return true;
}

// A float constant holding one value per output channel of a convolution whose output has
// rank `rank` ([N, M, spatial...]), or one value.
bool per_channel(const Tensor* t, int64_t m, size_t rank) {
  return is_f32_const(t) && (t->numel() == m || t->numel() == 1) && per_axis_shape(t->shape(), rank, 1);
}

// The other input of a two-input node, given one of them; "" when the node reads `v` twice.
std::string other_input(const Node& n, const std::string& v) {
  if (n.inputs.size() != 2) return "";
  if (n.inputs[0] == v && n.inputs[1] != v) return n.inputs[1];
  if (n.inputs[1] == v && n.inputs[0] != v) return n.inputs[0];
  return "";
}

// Whether the node's own op accepts it as written (attributes, constant inputs): a node the
// session would refuse is left unfused, so it is refused with its own message.
bool op_accepts(const Index& ix, const Node& n, int64_t opset) {
  const OpDef* def = find_op(n.op_type, opset);
  return def && op_accepts(ix, n, opset, def->make);
}

struct Chain {
  std::vector<size_t> nodes;  // replaced nodes, the last one is where the fused node goes
  Node fused;
};

// Relu, or Clip with constant bounds, reading `cur`: appends the activation attributes.
bool match_activation(const Index& ix, int64_t opset, std::string* cur, std::vector<size_t>* nodes,
                      std::vector<Attribute>* attrs) {
  size_t at = 0;
  const Node* n = ix.sole_reader(*cur, &at);
  if (!n || n->outputs.size() != 1 || n->outputs[0].empty()) return false;
  if (n->op_type == "Relu" && n->inputs.size() == 1) {
    attrs->push_back(Attribute::make_string("activation", "relu"));
  } else if (n->op_type == "Clip" && n->inputs[0] == *cur) {
    float lo = std::numeric_limits<float>::lowest(), hi = std::numeric_limits<float>::max();
    if (opset < 11) {
      lo = n->attr_float("min", lo);
      hi = n->attr_float("max", hi);
    } else {
      for (size_t i = 1; i < n->inputs.size() && i < 3; ++i) {
        if (n->inputs[i].empty()) continue;
        const Tensor* b = ix.constant(n->inputs[i]);
        if (!is_f32_const(b) || b->numel() != 1) return false;
        (i == 1 ? lo : hi) = b->data<float>()[0];
      }
      if (n->inputs.size() > 3) return false;
    }
    attrs->push_back(Attribute::make_string("activation", "clip"));
    attrs->push_back(Attribute::make_float("clip_min", lo));
    attrs->push_back(Attribute::make_float("clip_max", hi));
  } else {
    return false;
  }
  nodes->push_back(at);
  *cur = n->outputs[0];
  return true;
}

// [Add residual] [activation] after `cur`.
void match_tail(const Index& ix, int64_t opset, bool allow_residual, std::string* cur, std::vector<size_t>* nodes,
                std::string* residual, std::vector<Attribute>* attrs) {
  size_t at = 0;
  if (allow_residual) {
    const Node* add = ix.sole_reader(*cur, &at);
    if (add && add->op_type == "Add" && add->outputs.size() == 1 && !add->outputs[0].empty()) {
      const std::string other = other_input(*add, *cur);
      if (!other.empty()) {
        *residual = other;
        nodes->push_back(at);
        *cur = add->outputs[0];
      }
    }
  }
  match_activation(ix, opset, cur, nodes, attrs);
}

// v, a graph output, read by exactly one node: an Add of v and another value (the residual).
bool watched_residual(const Index& ix, const std::string& v, size_t* add_at, std::string* residual) {
  if (!ix.graph_outputs.count(v)) return false;
  auto it = ix.readers.find(v);
  if (it == ix.readers.end() || it->second.size() != 1) return false;
  const Node& add = ix.g.nodes[it->second[0]];
  if (add.op_type != "Add" || !is_default_domain(add.domain) || add.outputs.size() != 1 || add.outputs[0].empty())
    return false;
  const std::string other = other_input(add, v);
  if (other.empty()) return false;
  *add_at = it->second[0];
  *residual = other;
  return true;
}

Node make_fused(const std::string& op_type, const Node& head, const Graph& g, const std::vector<size_t>& nodes,
                std::vector<std::string> inputs, const std::string& output, std::vector<Attribute> attrs) {
  Node f;
  f.name = head.name.empty() ? head.op_type + "_fused" : head.name;
  f.op_type = op_type;
  f.domain = kFusedDomain;
  f.inputs = std::move(inputs);
  while (!f.inputs.empty() && f.inputs.back().empty()) f.inputs.pop_back();
  f.outputs = {output};
  f.attributes = std::move(attrs);
  f.doc = "fused from";
  for (size_t i : nodes) f.doc += " " + g.nodes[i].label();
  return f;
}

// DynamicQuantizeLinear -> ConvInteger | MatMulInteger -> Cast -> Mul [-> Add bias] [-> Add r] [-> act]
bool match_dynamic(const Index& ix, int64_t opset, size_t start, Chain* out) {
  const Node& c = ix.g.nodes[start];
  const bool conv = c.op_type == "ConvInteger";
  if (c.outputs.size() != 1 || c.inputs.size() < 3 || c.inputs.size() > 4) return false;
  const Node* d = ix.produced_by(c.input(0), "DynamicQuantizeLinear");
  if (!d || d->outputs.size() != 3 || d->outputs[0] != c.input(0) || d->outputs[2] != c.input(2)) return false;
  const Tensor* w = ix.constant(c.input(1));
  if (!w || (w->dtype() != DType::I8 && w->dtype() != DType::U8)) return false;
  if (conv ? (w->rank() < 3 || w->rank() > 4) : w->rank() != 2) return false;
  if (c.has_input(3) && !ix.constant(c.input(3))) return false;
  const int64_t channels = conv ? w->dim(0) : w->dim(1);
  std::vector<size_t> nodes = {start};
  size_t at = 0;
  const Node* cast = ix.sole_reader(c.outputs[0], &at);
  if (!cast || cast->op_type != "Cast" || cast->attr_int("to", 0) != static_cast<int64_t>(DType::F32) ||
      cast->outputs.size() != 1)
    return false;
  nodes.push_back(at);
  const Node* mul = ix.sole_reader(cast->outputs[0], &at);
  if (!mul || mul->op_type != "Mul" || mul->outputs.size() != 1) return false;
  const std::string s = other_input(*mul, cast->outputs[0]);
  const Node* m0 = ix.produced_by(s, "Mul");
  if (!m0) return false;
  const std::string ws = other_input(*m0, d->outputs[1]);
  const Tensor* wst = ix.constant(ws);
  if (!wst || !(conv ? per_channel(wst, channels, w->rank()) : per_column(wst, channels))) return false;
  nodes.push_back(at);
  std::string cur = mul->outputs[0];
  // The bias: a constant per-channel Add.
  std::string bias;
  const Node* add = ix.sole_reader(cur, &at);
  if (add && add->op_type == "Add" && add->outputs.size() == 1) {
    const std::string b = other_input(*add, cur);
    const Tensor* bt = ix.constant(b);
    if (bt && (conv ? per_channel(bt, channels, w->rank()) : per_column(bt, channels))) {
      bias = b;
      nodes.push_back(at);
      cur = add->outputs[0];
    }
  }
  std::string residual;
  std::vector<Attribute> attrs = conv ? c.attributes : std::vector<Attribute>{};
  match_tail(ix, opset, conv, &cur, &nodes, &residual, &attrs);
  std::vector<std::string> inputs = {d->input(0), c.input(1), c.has_input(3) ? c.input(3) : "", ws, bias};
  if (conv) inputs.push_back(residual);
  out->nodes = nodes;
  out->fused = make_fused(conv ? "DynQConv" : "DynQMatMul", c, ix.g, nodes, inputs, cur, attrs);
  return true;
}

// Conv (constant weights and bias) [-> Add r] [-> act]
bool match_conv(const Index& ix, int64_t opset, size_t start, Chain* out) {
  const Node& c = ix.g.nodes[start];
  if (c.outputs.size() != 1 || c.inputs.size() < 2 || c.inputs.size() > 3 || c.input(0).empty()) return false;
  const Tensor* w = ix.constant(c.input(1));
  if (!is_f32_const(w) || w->rank() < 3 || w->rank() > 4) return false;
  if (c.has_input(2) && !is_f32_const(ix.constant(c.input(2)))) return false;
  std::vector<size_t> nodes = {start};
  std::string cur = c.outputs[0], residual;
  std::vector<Attribute> attrs = c.attributes;
  // The convolution's output is also a graph output (a watched activation, as calibration has
  // them) read by one residual Add alone: one FusedConv still writes both (its second output).
  size_t add_at = 0;
  const bool also_pre = watched_residual(ix, cur, &add_at, &residual);
  if (also_pre) {
    nodes.push_back(add_at);
    cur = ix.g.nodes[add_at].outputs[0];
    match_activation(ix, opset, &cur, &nodes, &attrs);
  } else {
    match_tail(ix, opset, true, &cur, &nodes, &residual, &attrs);
  }
  out->nodes = nodes;
  out->fused = make_fused("FusedConv", c, ix.g, nodes, {c.input(0), c.input(1), c.has_input(2) ? c.input(2) : "", residual},
                          cur, attrs);
  if (also_pre) out->fused.outputs.push_back(c.outputs[0]);
  return true;
}

// Gemm (transA 0, constant B, constant row C) | MatMul (constant 2-D B) [-> Add bias] [-> act]
bool match_gemm(const Index& ix, int64_t opset, size_t start, Chain* out) {
  const Node& c = ix.g.nodes[start];
  const bool gemm = c.op_type == "Gemm";
  if (c.outputs.size() != 1 || c.input(0).empty()) return false;
  const Tensor* b = ix.constant(c.input(1));
  if (!is_f32_const(b) || b->rank() != 2) return false;
  std::vector<Attribute> attrs;
  std::string bias;
  int64_t n = b->dim(1);
  if (gemm) {
    if (c.inputs.size() < 2 || c.inputs.size() > 3 || c.attr_int("transA", 0) != 0 || c.find_attr("broadcast"))
      return false;
    const bool trans_b = c.attr_int("transB", 0) != 0;
    n = trans_b ? b->dim(0) : b->dim(1);
    if (c.has_input(2)) {
      if (!per_column(ix.constant(c.input(2)), n) || ix.constant(c.input(2))->rank() > 2) return false;
      bias = c.input(2);
    }
    attrs.push_back(Attribute::make_string("kind", "gemm"));
    attrs.push_back(Attribute::make_int("trans_b", trans_b ? 1 : 0));
    attrs.push_back(Attribute::make_float("alpha", c.attr_float("alpha", 1.0f)));
    attrs.push_back(Attribute::make_float("beta", c.attr_float("beta", 1.0f)));
  } else {
    if (c.inputs.size() != 2) return false;
    attrs.push_back(Attribute::make_string("kind", "matmul"));
  }
  std::vector<size_t> nodes = {start};
  std::string cur = c.outputs[0];
  size_t at = 0;
  if (bias.empty()) {
    const Node* add = ix.sole_reader(cur, &at);
    if (add && add->op_type == "Add" && add->outputs.size() == 1) {
      const std::string bv = other_input(*add, cur);
      if (per_column(ix.constant(bv), n)) {
        bias = bv;
        nodes.push_back(at);
        cur = add->outputs[0];
      }
    }
  }
  match_activation(ix, opset, &cur, &nodes, &attrs);
  out->nodes = nodes;
  out->fused = make_fused("FusedGemm", c, ix.g, nodes, {c.input(0), c.input(1), bias}, cur, attrs);
  return true;
}

void fuse_chains(Graph& g, int64_t opset, PassReport* report);
void fuse_mlps(Graph& g, int64_t opset, PassReport* report);

// Input i and i + 1 of a QuantizeLinear / DequantizeLinear: a constant per-tensor float scale
// and an explicit constant 8-bit zero point.
bool per_tensor_qparams(const Index& ix, const Node& n) {
  if (n.inputs.size() != 3) return false;
  const Tensor* s = ix.constant(n.input(1));
  const Tensor* z = ix.constant(n.input(2));
  return is_f32_const(s) && s->numel() == 1 && s->rank() <= 1 && z && (z->dtype() == DType::U8 || z->dtype() == DType::I8) &&
         z->numel() == 1 && z->rank() <= 1;
}

// DequantizeLinear(a), DequantizeLinear(b) -> Add -> QuantizeLinear, all per tensor.
bool match_qadd(const Index& ix, size_t start, Chain* out) {
  const Node& q = ix.g.nodes[start];
  if (q.outputs.size() != 1 || !per_tensor_qparams(ix, q)) return false;
  auto it = ix.producer.find(q.input(0));
  if (it == ix.producer.end()) return false;
  const Node& add = ix.g.nodes[it->second];
  size_t at = 0;
  if (add.op_type != "Add" || !is_default_domain(add.domain) || add.inputs.size() != 2 || ix.sole_reader(add.outputs[0], &at) != &q)
    return false;
  const Node* da = ix.produced_by(add.input(0), "DequantizeLinear");
  const Node* db = ix.produced_by(add.input(1), "DequantizeLinear");
  if (!da || !db || !per_tensor_qparams(ix, *da) || !per_tensor_qparams(ix, *db)) return false;
  out->nodes = {it->second, start};
  out->fused = make_fused("QAdd", add, ix.g, out->nodes,
                          {da->input(0), da->input(1), da->input(2), db->input(0), db->input(1), db->input(2), q.input(1),
                           q.input(2)},
                          q.outputs[0], {});
  return true;
}

// A per-tensor QuantizeLinear of float data or DequantizeLinear of 8-bit data left alone.
bool match_qdq_single(const Index& ix, size_t start, Chain* out) {
  const Node& n = ix.g.nodes[start];
  if (n.outputs.size() != 1 || !per_tensor_qparams(ix, n) || ix.constant(n.input(0))) return false;
  out->nodes = {start};
  // Same op type, internal domain: the node stays a QuantizeLinear / DequantizeLinear (tools that
  // look at Session::model() still see a QDQ graph), computed by the per-tensor vector kernels.
  out->fused = make_fused(n.op_type, n, ix.g, out->nodes,
                          {n.input(0), n.input(1), n.input(2)}, n.outputs[0], {});
  return true;
}

}  // namespace

void fuse_patterns(Graph& g, int64_t opset, PassReport* report) {
  report->removed += rewire_shape_reads(g);
  fuse_chains(g, opset, report);
  fuse_conv_chains(g, opset, report);
  // Second round on the rewritten graph: the Q / DQ nodes no chain absorbed.
  std::vector<Chain> singles;
  {
    const Index ix(g);
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      const Node& n = g.nodes[i];
      if (!is_default_domain(n.domain) || (n.op_type != "QuantizeLinear" && n.op_type != "DequantizeLinear")) continue;
      Chain ch;
      if (match_qdq_single(ix, i, &ch) && op_accepts(ix, n, opset)) singles.push_back(std::move(ch));
    }
  }
  for (Chain& ch : singles) {
    g.nodes[ch.nodes[0]] = std::move(ch.fused);
    ++report->qdq;
  }
  fuse_mlps(g, opset, report);
  fuse_conv_stacks(g, opset, report);
}

namespace {

void fuse_chains(Graph& g, int64_t opset, PassReport* report) {
  std::vector<Chain> chains;
  std::unordered_set<size_t> used;
  {
    const Index ix(g);
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      const Node& n = g.nodes[i];
      if (!is_default_domain(n.domain) || used.count(i)) continue;
      Chain ch;
      bool ok = false;
      if (n.op_type == "ConvInteger" || n.op_type == "MatMulInteger") ok = match_dynamic(ix, opset, i, &ch);
      else if (n.op_type == "Conv") ok = match_conv(ix, opset, i, &ch);
      else if (n.op_type == "Gemm" || n.op_type == "MatMul") ok = match_gemm(ix, opset, i, &ch);
      else if (n.op_type == "QuantizeLinear") ok = match_qadd(ix, i, &ch);
      if (!ok) continue;
      bool clash = false;
      for (size_t k : ch.nodes) clash |= used.count(k) > 0 || !op_accepts(ix, g.nodes[k], opset);
      if (clash) continue;
      for (size_t k : ch.nodes) used.insert(k);
      const std::string& t = ch.fused.op_type;
      if (t == "DynQConv") ++report->dynq_conv;
      else if (t == "DynQMatMul") ++report->dynq_matmul;
      else if (t == "FusedConv") ++report->fused_conv;
      else if (t == "QAdd") ++report->qdq;
      else ++report->fused_gemm;
      chains.push_back(std::move(ch));
    }
  }
  if (chains.empty()) return;
  replace_matches(g, chains);

  // The DynamicQuantizeLinear and scale Mul nodes the dynamic chains no longer read (walked
  // backwards, so the Mul goes first and then the DynamicQuantizeLinear it read).
  std::unordered_map<std::string, int> readers;
  for (const Node& n : g.nodes)
    for (const auto& in : n.inputs) ++readers[in];
  for (const ValueInfo& o : g.outputs) ++readers[o.name];
  std::vector<bool> dead(g.nodes.size(), false);
  for (size_t i = g.nodes.size(); i-- > 0;) {
    const Node& n = g.nodes[i];
    if (!is_default_domain(n.domain) ||
        (n.op_type != "DynamicQuantizeLinear" && n.op_type != "Mul" && n.op_type != "DequantizeLinear"))
      continue;
    bool unread = true;
    for (const auto& o : n.outputs) unread = unread && (o.empty() || readers[o] == 0);
    if (!unread) continue;
    dead[i] = true;
    ++report->removed;
    for (const auto& in : n.inputs) --readers[in];
  }
  std::vector<Node> live;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (!dead[i]) live.push_back(std::move(g.nodes[i]));
  g.nodes = std::move(live);
}

// A node an Mlp can run: an element-wise op with a float constant of one value or one per
// column (the other input is the chain's value), or a dense fused node (input 0).
// Returns the chain input it reads, "" when it is none of those.
std::string mlp_link(const Index& ix, const Node& n, int64_t* width) {
  *width = -1;
  if (is_fused(n) && (n.op_type == "FusedGemm" || n.op_type == "DynQMatMul") && n.outputs.size() == 1) {
    const Tensor* b = ix.constant(n.input(1));
    if (!b || b->rank() != 2 || b->numel() == 0) return "";
    return ix.constant(n.input(0)) ? "" : n.input(0);
  }
  if (!is_default_domain(n.domain) || n.inputs.size() != 2 || n.outputs.size() != 1) return "";
  if (n.op_type != "Add" && n.op_type != "Sub" && n.op_type != "Mul" && n.op_type != "Div") return "";
  const Tensor* c0 = ix.constant(n.input(0));
  const Tensor* c1 = ix.constant(n.input(1));
  if ((c0 != nullptr) == (c1 != nullptr)) return "";
  const Tensor* c = c0 ? c0 : c1;
  if (!per_column(c, c->numel())) return "";
  if (c->numel() > 1) *width = c->numel();
  return c0 ? n.input(1) : n.input(0);
}

// Width a dense link expects (K) and gives (N).
void dense_widths(const Index& ix, const Node& n, int64_t* k, int64_t* nout) {
  const Tensor* b = ix.constant(n.input(1));
  const bool trans = n.op_type == "FusedGemm" && n.attr_int("trans_b", 0) != 0;
  *k = trans ? b->dim(1) : b->dim(0);
  *nout = trans ? b->dim(0) : b->dim(1);
}

void fuse_mlps(Graph& g, int64_t opset, PassReport* report) {
  std::vector<Chain> chains;
  std::vector<std::vector<std::string>> chain_inputs;
  {
    const Index ix(g);
    std::unordered_set<size_t> used;
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      if (used.count(i)) continue;
      int64_t w = -1;
      const std::string x = mlp_link(ix, g.nodes[i], &w);
      if (x.empty()) continue;
      std::vector<size_t> nodes = {i};
      std::string cur = g.nodes[i].outputs[0];
      for (;;) {
        size_t at = 0;
        const Node* next = nullptr;
        auto it = ix.readers.find(cur);
        if (it != ix.readers.end() && it->second.size() == 1 && !ix.graph_outputs.count(cur)) {
          at = it->second[0];
          next = &g.nodes[at];
        }
        int64_t nw = -1;
        if (!next || used.count(at) || mlp_link(ix, *next, &nw) != cur) break;
        nodes.push_back(at);
        cur = next->outputs[0];
      }
      // Worth it with a dense layer and another step; the widths must chain.
      int dense = 0;
      int64_t width = -1;
      bool ok = nodes.size() >= 2;
      for (size_t k = 0; ok && k < nodes.size(); ++k) {
        const Node& n = g.nodes[nodes[k]];
        int64_t lw = -1;
        mlp_link(ix, n, &lw);
        if (is_fused(n)) {
          ++dense;
          int64_t kk = 0, nn = 0;
          dense_widths(ix, n, &kk, &nn);
          ok = width < 0 || width == kk;
          width = nn;
        } else {
          ok = op_accepts(ix, n, opset) && (lw < 0 || width < 0 || lw == width);
          if (lw >= 0) width = lw;
        }
      }
      if (!ok || dense == 0) continue;
      for (size_t k : nodes) used.insert(k);
      Chain ch;
      ch.nodes = nodes;
      std::vector<std::string> inputs = {x};
      auto program = std::make_shared<Graph>();
      for (size_t k : nodes) {
        program->nodes.push_back(g.nodes[k]);
        for (const auto& in : g.nodes[k].inputs)
          if (ix.constant(in) && std::find(inputs.begin(), inputs.end(), in) == inputs.end()) inputs.push_back(in);
      }
      Attribute prog;
      prog.name = "program";
      prog.kind = Attribute::Kind::Graph;
      prog.g = program;
      ch.fused = make_fused("Mlp", g.nodes[nodes.front()], g, nodes, inputs, cur, {prog});
      chains.push_back(std::move(ch));
    }
  }
  report->mlp += replace_matches(g, chains);
}

}  // namespace

}  // namespace tinyq::rt::passes
