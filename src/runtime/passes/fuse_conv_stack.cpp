// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// The convolution-stack fusion (passes.h, step 2, last; the op: op_conv_stack.cpp).
//
// Pairs: a FusedConv layer without a residual whose output only the next node reads, as its
// input, that next node a FusedConv too; both fp32, 2-D, one group, stride and dilation 1, and
// padded to keep the image size (learned_filter_v1's residual blocks: 3x3 + Relu, then 3x3 +
// the block's input). The op runs the two depth-first in bands of rows, the first one's
// output in a ring of rows that stays in cache: each block 9-13% faster in the model, and
// ptq-static's calibration runs 5-8%. Longer runs, the whole body as one stack, measured
// slower (13.2-13.7 against 12.8-13.2 ms): every value that is not a ring is then a whole
// tensor of its own to the end of the stack, where the session recycles three or four.
// The fused node replaces the second node; a pair whose op refuses it stays as it was.

#include <unordered_set>

#include "runtime/passes/fused_ops.h"
#include "runtime/passes/graph_index.h"
#include "runtime/passes/patterns.h"

namespace tinyq::rt::passes {

namespace {

// A FusedConv node a stack can hold: constant 4-D float weights (and bias), one group, stride
// and dilation 1, explicit pads that keep the size (a k x k kernel padded (k - 1) / 2 all round).
bool stack_layer(const GraphIndex& ix, const Node& n) {
  if (!is_fused(n) || n.op_type != "FusedConv" || n.input(0).empty() || ix.constant(n.input(0))) return false;
  const Tensor* w = ix.constant(n.input(1));
  if (!w || w->dtype() != DType::F32 || w->rank() != 4 || w->dim(2) % 2 == 0 || w->dim(3) % 2 == 0) return false;
  if (n.inputs.size() > 2 && !n.inputs[2].empty() && !ix.constant(n.inputs[2])) return false;
  if (n.attr_int("group", 1) != 1 || n.attr_string("auto_pad", "NOTSET") != "NOTSET") return false;
  for (int64_t s : n.attr_ints("strides"))
    if (s != 1) return false;
  for (int64_t d : n.attr_ints("dilations"))
    if (d != 1) return false;
  const std::vector<int64_t> pads = n.attr_ints("pads");
  const int64_t ph = (w->dim(2) - 1) / 2, pw = (w->dim(3) - 1) / 2;
  return pads == std::vector<int64_t>{ph, pw, ph, pw};
}

// The pair's node; its outputs: the values the graph or a node outside the pair reads.
Node build_node(const GraphIndex& ix, const std::vector<size_t>& nodes) {
  Node f = program_node(ix, nodes, "ConvStack", "_stack");
  const std::unordered_set<size_t> members(nodes.begin(), nodes.end());
  for (size_t k : nodes)
    for (const std::string& o : ix.g.nodes[k].outputs) {
      if (o.empty()) continue;
      bool outside = ix.graph_outputs.count(o) > 0;
      auto r = ix.readers.find(o);
      if (r != ix.readers.end())
        for (size_t reader : r->second) outside |= !members.count(reader);
      if (outside) f.outputs.push_back(o);
    }
  return f;
}

struct StackMatch {
  std::vector<size_t> nodes;
  Node fused;
};

// Pairs: a layer without a residual whose output only the next layer reads, as its input.
void fuse_pairs(Graph& g, int64_t opset, PassReport* report) {
  std::vector<StackMatch> matches;
  {
    const GraphIndex ix(g);
    for (size_t i = 0; i + 1 < g.nodes.size(); ++i) {
      const Node& a = g.nodes[i];
      const Node& b = g.nodes[i + 1];
      if (!stack_layer(ix, a) || !stack_layer(ix, b) || (a.inputs.size() > 3 && !a.inputs[3].empty())) continue;
      const std::string& t = a.outputs[0];
      auto r = ix.readers.find(t);
      if (b.input(0) != t || r == ix.readers.end() || r->second != std::vector<size_t>{i + 1}) continue;
      Node f = build_node(ix, {i, i + 1});
      if (f.outputs.empty() || !op_accepts(ix, f, opset, make_conv_stack)) continue;
      matches.push_back(StackMatch{{i, i + 1}, std::move(f)});
      ++i;
    }
  }
  report->conv_stack += replace_matches(g, matches);
}

}  // namespace

void fuse_conv_stacks(Graph& g, int64_t opset, PassReport* report) { fuse_pairs(g, opset, report); }

}  // namespace tinyq::rt::passes
