// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// Who produces and who reads each value of a graph, for the fusion passes (fuse_patterns.cpp,
// fuse_conv_chain.cpp). Built once per pass over a graph the pass then rewrites wholesale.

#include <algorithm>
#include <memory>
#include <new>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "runtime/op.h"
#include "runtime/passes/passes.h"
#include "tinyq/model.h"

namespace tinyq::rt::passes {

struct GraphIndex {
  const Graph& g;
  std::unordered_map<std::string, size_t> producer;
  std::unordered_map<std::string, std::vector<size_t>> readers;  // one entry per reading input slot
  std::unordered_set<std::string> graph_outputs;
  std::unordered_map<std::string, const Tensor*> consts;

  explicit GraphIndex(const Graph& graph) : g(graph) {
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      for (const auto& o : g.nodes[i].outputs)
        if (!o.empty()) producer[o] = i;
      for (const auto& in : g.nodes[i].inputs)
        if (!in.empty()) readers[in].push_back(i);
    }
    for (const ValueInfo& o : g.outputs) graph_outputs.insert(o.name);
    for (const Initializer& init : g.initializers) consts[init.name] = &init.tensor;
  }

  const Tensor* constant(const std::string& v) const {
    auto it = consts.find(v);
    return it == consts.end() ? nullptr : it->second;
  }
  /// The node reading v when exactly one input slot reads it and no graph output names it
  /// (its index in *at), else null.
  const Node* sole_reader(const std::string& v, size_t* at) const {
    if (v.empty() || graph_outputs.count(v)) return nullptr;
    auto it = readers.find(v);
    if (it == readers.end() || it->second.size() != 1) return nullptr;
    *at = it->second[0];
    return &g.nodes[it->second[0]];
  }
};

/// Whether `make` takes node n with the graph's constant inputs (an op refuses what it cannot
/// run by throwing): a fusion keeps only what its op accepts. Running out of memory is not a
/// refusal: it goes on to the caller, so a session is either built as planned or not at all
/// (a fusion declined for want of memory would give another session, rounding differently).
inline bool op_accepts(const GraphIndex& ix, const Node& n, int64_t opset, OpFactory make) {
  OpContext ctx{n, opset, {}};
  for (const auto& in : n.inputs) ctx.constants.push_back(in.empty() ? nullptr : ix.constant(in));
  try {
    make(ctx);
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::exception&) {
    return false;
  }
  return true;
}

/// A program node (fused_ops.h: Mlp, ConvChain, ConvStack): `op_type` in the fused domain,
/// reading the first node's input 0 and every constant the nodes read, the nodes themselves
/// its "program" attribute. Its outputs are the caller's to set.
inline Node program_node(const GraphIndex& ix, const std::vector<size_t>& nodes, const std::string& op_type,
                         const std::string& suffix) {
  const Graph& g = ix.g;
  const Node& head = g.nodes[nodes.front()];
  Node f;
  f.name = (head.name.empty() ? head.op_type : head.name) + suffix;
  f.op_type = op_type;
  f.domain = kFusedDomain;
  f.inputs = {head.input(0)};
  auto program = std::make_shared<Graph>();
  f.doc = "fused from";
  for (size_t k : nodes) {
    const Node& n = g.nodes[k];
    program->nodes.push_back(n);
    f.doc += " " + n.label();
    for (const std::string& in : n.inputs)
      if (!in.empty() && ix.constant(in) && std::find(f.inputs.begin(), f.inputs.end(), in) == f.inputs.end())
        f.inputs.push_back(in);
  }
  Attribute prog;
  prog.name = "program";
  prog.kind = Attribute::Kind::Graph;
  prog.g = program;
  f.attributes.push_back(prog);
  return f;
}

/// Rewrites g after a fusion pass: each match's fused node takes the place of the match's
/// last node (its other nodes come before it, so the order stays topological) and the other
/// nodes go. Match: a type with `nodes` (indices into g.nodes, in order) and `fused` (a Node).
/// Returns how many matches went in.
template <typename Match>
int replace_matches(Graph& g, std::vector<Match>& matches) {
  if (matches.empty()) return 0;
  std::vector<bool> drop(g.nodes.size(), false);
  for (Match& m : matches) {
    for (size_t k : m.nodes) drop[k] = true;
    drop[m.nodes.back()] = false;
    g.nodes[m.nodes.back()] = std::move(m.fused);
  }
  std::vector<Node> kept;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (!drop[i]) kept.push_back(std::move(g.nodes[i]));
  g.nodes = std::move(kept);
  return static_cast<int>(matches.size());
}

}  // namespace tinyq::rt::passes
