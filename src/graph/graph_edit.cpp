// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include "graph/graph_edit.h"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "tinyq/error.h"

namespace tinyq::graph {

std::vector<size_t> topological_order(const Graph& g) {
  std::unordered_map<std::string, size_t> producer;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    for (const auto& o : g.nodes[i].outputs)
      if (!o.empty()) producer[o] = i;
  std::unordered_set<std::string> available;
  for (const auto& v : g.inputs) available.insert(v.name);
  for (const auto& init : g.initializers) available.insert(init.name);

  // Kahn's algorithm, taking ready nodes in their original order so sorted graphs stay put.
  std::vector<int> pending(g.nodes.size(), 0);
  std::vector<std::vector<size_t>> users(g.nodes.size());
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    std::unordered_set<size_t> deps;
    for (const auto& in : g.nodes[i].inputs) {
      if (in.empty() || available.count(in)) continue;
      auto it = producer.find(in);
      if (it == producer.end())
        throw Error(g.nodes[i].label(), "input '" + in + "' is not produced by any node");
      deps.insert(it->second);
    }
    pending[i] = static_cast<int>(deps.size());
    for (size_t d : deps) users[d].push_back(i);
  }
  std::vector<size_t> order;
  std::vector<size_t> ready;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (pending[i] == 0) ready.push_back(i);
  while (!ready.empty()) {
    auto it = std::min_element(ready.begin(), ready.end());
    size_t n = *it;
    ready.erase(it);
    order.push_back(n);
    for (size_t u : users[n])
      if (--pending[u] == 0) ready.push_back(u);
  }
  if (order.size() != g.nodes.size()) throw Error("graph '" + g.name + "'", "contains a cycle");
  return order;
}

void sort_topologically(Graph& g) {
  std::vector<size_t> order = topological_order(g);
  std::vector<Node> sorted;
  sorted.reserve(order.size());
  for (size_t i : order) sorted.push_back(std::move(g.nodes[i]));
  g.nodes = std::move(sorted);
}

size_t remove_initializer_value_info(Graph& g) {
  size_t before = g.value_info.size();
  g.value_info.erase(std::remove_if(g.value_info.begin(), g.value_info.end(),
                                    [&](const ValueInfo& v) {
                                      return g.find_initializer(v.name) != nullptr;
                                    }),
                     g.value_info.end());
  return before - g.value_info.size();
}

void rename_value(Graph& g, const std::string& from, const std::string& to) {
  for (auto& n : g.nodes) {
    for (auto& s : n.inputs) if (s == from) s = to;
    for (auto& s : n.outputs) if (s == from) s = to;
  }
  for (auto* list : {&g.inputs, &g.outputs, &g.value_info})
    for (auto& v : *list) if (v.name == from) v.name = to;
  for (auto& i : g.initializers) if (i.name == from) i.name = to;
}

void set_initializer(Graph& g, const std::string& name, Tensor tensor) {
  if (Initializer* i = g.find_initializer(name)) {
    i->tensor = std::move(tensor);
    return;
  }
  g.initializers.push_back(Initializer{name, std::move(tensor), {}});
}

bool remove_initializer(Graph& g, const std::string& name) {
  auto it = std::find_if(g.initializers.begin(), g.initializers.end(),
                         [&](const Initializer& i) { return i.name == name; });
  if (it == g.initializers.end()) return false;
  g.initializers.erase(it);
  g.inputs.erase(std::remove_if(g.inputs.begin(), g.inputs.end(),
                                [&](const ValueInfo& v) { return v.name == name; }),
                 g.inputs.end());
  return true;
}

namespace {
void collect_reads(const Graph& g, std::unordered_set<std::string>& used) {
  for (const auto& n : g.nodes) {
    for (const auto& in : n.inputs) used.insert(in);
    for (const auto& a : n.attributes) {
      if (a.g) collect_reads(*a.g, used);
      for (const auto& sub : a.graphs) collect_reads(*sub, used);
    }
  }
  for (const auto& o : g.outputs) used.insert(o.name);
}
}  // namespace

size_t remove_unused_initializers(Graph& g) {
  std::unordered_set<std::string> used;
  collect_reads(g, used);
  std::vector<std::string> dead;
  for (const auto& i : g.initializers)
    if (!used.count(i.name)) dead.push_back(i.name);
  for (const auto& name : dead) remove_initializer(g, name);
  return dead.size();
}

long find_producer(const Graph& g, const std::string& value) {
  for (size_t i = 0; i < g.nodes.size(); ++i)
    for (const auto& o : g.nodes[i].outputs)
      if (o == value) return static_cast<long>(i);
  return -1;
}

std::vector<size_t> find_consumers(const Graph& g, const std::string& value) {
  std::vector<size_t> out;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    for (const auto& in : g.nodes[i].inputs)
      if (in == value) {
        out.push_back(i);
        break;
      }
  return out;
}

std::string unique_name(const Graph& g, const std::string& stem) {
  std::unordered_set<std::string> taken;
  for (const auto& n : g.nodes) {
    taken.insert(n.name);
    for (const auto& s : n.inputs) taken.insert(s);
    for (const auto& s : n.outputs) taken.insert(s);
  }
  for (const auto& i : g.initializers) taken.insert(i.name);
  for (const auto& v : g.inputs) taken.insert(v.name);
  for (const auto& v : g.outputs) taken.insert(v.name);
  if (!taken.count(stem)) return stem;
  for (int k = 1;; ++k) {
    std::string candidate = stem + "_" + std::to_string(k);
    if (!taken.count(candidate)) return candidate;
  }
}

void for_each_node_recursive(const Graph& g, const std::function<void(const Node&)>& fn) {
  for (const auto& n : g.nodes) {
    fn(n);
    for (const auto& a : n.attributes) {
      if (a.g) for_each_node_recursive(*a.g, fn);
      for (const auto& sub : a.graphs) for_each_node_recursive(*sub, fn);
    }
  }
}

}  // namespace tinyq::graph
