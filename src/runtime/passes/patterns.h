// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

#include <cstdint>

#include "runtime/passes/passes.h"
#include "tinyq/model.h"

namespace tinyq::rt::passes {

/// The pattern fusions of optimize_graph (step 2, passes.h), on a folded, sorted graph.
void fuse_patterns(Graph& g, int64_t opset, PassReport* report);

/// Convolution chains into ConvChain nodes (fuse_conv_chain.cpp), after the per-node fusions.
void fuse_conv_chains(Graph& g, int64_t opset, PassReport* report);

/// Pairs of full-resolution FusedConv layers into ConvStack nodes (fuse_conv_stack.cpp), last.
void fuse_conv_stacks(Graph& g, int64_t opset, PassReport* report);

/// Shape nodes read through QuantizeLinear / DequantizeLinear to their input; the Q / DQ
/// nodes left unread go. Returns how many went.
int rewire_shape_reads(Graph& g);

}  // namespace tinyq::rt::passes
