// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// QuantizeLinear (opsets 10 and 13): y = saturate(round_half_even(x / y_scale) + y_zero_point).
// x is float or int32; y takes y_zero_point's type (uint8 when it is omitted). Opset 10 takes
// per-tensor parameters only; from opset 13 a 1-D y_scale quantises along `axis` (default 1).

#include "runtime/ops/quant_support.h"

namespace tinyq::rt {

namespace {

void check_constants(const OpContext& ctx) {
  if (const Tensor* s = ctx.constant(1); s && s->dtype() != DType::F32)
    ctx.fail(std::string("y_scale must be float, is ") + dtype_name(s->dtype()));
  if (const Tensor* z = ctx.constant(2); z && !quant::is_8bit(z->dtype()))
    ctx.fail(std::string("y_zero_point must be uint8 or int8, is ") + dtype_name(z->dtype()));
  if (const Tensor* s = ctx.constant(1); s && ctx.opset < 13 && !quant::is_per_tensor(*s))
    ctx.fail("y_scale must be a scalar before opset 13, has shape " + shape_to_string(s->shape()));
}

}  // namespace

std::unique_ptr<Op> make_quantize_linear(const OpContext& ctx) {
  check_arity(ctx, 2, 3, 1, 1);
  const bool per_axis = ctx.opset >= 13;
  if (per_axis) check_attrs(ctx, {"axis"});
  else check_attrs(ctx, {});
  const int64_t axis = ctx.node.attr_int("axis", 1);
  check_constants(ctx);
  return make_lambda_op([axis, per_axis](const OpInputs& in, std::vector<Tensor>& out) {
    const Tensor& x = *in[0];
    const Tensor& scale = *in[1];
    const Tensor* zp = in.size() > 2 ? in[2] : nullptr;
    const DType y_type = zp ? zp->dtype() : DType::U8;
    if (!quant::is_8bit(y_type)) throw Error(std::string("y_zero_point must be uint8 or int8, is ") + dtype_name(y_type));
    const std::vector<float> scales = quant::scale_values(scale, "y_scale");
    const std::vector<int32_t> zps = quant::zero_point_values(zp, y_type, scales.size(), "y_zero_point");
    if (zps.size() != scales.size())
      throw Error("y_zero_point has shape " + shape_to_string(zp->shape()) + " but y_scale has shape " +
                  shape_to_string(scale.shape()));
    kernels::QAxisLayout layout = quant::tensor_layout(x.shape());
    if (!quant::is_per_tensor(scale)) {
      if (!per_axis) throw Error("y_scale must be a scalar before opset 13, has shape " + shape_to_string(scale.shape()));
      if (scale.rank() != 1) throw Error("y_scale must be a scalar or 1-D, has shape " + shape_to_string(scale.shape()));
      layout = quant::axis_layout(x.shape(), normalize_axis(axis, static_cast<int64_t>(x.rank())));
      if (layout.channels != scale.numel())
        throw Error("y_scale has " + std::to_string(scale.numel()) + " values but axis " + std::to_string(axis) +
                    " of x " + shape_to_string(x.shape()) + " has " + std::to_string(layout.channels));
    }
    Tensor y(y_type, x.shape());
    dispatch_types<float, int32_t>(x.dtype(), [&](auto xtag) {
      using TX = decltype(xtag);
      dispatch_types<uint8_t, int8_t>(y_type, [&](auto ytag) {
        using TY = decltype(ytag);
        kernels::quantize_ref(x.data<TX>(), layout, scales.data(), zps.data(), y.data<TY>());
      });
    });
    out[0] = std::move(y);
  });
}

}  // namespace tinyq::rt
