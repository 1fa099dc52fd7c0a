// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// QLinearConv (opset 10): convolution of quantised x and w, requantised to y's scale and zero
// point. With acc[m] = sum (w - zw[m]) * (x - zx) + B[m] (exact, int32; B is quantised at scale
// sx * sw[m] with zero point 0, so it adds to the accumulator unscaled),
//     y[m] = saturate(round_half_even(acc[m] * (sx * sw[m] / sy)) + zy)
// (qmath::requantize). w's scale and zero point are per tensor or per output channel; x's and
// y's per tensor. Geometry attributes as Conv's; padding reads as x_zero_point.

#include "common/qmath.h"
#include "kernels/fast/select.h"
#include "kernels/fast/thread_pool.h"
#include "kernels/ref/qconv_ref.h"
#include "runtime/ops/quant_support.h"

namespace tinyq::rt {

namespace {

void check_constants(const OpContext& ctx) {
  quant::check_8bit_constants(ctx, {0, 2, 3, 5, 7});
  quant::check_scale_constants(ctx, {1, 4, 6});
  for (size_t i : {1, 2, 6, 7})
    if (const Tensor* t = ctx.constant(i); t && !quant::is_per_tensor(*t))
      ctx.fail("input " + std::to_string(i) + " must be a scalar (per tensor), has shape " +
               shape_to_string(t->shape()));
  if (const Tensor* t = ctx.constant(8); t && (t->dtype() != DType::I32 || t->rank() != 1))
    ctx.fail("B must be a 1-D int32 tensor");
}

}  // namespace

std::unique_ptr<Op> make_qlinear_conv(const OpContext& ctx) {
  check_arity(ctx, 8, 9, 1, 1);
  const kernels::QConvAttrs attrs = quant::parse_conv_attrs(ctx);
  check_constants(ctx);
  // Constant weights (and zero points): the fast integer kernels, packed once; else the
  // reference below.
  std::shared_ptr<const kernels::QConvKernel> fast;
  if (!ctx.node.has_input(5) || ctx.constant(5)) fast = kernels::prepare_qconv(ctx.constant(3), ctx.constant(5), attrs.group, true);
  return make_lambda_op([attrs, fast](const OpInputs& in, std::vector<Tensor>& out) {
    const Tensor& x = *in[0];
    const Tensor& w = *in[3];
    const Tensor& y_zp_t = *in[7];
    const Tensor* bias = in.size() > 8 ? in[8] : nullptr;
    if (!quant::is_8bit(x.dtype()) || !quant::is_8bit(w.dtype()))
      throw Error(std::string("x and w must be uint8 or int8, are ") + dtype_name(x.dtype()) + " and " +
                  dtype_name(w.dtype()));
    if (y_zp_t.dtype() != x.dtype())
      throw Error(std::string("y_zero_point must have x's type ") + dtype_name(x.dtype()) + ", has " +
                  dtype_name(y_zp_t.dtype()));
    for (size_t i : {1, 2, 6, 7})
      if (!quant::is_per_tensor(*in[i]))
        throw Error("input " + std::to_string(i) + " must be a scalar (per tensor), has shape " +
                    shape_to_string(in[i]->shape()));
    const kernels::ConvParams p = quant::resolve_conv(attrs, x.shape(), w.shape());
    const size_t m = static_cast<size_t>(p.out_channels);

    const float sx = quant::scale_values(*in[1], "x_scale")[0];
    const int32_t zx = quant::zero_point_values(in[2], x.dtype(), 1, "x_zero_point")[0];
    const std::vector<float> sw = quant::scale_values(*in[4], "w_scale");
    const std::vector<int32_t> zw = quant::zero_point_values(in[5], w.dtype(), 1, "w_zero_point");
    const float sy = quant::scale_values(*in[6], "y_scale")[0];
    const int32_t zy = quant::zero_point_values(&y_zp_t, x.dtype(), 1, "y_zero_point")[0];
    for (auto [count, t, name] : {std::tuple<size_t, const Tensor*, const char*>{sw.size(), in[4], "w_scale"},
                                  {zw.size(), in[5], "w_zero_point"}})
      if (count != 1 && (t->rank() != 1 || count != m))
        throw Error(std::string(name) + " must be a scalar or have " + std::to_string(m) +
                    " values (one per output channel), has shape " + shape_to_string(t->shape()));
    if (bias && (bias->dtype() != DType::I32 || bias->rank() != 1 || static_cast<size_t>(bias->numel()) != m))
      throw Error("B must be int32 of shape [" + std::to_string(m) + "], is " + dtype_name(bias->dtype()) + " " +
                  shape_to_string(bias->shape()));

    std::vector<float> mult(m);
    for (size_t c = 0; c < m; ++c) mult[c] = qmath::requant_multiplier(sx, sw[sw.size() == 1 ? 0 : c], sy);
    const Shape out_shape = quant::conv_output_shape(p);
    const int64_t out_plane = shape_numel(out_shape) / std::max<int64_t>(1, p.batch * p.out_channels);
    if (fast) {
      Tensor y(x.dtype(), out_shape);
      kernels::QInput qi;
      qi.kind = x.dtype() == DType::U8 ? kernels::QInputKind::U8 : kernels::QInputKind::S8;
      qi.data = x.raw();
      qi.zero_point = zx;
      kernels::QOutput qo;
      qo.kind = x.dtype() == DType::U8 ? kernels::QEpilogueKind::RequantU8 : kernels::QEpilogueKind::RequantS8;
      qo.dst = y.raw();
      qo.scale = mult.data();
      qo.bias_i32 = bias ? bias->data<int32_t>() : nullptr;
      qo.zero_point = zy;
      fast->run(p, qi, qo, kernels::current_threads());
      out[0] = std::move(y);
      return;
    }
    Tensor acc(DType::I32, out_shape);
    Tensor y(x.dtype(), out_shape);
    dispatch_types<uint8_t, int8_t>(x.dtype(), [&](auto xtag) {
      using TX = decltype(xtag);
      dispatch_types<uint8_t, int8_t>(w.dtype(), [&](auto wtag) {
        using TW = decltype(wtag);
        std::vector<TX> scratch(static_cast<size_t>(kernels::qconv_scratch_size(p)));
        kernels::qconv_ref(p, x.data<TX>(), zx, w.data<TW>(), zw.data(), zw.size() == 1 ? 0 : 1,
                           acc.data<int32_t>(), scratch.data());
      });
      // Each image's accumulators are [M, positions]: one multiplier and bias per row.
      for (int64_t n = 0; n < p.batch; ++n) {
        kernels::RequantArgs rq;
        rq.rows = p.out_channels;
        rq.cols = out_plane;
        rq.acc = acc.data<int32_t>() + n * p.out_channels * out_plane;
        rq.ld_acc = out_plane;
        rq.bias = bias ? bias->data<int32_t>() : nullptr;
        rq.multipliers = mult.data();
        rq.mult_row_stride = 1;
        rq.mult_col_stride = 0;
        rq.zero_point = zy;
        rq.ld_dst = out_plane;
        kernels::requantize_ref(rq, y.data<TX>() + n * p.out_channels * out_plane);
      }
    });
    out[0] = std::move(y);
  });
}

}  // namespace tinyq::rt
