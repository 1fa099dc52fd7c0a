// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// optimize_graph (passes.h): constant folding, pattern fusion, removal of the nodes fusion
// left unread, and the table of the internal ops.

#include <deque>
#include <new>
#include <unordered_map>
#include <unordered_set>

#include "runtime/passes/fused_ops.h"
#include "runtime/passes/passes.h"
#include "runtime/passes/patterns.h"

namespace tinyq::rt::passes {

namespace {

// Runs every node whose inputs are all constant once, in graph order, and turns its outputs
// into initializers; a node whose op refuses (a malformed node, an unsupported op) is left for
// the session, which reports it as it always has.
int fold_constants(Graph& g, int64_t opset) {
  std::unordered_map<std::string, const Tensor*> values;
  std::deque<Initializer> added;  // a deque keeps `values`' pointers valid as it grows
  for (const Initializer& init : g.initializers) values[init.name] = &init.tensor;
  std::vector<Node> kept;
  kept.reserve(g.nodes.size());
  int folded = 0;
  for (Node& n : g.nodes) {
    bool all_constant = is_default_domain(n.domain);
    for (const auto& in : n.inputs)
      if (!in.empty() && !values.count(in)) all_constant = false;
    const OpDef* def = all_constant ? find_op(n.op_type, opset) : nullptr;
    if (!def) {
      kept.push_back(std::move(n));
      continue;
    }
    std::vector<Tensor> out(n.outputs.size());
    try {
      OpContext ctx{n, opset, {}};
      OpInputs in;
      for (const auto& name : n.inputs) {
        const Tensor* t = name.empty() ? nullptr : values.at(name);
        ctx.constants.push_back(t);
        in.push_back(t);
      }
      std::unique_ptr<Op> op = def->make(ctx);
      op->run(in, out);
    } catch (const std::bad_alloc&) {
      throw;  // out of memory is not "cannot fold" (see op_accepts)
    } catch (const std::exception&) {
      kept.push_back(std::move(n));
      continue;
    }
    for (size_t k = 0; k < out.size(); ++k) {
      if (n.outputs[k].empty() || out[k].empty()) continue;
      added.push_back(Initializer{n.outputs[k], std::move(out[k]), "folded from " + n.label()});
      values[n.outputs[k]] = &added.back().tensor;
    }
    ++folded;
  }
  g.nodes = std::move(kept);
  for (Initializer& init : added) g.initializers.push_back(std::move(init));
  return folded;
}

// Initializers nothing reads any more (the folded nodes' inputs).
void drop_unread_initializers(Graph& g) {
  std::unordered_set<std::string> read;
  for (const Node& n : g.nodes)
    for (const auto& in : n.inputs) read.insert(in);
  for (const ValueInfo& o : g.outputs) read.insert(o.name);
  std::unordered_set<std::string> declared_inputs;
  for (const ValueInfo& v : g.inputs) declared_inputs.insert(v.name);
  std::vector<Initializer> kept;
  for (Initializer& init : g.initializers)
    if (read.count(init.name) || declared_inputs.count(init.name)) kept.push_back(std::move(init));
  g.initializers = std::move(kept);
}

}  // namespace

PassReport optimize_graph(Graph& g, int64_t opset, const PassOptions& options) {
  for (const Node& n : g.nodes)
    if (is_fused(n))
      throw Error(n.label(), "domain '" + n.domain + "' is not supported (only the default ONNX domain)");
  PassReport report;
  if (!options.enabled) return report;
  report.folded = fold_constants(g, opset);
  fuse_patterns(g, opset, &report);
  if (report.folded > 0) drop_unread_initializers(g);
  return report;
}

const OpDef* find_fused_op(const std::string& op_type) {
  static const OpDef table[] = {
      {"FusedConv", 1, 1, make_fused_conv},   {"DynQConv", 1, 1, make_dynq_conv},
      {"DynQMatMul", 1, 1, make_dynq_matmul}, {"FusedGemm", 1, 1, make_fused_gemm},
      {"QAdd", 1, 1, make_qadd},              {"QuantizeLinear", 1, 1, make_quantize},
      {"DequantizeLinear", 1, 1, make_dequantize}, {"Mlp", 1, 1, make_mlp},
      {"ConvChain", 1, 1, make_conv_chain},  {"ConvStack", 1, 1, make_conv_stack},
  };
  for (const OpDef& def : table)
    if (op_type == def.op_type) return &def;
  return nullptr;
}

}  // namespace tinyq::rt::passes
