// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// Graph editing helpers shared by the quantisers and the runtime's passes.

#include <functional>
#include <string>
#include <vector>

#include "tinyq/model.h"

namespace tinyq::graph {

/// Node indices in an order where every node follows the producers of its inputs.
/// Throws tinyq::Error on a cycle or on an input nothing produces.
std::vector<size_t> topological_order(const Graph& g);
/// Reorders g.nodes topologically (stable for already-sorted graphs).
void sort_topologically(Graph& g);

/// Drops value_info entries whose names are initializers (the exporter quirk that broke ONNX
/// Runtime's shape inference in the seed system). Returns how many were removed.
size_t remove_initializer_value_info(Graph& g);

/// Renames a value everywhere it appears: node inputs/outputs, graph inputs/outputs,
/// value_info and initializers.
void rename_value(Graph& g, const std::string& from, const std::string& to);

/// Adds an initializer, replacing one of the same name.
void set_initializer(Graph& g, const std::string& name, Tensor tensor);
/// Removes an initializer (and any graph input of that name). Returns false when absent.
bool remove_initializer(Graph& g, const std::string& name);
/// Removes initializers that no node, subgraph or graph output reads.
size_t remove_unused_initializers(Graph& g);

/// Index of the node producing `value`, or -1.
long find_producer(const Graph& g, const std::string& value);
/// Indices of nodes reading `value`.
std::vector<size_t> find_consumers(const Graph& g, const std::string& value);
/// A value name not yet used in the graph, built from `stem`.
std::string unique_name(const Graph& g, const std::string& stem);

/// Every op (domain, op_type) in the graph and its subgraphs, recursively, as labels.
void for_each_node_recursive(const Graph& g, const std::function<void(const Node&)>& fn);

}  // namespace tinyq::graph
