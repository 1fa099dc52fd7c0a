// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// MatMul(A, B) with a constant B:
//   DynamicQuantizeLinear(A) -> MatMulInteger(A_q, B_q, A_z, 0) -> Cast -> Mul(A_s * B_s) = Y
// Per channel, B ([..., K, N]) gets one scale per output column: scale shape [N], which
// broadcasts over Y's last axis. A 1-D B has a single column and stays per tensor.
#include "quant/dynamic/dynamic_rewriter.h"
#include "quant/weight_quant.h"

namespace tinyq::quant {

std::string matmul_why_not(const DynamicRewriter& rw, const Node& node) {
  if (node.inputs.size() != 2 || node.outputs.size() != 1) return "expects 2 inputs and 1 output";
  if (rw.constant(node.input(0))) return "input A is a constant, not an activation";
  const Initializer* b = rw.constant(node.input(1));
  if (!b) return "input B is not a constant initializer";
  if (b->tensor.rank() < 1) return "input B is a scalar";
  return weight_problem(b->tensor);
}

void matmul_rewrite(DynamicRewriter& rw, const Node& node) {
  const std::string& y = node.outputs[0];
  const Tensor& b = rw.constant(node.input(1))->tensor;
  WeightRequest req;
  req.name = node.input(1);
  if (rw.per_channel() && b.rank() >= 2) {
    req.channel_axis = static_cast<int>(b.rank()) - 1;
    req.scale_shape = {b.dim(b.rank() - 1)};
  }
  const DynamicActivation& a = rw.quantize_activation(node.input(0));
  const StoredWeight& w = rw.quantize_weight(req);
  const std::string acc = rw.fresh_name(y + "_i");
  rw.emit("MatMulInteger", {a.quantized, w.quantized, a.zero_point, w.zero_point}, {acc}).name = node.name;
  rw.emit_rescale(acc, a, w, y, y);
}

}  // namespace tinyq::quant
