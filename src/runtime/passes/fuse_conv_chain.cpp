// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// The convolution-chain fusion (passes.h, step 2; the op: op_conv_chain.cpp) and a clean-up
// it relies on.
//
// Chains: a run of two or more convolution nodes of one kind (FusedConv, DynQConv or
// QLinearConv), each reading the previous one's output as its only reader, where every layer
// is depthwise, or dense (group 1) with a 1x1 kernel or fewer than 4 input channels: the
// MobileNet-style bodies the chain kernels are written for (kernels/fast/conv_chain.h). Other
// convolutions keep their own kernels (a 3x3 dense layer with many channels is better served
// by them), and a layer with a residual ends the chain. A ReduceMean over the two spatial
// axes reading the chain's output (after the per-tensor DequantizeLinear of a static chain)
// joins it, and so does the per-tensor QuantizeLinear that makes a static chain's input. The fused node replaces the
// chain's last node, which keeps the order topological. A chain whose op refuses it (a shape the chain kernels decline)
// stays as it was.
//
// Clean-up: a Shape node reading the output of a QuantizeLinear / DequantizeLinear (whose
// output has its input's shape) reads that node's input instead, so a DequantizeLinear kept
// only for a Shape (ONNX Runtime's QDQ files have one on the model input) goes.

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "runtime/passes/fused_ops.h"
#include "runtime/passes/graph_index.h"
#include "runtime/passes/patterns.h"

namespace tinyq::rt::passes {

namespace {

// GraphIndex whose sole reader must also read the value as its input 0 (the chain's X).
struct ChainIndex : GraphIndex {
  using GraphIndex::GraphIndex;
  const Node* sole_reader(const std::string& v, size_t* at) const {
    const Node* n = GraphIndex::sole_reader(v, at);
    return n && !n->inputs.empty() && n->inputs[0] == v ? n : nullptr;
  }
};

// The chain link a node is ("" when none): its op type, when its weights are constant and
// 4-D, every other input but X constant, no residual, and the layer has a shape the chain
// kernels are for.
std::string link_kind(const ChainIndex& ix, const Node& n) {
  size_t w_at = 0, max_inputs = 0;
  if (is_fused(n) && n.op_type == "FusedConv") {
    w_at = 1;
    max_inputs = 3;
  } else if (is_fused(n) && n.op_type == "DynQConv") {
    w_at = 1;
    max_inputs = 5;
  } else if (is_default_domain(n.domain) && n.op_type == "QLinearConv") {
    w_at = 3;
    max_inputs = 9;
  } else {
    return "";
  }
  if (n.outputs.size() != 1 || n.outputs[0].empty() || n.inputs.size() > max_inputs || n.input(0).empty() ||
      ix.constant(n.input(0)))
    return "";
  for (size_t i = 1; i < n.inputs.size(); ++i)
    if (!n.inputs[i].empty() && !ix.constant(n.inputs[i])) return "";
  const Tensor* w = ix.constant(n.input(w_at));
  if (!w || w->rank() != 4) return "";
  const std::string auto_pad = n.attr_string("auto_pad", "NOTSET");
  if (auto_pad != "NOTSET" && auto_pad != "VALID") return "";
  const int64_t group = n.attr_int("group", 1);
  const int64_t m = w->dim(0), c = w->dim(1) * group;
  const bool depthwise = group > 1 && group == c && group == m;
  const bool pointwise = w->dim(2) == 1 && w->dim(3) == 1;
  if (!depthwise && !(group == 1 && (pointwise || c < 4))) return "";
  return n.op_type;
}

// ReduceMean over axes {2, 3} (attribute or constant input), reading `v`.
bool spatial_mean(const ChainIndex& ix, const Node& n) {
  if (!is_default_domain(n.domain) || n.op_type != "ReduceMean" || n.outputs.size() != 1 || n.outputs[0].empty()) return false;
  std::vector<int64_t> axes = n.attr_ints("axes");
  if (n.inputs.size() > 1 && !n.inputs[1].empty()) {
    const Tensor* a = ix.constant(n.inputs[1]);
    if (!a) return false;
    axes = tensor_to_int64s(*a);
  }
  if (axes.size() != 2) return false;
  for (int64_t& a : axes) a = a < 0 ? a + 4 : a;
  return (axes[0] == 2 && axes[1] == 3) || (axes[0] == 3 && axes[1] == 2);
}

struct ChainMatch {
  std::vector<size_t> nodes;
  Node fused;
};

Node build_node(const ChainIndex& ix, const std::vector<size_t>& nodes) {
  Node f = program_node(ix, nodes, "ConvChain", "_chain");
  f.outputs = {ix.g.nodes[nodes.back()].outputs[0]};
  return f;
}

}  // namespace

int rewire_shape_reads(Graph& g) {
  std::unordered_map<std::string, size_t> producer;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    for (const auto& o : g.nodes[i].outputs)
      if (!o.empty()) producer[o] = i;
  bool changed = false;
  for (Node& n : g.nodes) {
    if (!is_default_domain(n.domain) || n.op_type != "Shape" || n.inputs.empty()) continue;
    for (int hops = 0; hops < 8; ++hops) {
      auto it = producer.find(n.inputs[0]);
      if (it == producer.end()) break;
      const Node& p = g.nodes[it->second];
      if (!is_default_domain(p.domain) || (p.op_type != "QuantizeLinear" && p.op_type != "DequantizeLinear") ||
          p.outputs.size() != 1 || p.input(0).empty())
        break;
      n.inputs[0] = p.inputs[0];
      changed = true;
    }
  }
  if (!changed) return 0;
  // The Q / DQ nodes nothing reads any more (walked backwards: a chain of them goes at once).
  std::unordered_map<std::string, int> reads;
  for (const Node& n : g.nodes)
    for (const auto& in : n.inputs) ++reads[in];
  for (const ValueInfo& o : g.outputs) ++reads[o.name];
  std::vector<bool> dead(g.nodes.size(), false);
  int removed = 0;
  for (size_t i = g.nodes.size(); i-- > 0;) {
    const Node& n = g.nodes[i];
    if (!is_default_domain(n.domain) || (n.op_type != "QuantizeLinear" && n.op_type != "DequantizeLinear") ||
        n.outputs.size() != 1 || reads[n.outputs[0]] > 0)
      continue;
    dead[i] = true;
    ++removed;
    for (const auto& in : n.inputs) --reads[in];
  }
  std::vector<Node> live;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (!dead[i]) live.push_back(std::move(g.nodes[i]));
  g.nodes = std::move(live);
  return removed;
}

void fuse_conv_chains(Graph& g, int64_t opset, PassReport* report) {
  std::vector<ChainMatch> matches;
  {
    const ChainIndex ix(g);
    std::unordered_set<size_t> used;
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      if (used.count(i)) continue;
      const std::string kind = link_kind(ix, g.nodes[i]);
      if (kind.empty()) continue;
      std::vector<size_t> nodes = {i};
      for (;;) {
        size_t at = 0;
        const Node* next = ix.sole_reader(g.nodes[nodes.back()].outputs[0], &at);
        if (!next || used.count(at) || link_kind(ix, *next) != kind) break;
        nodes.push_back(at);
      }
      if (nodes.size() < 2) continue;
      // The tail, tried first with the chain and dropped if the op refuses it.
      std::vector<size_t> tail;
      size_t at = 0;
      const Node* r = ix.sole_reader(g.nodes[nodes.back()].outputs[0], &at);
      if (r && kind == "QLinearConv" && is_default_domain(r->domain) && r->op_type == "DequantizeLinear" &&
          r->outputs.size() == 1) {
        size_t at2 = 0;
        const Node* mean = ix.sole_reader(r->outputs[0], &at2);
        if (mean && spatial_mean(ix, *mean)) tail = {at, at2};
      } else if (r && kind != "QLinearConv" && spatial_mean(ix, *r)) {
        tail = {at};
      }
      // The head: a static chain's input quantised by a QuantizeLinear that only it reads.
      std::vector<size_t> head;
      if (kind == "QLinearConv") {
        auto p = ix.producer.find(g.nodes[nodes.front()].input(0));
        size_t at_q = 0;
        if (p != ix.producer.end() && !used.count(p->second)) {
          const Node& qn = g.nodes[p->second];
          if (is_default_domain(qn.domain) && qn.op_type == "QuantizeLinear" && qn.inputs.size() == 3 && qn.outputs.size() == 1 &&
              !qn.input(0).empty() && !ix.constant(qn.input(0)) && ix.constant(qn.input(1)) &&
              ix.constant(qn.input(2)) && ix.sole_reader(qn.outputs[0], &at_q) == &g.nodes[nodes.front()])
            head = {p->second};
        }
      }
      // The longest version the op takes: with the head and the tail, then without either.
      bool done = false;
      for (int variant = 0; variant < 4 && !done; ++variant) {
        const bool with_head = variant % 2 == 0, with_tail = variant < 2;
        if ((with_head && head.empty()) || (with_tail && tail.empty())) continue;
        std::vector<size_t> all = with_head ? head : std::vector<size_t>{};
        all.insert(all.end(), nodes.begin(), nodes.end());
        if (with_tail) all.insert(all.end(), tail.begin(), tail.end());
        Node f = build_node(ix, all);
        if (!op_accepts(ix, f, opset, make_conv_chain)) continue;
        for (size_t k : all) used.insert(k);
        matches.push_back(ChainMatch{all, std::move(f)});
        done = true;
      }
    }
  }
  report->conv_chain += replace_matches(g, matches);
}

}  // namespace tinyq::rt::passes
