// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

#include "qat/fake_quant_plan.h"

#include <algorithm>
#include <set>

namespace tinyq::qat {

namespace {

const Tensor* float_constant(const Model& m, const std::string& name) {
  if (name.empty()) return nullptr;
  const Initializer* init = m.graph.find_initializer(name);
  return init && init->tensor.dtype() == DType::F32 ? &init->tensor : nullptr;
}

}  // namespace

std::vector<std::string> trainable_initializers(const Model& model) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const Node& n : model.graph.nodes) {
    if (!is_default_domain(n.domain)) continue;
    std::vector<size_t> slots;
    if (n.op_type == "Conv" || n.op_type == "Gemm") slots = {1, 2};
    else if (n.op_type == "MatMul") slots = {0, 1};
    for (size_t i : slots)
      if (i < n.inputs.size() && float_constant(model, n.inputs[i]) && seen.insert(n.inputs[i]).second)
        out.push_back(n.inputs[i]);
  }
  return out;
}

FakeQuantPlan fake_quant_plan(const Model& model, const StaticQuantOptions& options, bool running_minmax) {
  // Exactly where the static QDQ writer will put Q/DQ pairs: its own dry run says which
  // activations and which weights (on which axis).
  StaticQuantPlan exporter = static_quant_plan(model, options);
  FakeQuantPlan plan;
  plan.running_minmax = running_minmax;
  plan.activations = std::move(exporter.activations);
  plan.weights = std::move(exporter.weights);
  return plan;
}

}  // namespace tinyq::qat
