// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// Graph-level optimisation at session creation. After the QDQ node groups have become
// QLinearConv / QLinearMatMul (runtime/qdq_fusion.h), optimize_graph rewrites the graph in
// place, in this order:
//   1. constant folding: every node whose inputs are all constant is run once, through the
//      op table, and its outputs become initializers (the Reshapes of biases, the
//      DequantizeLinear of weights that no integer kernel absorbed, Shape chains of static
//      inputs...), so the fusions below see constant values;
//   2. fusions into internal nodes of the domain kFusedDomain (fused_ops.h), each replacing a
//      chain that produces the same values, bit for bit where the chain is integer
//      (see each pattern in fuse_patterns.cpp):
//        DynamicQuantizeLinear -> ConvInteger -> Cast -> Mul(x_scale * w_scale) [-> Add bias]
//          [-> Add residual] [-> Relu | Clip]                               => DynQConv
//        DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul [-> Add bias] [-> Relu | Clip]
//                                                                           => DynQMatMul
//        Conv [-> Add residual] [-> Relu | Clip]                            => FusedConv
//          (a Conv output the graph also returns, read by the Add alone: still fused, the
//          FusedConv's second output; what calibration's watched activations look like)
//        Gemm | MatMul [-> Add bias] [-> Relu | Clip]  (constant B)         => FusedGemm
//        DequantizeLinear x2 -> Add -> QuantizeLinear (per tensor)          => QAdd
//        QuantizeLinear / DequantizeLinear left alone (per tensor)          => the same op types in
//          kFusedDomain, on vector kernels
//        a chain of element-wise-with-constant and FusedGemm / DynQMatMul nodes on one value
//          (the tiny MLP regressors)                                        => Mlp
//      then runs of convolutions (FusedConv, DynQConv or QLinearConv nodes, each the sole
//        reader of the previous one's output; depthwise, 1x1 or narrow-input layers)
//        [QuantizeLinear ->] ... [-> (DequantizeLinear ->) ReduceMean over H, W] => ConvChain
//        (channels-last activations from layer to layer, fuse_conv_chain.cpp)
//      and last, a FusedConv without residual read only by the next FusedConv, as its input
//        (one image size: stride 1, size-keeping pads)                   => ConvStack
//        (the pair run depth-first in bands of rows, the first one's output in a ring,
//        fuse_conv_stack.cpp)
//      (before all of it: Shape nodes read through QuantizeLinear / DequantizeLinear, so a
//      DequantizeLinear kept only for a Shape goes)
//   3. dead-node removal (the DynamicQuantizeLinear, scale Mul and DequantizeLinear nodes left
//      unread).
// Fused nodes prepare their kernels once (packed weights, kernels/fast/select.h); outputs stay
// within the conformance tolerances of the unfused graph (exact for the integer chains).
//
// Internal nodes cannot come from a file: optimize_graph refuses any node already in
// kFusedDomain, and the session only looks fused op types up for nodes in that domain.

#include <cstdint>
#include <string>

#include "runtime/op.h"
#include "tinyq/model.h"

namespace tinyq::rt::passes {

constexpr const char* kFusedDomain = "ai.tinyq.fused";

struct PassOptions {
  bool enabled = true;  ///< false: only refuse internal-domain nodes (the session's optimize=false)
};

/// What optimize_graph did, for tests and `tinyq bench`.
struct PassReport {
  int folded = 0;
  int dynq_conv = 0;
  int dynq_matmul = 0;
  int fused_conv = 0;
  int fused_gemm = 0;
  int mlp = 0;
  int conv_chain = 0;
  int conv_stack = 0;
  int qdq = 0;  ///< QAdd nodes and per-tensor QuantizeLinear / DequantizeLinear on vector kernels
  int removed = 0;
};

/// Rewrites `g` (topologically sorted; it stays so). Throws tinyq::Error naming a node that
/// already uses kFusedDomain.
PassReport optimize_graph(Graph& g, int64_t opset, const PassOptions& options = {});

/// True for a node optimize_graph created.
inline bool is_fused(const Node& node) { return node.domain == kFusedDomain; }
/// The internal op table row of a fused node, or nullptr.
const OpDef* find_fused_op(const std::string& op_type);

}  // namespace tinyq::rt::passes
