// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// DequantizeLinear (opsets 10 and 13): y = (x - x_zero_point) * x_scale, float output.
// x is uint8, int8 or int32 (a bias quantised at scale_x * scale_w; its zero point, when given,
// must be 0). Opset 10 takes per-tensor parameters only; from opset 13 a 1-D x_scale
// dequantises along `axis` (default 1).

#include "runtime/ops/quant_support.h"

namespace tinyq::rt {

namespace {

bool is_dq_type(DType t) { return quant::is_8bit(t) || t == DType::I32; }

void check_constants(const OpContext& ctx) {
  if (const Tensor* s = ctx.constant(1); s && s->dtype() != DType::F32)
    ctx.fail(std::string("x_scale must be float, is ") + dtype_name(s->dtype()));
  if (const Tensor* z = ctx.constant(2); z && !is_dq_type(z->dtype()))
    ctx.fail(std::string("x_zero_point must be uint8, int8 or int32, is ") + dtype_name(z->dtype()));
  if (const Tensor* s = ctx.constant(1); s && ctx.opset < 13 && !quant::is_per_tensor(*s))
    ctx.fail("x_scale must be a scalar before opset 13, has shape " + shape_to_string(s->shape()));
}

}  // namespace

std::unique_ptr<Op> make_dequantize_linear(const OpContext& ctx) {
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
    if (!is_dq_type(x.dtype()))
      throw Error(std::string("x must be uint8, int8 or int32, is ") + dtype_name(x.dtype()));
    const std::vector<float> scales = quant::scale_values(scale, "x_scale");
    const std::vector<int32_t> zps = quant::zero_point_values(zp, x.dtype(), scales.size(), "x_zero_point");
    if (zps.size() != scales.size())
      throw Error("x_zero_point has shape " + shape_to_string(zp->shape()) + " but x_scale has shape " +
                  shape_to_string(scale.shape()));
    if (x.dtype() == DType::I32)
      for (int32_t z : zps)
        if (z != 0) throw Error("x_zero_point of an int32 input must be 0, has " + std::to_string(z));
    kernels::QAxisLayout layout = quant::tensor_layout(x.shape());
    if (!quant::is_per_tensor(scale)) {
      if (!per_axis) throw Error("x_scale must be a scalar before opset 13, has shape " + shape_to_string(scale.shape()));
      if (scale.rank() != 1) throw Error("x_scale must be a scalar or 1-D, has shape " + shape_to_string(scale.shape()));
      layout = quant::axis_layout(x.shape(), normalize_axis(axis, static_cast<int64_t>(x.rank())));
      if (layout.channels != scale.numel())
        throw Error("x_scale has " + std::to_string(scale.numel()) + " values but axis " + std::to_string(axis) +
                    " of x " + shape_to_string(x.shape()) + " has " + std::to_string(layout.channels));
    }
    Tensor y(DType::F32, x.shape());
    dispatch_types<uint8_t, int8_t, int32_t>(x.dtype(), [&](auto tag) {
      using TX = decltype(tag);
      kernels::dequantize_ref(x.data<TX>(), layout, scales.data(), zps.data(), y.data<float>());
    });
    out[0] = std::move(y);
  });
}

}  // namespace tinyq::rt
