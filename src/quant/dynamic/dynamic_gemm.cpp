// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// Gemm(A, B, C) = alpha * A' * B' + beta * C with a constant B becomes the MatMul chain:
//   [Transpose(A) when transA] -> DynamicQuantizeLinear -> MatMulInteger(A_q, W_q, A_z, 0)
//   -> Cast -> Mul(A_s * W_s) -> Add(beta * C) = Y
// with W = alpha * B' stored as [K, N] (transB folded into the layout, as ONNX Runtime does)
// and beta folded into a constant C (a Mul node when C is computed at run time).
#include "quant/dynamic/dynamic_rewriter.h"
#include "quant/weight_quant.h"

#include <cmath>

namespace tinyq::quant {

std::string gemm_why_not(const DynamicRewriter& rw, const Node& node) {
  if (node.inputs.size() < 2 || node.inputs.size() > 3 || node.outputs.size() != 1)
    return "expects 2 or 3 inputs and 1 output";
  if (!std::isfinite(node.attr_float("alpha", 1.0f)) || !std::isfinite(node.attr_float("beta", 1.0f)))
    return "alpha or beta is not finite";
  if (rw.constant(node.input(0))) return "input A is a constant, not an activation";
  const Initializer* b = rw.constant(node.input(1));
  if (!b) return "input B is not a constant initializer";
  if (b->tensor.rank() != 2) return "input B is not 2-D";
  if (const Initializer* c = rw.constant(node.input(2)))
    if (c->tensor.dtype() != DType::F32) return "input C is not float";
  return weight_problem(b->tensor);
}

void gemm_rewrite(DynamicRewriter& rw, const Node& node) {
  const std::string& y = node.outputs[0];
  const float alpha = node.attr_float("alpha", 1.0f);
  const float beta = node.attr_float("beta", 1.0f);
  const bool trans_a = node.attr_int("transA", 0) != 0;
  const bool trans_b = node.attr_int("transB", 0) != 0;
  const Tensor& b = rw.constant(node.input(1))->tensor;

  WeightRequest req;
  req.name = node.input(1);
  req.transpose = trans_b;
  req.multiplier = alpha;
  if (rw.per_channel()) {
    req.channel_axis = 1;  // of the stored [K, N]
    req.scale_shape = {trans_b ? b.dim(0) : b.dim(1)};
  }

  std::string activation = node.input(0);
  if (trans_a) {
    const std::string transposed = rw.fresh_name(activation + "_t");
    rw.emit("Transpose", {activation}, {transposed});
    activation = transposed;
  }
  const DynamicActivation& a = rw.quantize_activation(activation);
  const StoredWeight& w = rw.quantize_weight(req);

  const bool has_bias = node.has_input(2) && beta != 0.0f;
  const std::string product = has_bias ? rw.fresh_name(y + "_m") : y;
  const std::string acc = rw.fresh_name(y + "_i");
  rw.emit("MatMulInteger", {a.quantized, w.quantized, a.zero_point, w.zero_point}, {acc}).name = node.name;
  rw.emit_rescale(acc, a, w, product, y);
  if (!has_bias) return;

  std::string bias = node.input(2);
  if (beta != 1.0f) {
    if (const Initializer* c = rw.constant(bias)) {
      Tensor scaled = c->tensor.clone();
      float* p = scaled.data<float>();
      for (int64_t i = 0; i < scaled.numel(); ++i) p[i] *= beta;
      bias = rw.add_initializer(bias + "_b", std::move(scaled));
    } else {
      const std::string beta_value = rw.add_initializer(y + "_beta", Tensor::scalar(beta));
      const std::string scaled = rw.fresh_name(bias + "_b");
      rw.emit("Mul", {bias, beta_value}, {scaled});
      bias = scaled;
    }
  }
  rw.emit("Add", {product, bias}, {y});
}

}  // namespace tinyq::quant
