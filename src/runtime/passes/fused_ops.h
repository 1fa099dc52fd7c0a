// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// The internal ops the passes create (domain passes::kFusedDomain). Their inputs and
// attributes, as fuse_patterns.cpp writes them:
//
//   FusedConv   (X, W, [B], [R])                       Conv's attributes + activation
//       Y = act(conv(X, W) + B + R)   [, P = conv(X, W) + B  (with R: the Conv's own output,
//       when the graph still wants it)]
//   DynQConv    (X, W, [w_zero_point], w_scale, [B], [R])   ConvInteger's attributes + activation
//       xs, xz = DynamicQuantizeLinear's parameters of X;  acc = ConvInteger(q(X), W, xz, w_zp)
//       Y = act(((float(acc) * (xs * w_scale)) + B) + R)     (each step rounded as the graph does)
//   DynQMatMul  (X, W, [w_zero_point], w_scale, [B])    activation
//       the same around MatMulInteger; X [..., K], W [K, N], Y [..., N]
//   FusedGemm   (A, B, [C])                             kind ("gemm" | "matmul"), trans_b,
//       alpha, beta, activation;  Y = act(alpha * A B + beta * C), C a row vector [N]
//   QAdd        (a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp)    Q(DQ(a) + DQ(b))
//   QuantizeLinear (x, y_scale, y_zp) / DequantizeLinear (x, x_scale, x_zp)   per tensor
//       (op_qdq.cpp: constant per-tensor parameters, 8-bit zero points)
//   Mlp         (X, constants...)                       program (a Graph attribute): op_mlp.cpp
//   ConvChain   (X, constants...)                       program: the chain's convolution nodes
//       and its ReduceMean tail as they were (op_conv_chain.cpp)
//   ConvStack   (X, constants...)                       program: FusedConv nodes reading X or
//       earlier ones' outputs, run depth-first in bands of rows (op_conv_stack.cpp); outputs:
//       those of its layers read after it
//
// activation: "" (none), "relu", or "clip" with clip_min / clip_max (floats).
// B (conv bias) is per output channel; R a residual of Y's shape, added before the activation
// (another shape falls back to a broadcasting add, still before the activation).

#include <memory>
#include <string>

#include "runtime/op.h"

namespace tinyq::rt::passes {

std::unique_ptr<Op> make_fused_conv(const OpContext& ctx);
std::unique_ptr<Op> make_dynq_conv(const OpContext& ctx);
std::unique_ptr<Op> make_dynq_matmul(const OpContext& ctx);
std::unique_ptr<Op> make_fused_gemm(const OpContext& ctx);
std::unique_ptr<Op> make_qadd(const OpContext& ctx);
std::unique_ptr<Op> make_quantize(const OpContext& ctx);
std::unique_ptr<Op> make_dequantize(const OpContext& ctx);
std::unique_ptr<Op> make_mlp(const OpContext& ctx);
std::unique_ptr<Op> make_conv_chain(const OpContext& ctx);
std::unique_ptr<Op> make_conv_stack(const OpContext& ctx);

/// The activation attributes of a fused node.
struct Activation {
  bool on = false;
  float lo = 0.0f, hi = 0.0f;
};
Activation parse_activation(const OpContext& ctx);

}  // namespace tinyq::rt::passes
