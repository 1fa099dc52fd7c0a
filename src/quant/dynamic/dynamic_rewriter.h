// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// The dynamic-PTQ rewriter: the state the per-op quantisers share (value names, the
// DynamicQuantizeLinear of each activation, the stored int8 weights) and the table of per-op
// quantisers (ONNX Runtime's registry of op quantisers, one row per op type; every other op is
// copied unchanged, fp32).
//
// The rewritten graph is built node by node in the original order; a quantiser replaces its
// node with a short chain, so the graph stays topologically sorted as long as the input was.
// Names are kept short (the value's name + a short suffix; new nodes unnamed, the integer op
// keeps the original node's name) because on the tiniest models the graph, not the weights, is
// most of the file.

#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "tinyq/model.h"

namespace tinyq::quant {

/// An activation quantised at run time: DynamicQuantizeLinear's three outputs.
struct DynamicActivation {
  std::string quantized;   ///< uint8
  std::string scale;       ///< float scalar
  std::string zero_point;  ///< uint8 scalar
};

/// A constant weight quantised offline.
struct StoredWeight {
  std::string quantized;   ///< int8, in the layout the integer op reads
  std::string scale;       ///< float: scalar, or per channel shaped to broadcast over the output
  std::string zero_point;  ///< int8 scalar 0, shared by every weight (symmetric quantisation)
};

/// How a quantiser wants a weight prepared before it is quantised.
struct WeightRequest {
  std::string name;          ///< the fp32 initializer
  bool transpose = false;    ///< 2-D transpose first (Gemm's transB)
  float multiplier = 1.0f;   ///< folded into the values first (Gemm's alpha)
  int channel_axis = -1;     ///< per-channel axis of the prepared weight; -1: per tensor
  Shape scale_shape;         ///< per channel: the stored scale's shape ([N] or [1,M,1,1])
};

class DynamicRewriter {
 public:
  DynamicRewriter(Graph& graph, bool per_channel);

  const Graph& graph() const { return graph_; }
  bool per_channel() const { return per_channel_; }

  /// The initializer behind a value when it is a true constant (an initializer no graph input
  /// can override), else nullptr.
  const Initializer* constant(const std::string& value) const;

  /// A value name not used anywhere in the graph yet, `stem` when free.
  std::string fresh_name(const std::string& stem);
  /// Adds an initializer under a fresh name built from `stem`; returns the name.
  std::string add_initializer(const std::string& stem, Tensor tensor);
  /// A constant with a new shape (same elements): reshaped in place when one node is its only
  /// reader, so the name stays; otherwise a new initializer beside it.
  std::string reshaped_constant(const std::string& name, const Shape& shape);
  /// How many times a value is read: node inputs (subgraphs included) and graph outputs.
  size_t use_count(const std::string& value) const;

  /// DynamicQuantizeLinear of `value`, emitted the first time an activation is asked for.
  const DynamicActivation& quantize_activation(const std::string& value);
  /// The weight quantised as requested (cached: a weight shared by nodes is stored once).
  const StoredWeight& quantize_weight(const WeightRequest& request);

  /// The common tail of every rewritten node:
  ///   int32 -> Cast(float) -> Mul(., activation scale * weight scale) -> dst
  /// New values are named from `stem` (the node's output).
  void emit_rescale(const std::string& int32_value, const DynamicActivation& activation,
                    const StoredWeight& weight, const std::string& dst, const std::string& stem);

  /// Appends a node to the rewritten graph.
  void emit(Node node);
  /// Appends a new unnamed node and returns it for attributes.
  Node& emit(const std::string& op_type, std::vector<std::string> inputs,
             std::vector<std::string> outputs);

  /// The rewritten node list (the rewriter is spent afterwards).
  std::vector<Node> take_nodes() { return std::move(nodes_); }

 private:
  Graph& graph_;
  bool per_channel_;
  std::vector<Node> nodes_;
  std::unordered_set<std::string> names_;
  std::unordered_set<std::string> graph_inputs_;
  std::unordered_map<std::string, size_t> uses_;
  std::unordered_map<std::string, DynamicActivation> activations_;
  std::unordered_map<std::string, StoredWeight> weights_;
  std::string weight_zero_point_;
};

/// One row of the dynamic quantiser table.
struct DynamicOpQuantiser {
  const char* op_type;
  /// Why the node must stay fp32, "" when it can be rewritten. It checks everything rewrite()
  /// relies on, so a rewrite never stops half-way.
  std::string (*why_not)(const DynamicRewriter& rw, const Node& node);
  /// Emits the node's replacement chain; its outputs keep the node's output names.
  void (*rewrite)(DynamicRewriter& rw, const Node& node);
};

/// The table: MatMul, Gemm, Conv (src/quant/dynamic/dynamic_table.cpp).
const std::vector<DynamicOpQuantiser>& dynamic_quantisers();
/// The row for an op type, or nullptr.
const DynamicOpQuantiser* find_dynamic_quantiser(const std::string& op_type);

// The per-op quantisers, one file each.
std::string matmul_why_not(const DynamicRewriter& rw, const Node& node);
void matmul_rewrite(DynamicRewriter& rw, const Node& node);
std::string gemm_why_not(const DynamicRewriter& rw, const Node& node);
void gemm_rewrite(DynamicRewriter& rw, const Node& node);
std::string conv_why_not(const DynamicRewriter& rw, const Node& node);
void conv_rewrite(DynamicRewriter& rw, const Node& node);

}  // namespace tinyq::quant
