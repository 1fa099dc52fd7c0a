// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// Who produces and who reads each value of a graph, for the fusion passes (fuse_patterns.cpp,
// fuse_conv_chain.cpp). Built once per pass over a graph the pass then rewrites wholesale.

#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

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

}  // namespace tinyq::rt::passes
