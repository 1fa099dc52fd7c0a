// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// ConvInteger (opset 10): convolution of 8-bit x and w less their zero points, int32 output
// (geometry attributes as Conv's). x_zero_point is per tensor; w_zero_point per tensor or per
// output channel. Padding reads as x_zero_point, i.e. contributes 0 (see kernels/ref/qconv_ref.h).

#include "kernels/fast/select.h"
#include "kernels/fast/thread_pool.h"
#include "kernels/ref/qconv_ref.h"
#include "runtime/ops/quant_support.h"

namespace tinyq::rt {

namespace {

void check_constants(const OpContext& ctx) {
  quant::check_8bit_constants(ctx, {0, 1, 2, 3});
  if (const Tensor* t = ctx.constant(2); t && t->numel() != 1)
    ctx.fail("x_zero_point must be a scalar, has shape " + shape_to_string(t->shape()));
  if (const Tensor* t = ctx.constant(3); t && t->rank() > 1)
    ctx.fail("w_zero_point must be a scalar or 1-D, has shape " + shape_to_string(t->shape()));
}

}  // namespace

std::unique_ptr<Op> make_conv_integer(const OpContext& ctx) {
  check_arity(ctx, 2, 4, 1, 1);
  const kernels::QConvAttrs attrs = quant::parse_conv_attrs(ctx);
  check_constants(ctx);
  // Constant weights (and zero point): the fast integer kernels, packed once; else the
  // reference below.
  std::shared_ptr<const kernels::QConvKernel> fast;
  if (!ctx.node.has_input(3) || ctx.constant(3)) fast = kernels::prepare_qconv(ctx.constant(1), ctx.constant(3), attrs.group);
  return make_lambda_op([attrs, fast](const OpInputs& in, std::vector<Tensor>& out) {
    const Tensor& x = *in[0];
    const Tensor& w = *in[1];
    const Tensor* x_zp = in.size() > 2 ? in[2] : nullptr;
    const Tensor* w_zp = in.size() > 3 ? in[3] : nullptr;
    if (!quant::is_8bit(x.dtype()) || !quant::is_8bit(w.dtype()))
      throw Error(std::string("x and w must be uint8 or int8, are ") + dtype_name(x.dtype()) + " and " +
                  dtype_name(w.dtype()));
    const kernels::ConvParams p = quant::resolve_conv(attrs, x.shape(), w.shape());
    if (x_zp && x_zp->numel() != 1)
      throw Error("x_zero_point must be a scalar, has shape " + shape_to_string(x_zp->shape()));
    const int32_t zx = quant::zero_point_values(x_zp, x.dtype(), 1, "x_zero_point")[0];
    const std::vector<int32_t> zw = quant::zero_point_values(w_zp, w.dtype(), 1, "w_zero_point");
    const int64_t zw_stride = zw.size() == 1 ? 0 : 1;
    if (zw.size() != 1 && (w_zp->rank() != 1 || w_zp->numel() != p.out_channels))
      throw Error("w_zero_point must be a scalar or have " + std::to_string(p.out_channels) +
                  " values (one per output channel), has shape " + shape_to_string(w_zp->shape()));
    Tensor y(DType::I32, quant::conv_output_shape(p));
    if (fast) {
      kernels::QInput qi;
      qi.kind = x.dtype() == DType::U8 ? kernels::QInputKind::U8 : kernels::QInputKind::S8;
      qi.data = x.raw();
      qi.zero_point = zx;
      kernels::QOutput qo;
      qo.dst = y.raw();
      fast->run(p, qi, qo, kernels::current_threads());
      out[0] = std::move(y);
      return;
    }
    dispatch_types<uint8_t, int8_t>(x.dtype(), [&](auto xtag) {
      using TX = decltype(xtag);
      dispatch_types<uint8_t, int8_t>(w.dtype(), [&](auto wtag) {
        using TW = decltype(wtag);
        std::vector<TX> scratch(static_cast<size_t>(kernels::qconv_scratch_size(p)));
        kernels::qconv_ref(p, x.data<TX>(), zx, w.data<TW>(), zw.data(), zw_stride, y.data<int32_t>(), scratch.data());
      });
    });
    out[0] = std::move(y);
  });
}

}  // namespace tinyq::rt
