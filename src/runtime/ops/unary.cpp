// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// Elementwise unary maths and activations: one factory per ONNX op type, all sharing one run
// function over the reference kernel table in kernels/ref/elementwise_ref.h.

#include "kernels/ref/elementwise_ref.h"
#include "runtime/ops/op_support.h"

namespace tinyq::rt {

namespace {

using kernels::UnaryOp;
using kernels::UnaryParams;

// `int_ok`: the op is also defined for signed integers (Neg, Abs, and Relu from opset 14).
std::unique_ptr<Op> make_unary(const OpContext& ctx, UnaryOp op, UnaryParams params = {}, bool int_ok = false) {
  check_arity(ctx, 1, 1, 1, 1);
  return make_lambda_op([op, params, int_ok](const OpInputs& in, std::vector<Tensor>& out) {
    const Tensor& x = *in[0];
    Tensor y = Tensor::uninitialized(x.dtype(), x.shape());
    const int64_t n = x.numel();
    if (x.dtype() == DType::F32 || x.dtype() == DType::F64) {
      dispatch_types<float, double>(x.dtype(), [&](auto tag) {
        using T = decltype(tag);
        kernels::unary_float_ref<T>(op, params, x.data<T>(), y.data<T>(), n);
      });
    } else if (int_ok) {
      dispatch_types<int8_t, int16_t, int32_t, int64_t>(x.dtype(), [&](auto tag) {
        using T = decltype(tag);
        kernels::unary_int_ref<T>(op, x.data<T>(), y.data<T>(), n);
      });
    } else {
      throw Error(std::string("element type ") + dtype_name(x.dtype()) + " is not supported (float or double only)");
    }
    out[0] = std::move(y);
  });
}

// Ops without attributes.
std::unique_ptr<Op> make_plain(const OpContext& ctx, UnaryOp op, bool int_ok = false) {
  check_attrs(ctx, {});
  return make_unary(ctx, op, {}, int_ok);
}

}  // namespace

std::unique_ptr<Op> make_neg(const OpContext& ctx) { return make_plain(ctx, UnaryOp::Neg, true); }
std::unique_ptr<Op> make_abs(const OpContext& ctx) { return make_plain(ctx, UnaryOp::Abs, true); }
std::unique_ptr<Op> make_sqrt(const OpContext& ctx) { return make_plain(ctx, UnaryOp::Sqrt); }
std::unique_ptr<Op> make_exp(const OpContext& ctx) { return make_plain(ctx, UnaryOp::Exp); }
std::unique_ptr<Op> make_log(const OpContext& ctx) { return make_plain(ctx, UnaryOp::Log); }
std::unique_ptr<Op> make_reciprocal(const OpContext& ctx) { return make_plain(ctx, UnaryOp::Reciprocal); }
std::unique_ptr<Op> make_relu(const OpContext& ctx) { return make_plain(ctx, UnaryOp::Relu, ctx.opset >= 14); }
std::unique_ptr<Op> make_sigmoid(const OpContext& ctx) { return make_plain(ctx, UnaryOp::Sigmoid); }
std::unique_ptr<Op> make_tanh(const OpContext& ctx) { return make_plain(ctx, UnaryOp::Tanh); }
std::unique_ptr<Op> make_softplus(const OpContext& ctx) { return make_plain(ctx, UnaryOp::Softplus); }
std::unique_ptr<Op> make_softsign(const OpContext& ctx) { return make_plain(ctx, UnaryOp::Softsign); }
std::unique_ptr<Op> make_erf(const OpContext& ctx) { return make_plain(ctx, UnaryOp::Erf); }
std::unique_ptr<Op> make_hard_swish(const OpContext& ctx) { return make_plain(ctx, UnaryOp::HardSwish); }

std::unique_ptr<Op> make_leaky_relu(const OpContext& ctx) {
  check_attrs(ctx, {"alpha"});
  UnaryParams p;
  p.alpha = ctx.node.attr_float("alpha", 0.01f);
  return make_unary(ctx, UnaryOp::LeakyRelu, p);
}

std::unique_ptr<Op> make_elu(const OpContext& ctx) {
  check_attrs(ctx, {"alpha"});
  UnaryParams p;
  p.alpha = ctx.node.attr_float("alpha", 1.0f);
  return make_unary(ctx, UnaryOp::Elu, p);
}

std::unique_ptr<Op> make_selu(const OpContext& ctx) {
  check_attrs(ctx, {"alpha", "gamma"});
  UnaryParams p;
  p.alpha = ctx.node.attr_float("alpha", 1.67326319217681884765625f);
  p.gamma = ctx.node.attr_float("gamma", 1.05070102214813232421875f);
  return make_unary(ctx, UnaryOp::Selu, p);
}

std::unique_ptr<Op> make_hard_sigmoid(const OpContext& ctx) {
  check_attrs(ctx, {"alpha", "beta"});
  UnaryParams p;
  p.alpha = ctx.node.attr_float("alpha", 0.2f);
  p.beta = ctx.node.attr_float("beta", 0.5f);
  return make_unary(ctx, UnaryOp::HardSigmoid, p);
}

// Gelu entered the default domain at opset 20; exporters targeting older opsets still emit it
// (and tinyq's own graphs may), so it is accepted at every opset tinyq runs.
std::unique_ptr<Op> make_gelu(const OpContext& ctx) {
  check_attrs(ctx, {"approximate"});
  std::string approx = ctx.node.attr_string("approximate", "none");
  if (approx == "none") return make_unary(ctx, UnaryOp::Gelu);
  if (approx == "tanh") return make_unary(ctx, UnaryOp::GeluTanh);
  ctx.fail("attribute 'approximate' is '" + approx + "'; expected 'none' or 'tanh'");
}

}  // namespace tinyq::rt
