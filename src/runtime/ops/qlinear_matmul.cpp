// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// QLinearMatMul (opset 10): numpy.matmul of quantised a and b, requantised to y's scale and
// zero point. With acc = sum_p (a - za[i]) * (b - zb[j]) (exact, int32) the real product is
// acc * sa[i] * sb[j], so
//     y[i][j] = saturate(round_half_even(acc * (sa[i] * sb[j] / sy)) + zy)
// (qmath::requantize). a's parameters are per tensor or per row, b's per tensor or per column,
// y's per tensor.

#include "common/qmath.h"
#include "kernels/ref/qgemm_ref.h"
#include "runtime/ops/quant_support.h"

namespace tinyq::rt {

namespace {

void check_constants(const OpContext& ctx) {
  quant::check_8bit_constants(ctx, {0, 2, 3, 5, 7});
  quant::check_scale_constants(ctx, {1, 4, 6});
  if (const Tensor* t = ctx.constant(6); t && !quant::is_per_tensor(*t)) ctx.fail("y_scale must be a scalar");
  if (const Tensor* t = ctx.constant(7); t && !quant::is_per_tensor(*t)) ctx.fail("y_zero_point must be a scalar");
}

}  // namespace

std::unique_ptr<Op> make_qlinear_matmul(const OpContext& ctx) {
  check_arity(ctx, 8, 8, 1, 1);
  check_attrs(ctx, {});
  check_constants(ctx);
  return make_lambda_op([](const OpInputs& in, std::vector<Tensor>& out) {
    const Tensor& a = *in[0];
    const Tensor& b = *in[3];
    const Tensor& y_zp_t = *in[7];
    if (!quant::is_8bit(a.dtype()) || !quant::is_8bit(b.dtype()) || !quant::is_8bit(y_zp_t.dtype()))
      throw Error(std::string("a, b and y_zero_point must be uint8 or int8, are ") + dtype_name(a.dtype()) + ", " +
                  dtype_name(b.dtype()) + " and " + dtype_name(y_zp_t.dtype()));
    if (!quant::is_per_tensor(*in[6]) || !quant::is_per_tensor(y_zp_t))
      throw Error("y_scale and y_zero_point must be scalars");
    const quant::MatMulPlan plan = quant::plan_matmul(a.shape(), b.shape());
    const std::vector<float> sa = quant::scale_values(*in[1], "a_scale");
    const std::vector<float> sb = quant::scale_values(*in[4], "b_scale");
    const float sy = quant::scale_values(*in[6], "y_scale")[0];
    const std::vector<int32_t> za = quant::zero_point_values(in[2], a.dtype(), 1, "a_zero_point");
    const std::vector<int32_t> zb = quant::zero_point_values(in[5], b.dtype(), 1, "b_zero_point");
    const int32_t zy = quant::zero_point_values(&y_zp_t, DType::Undefined, 1, "y_zero_point")[0];
    const quant::MatMulParamLayout l_sa = quant::matmul_param_layout(in[1], plan, true, "a_scale");
    const quant::MatMulParamLayout l_za = quant::matmul_param_layout(in[2], plan, true, "a_zero_point");
    const quant::MatMulParamLayout l_sb = quant::matmul_param_layout(in[4], plan, false, "b_scale");
    const quant::MatMulParamLayout l_zb = quant::matmul_param_layout(in[5], plan, false, "b_zero_point");

    Tensor y(y_zp_t.dtype(), plan.out);
    std::vector<int32_t> acc(static_cast<size_t>(plan.m * plan.n));
    // Multipliers of one output matrix: one, one per row, one per column, or one per element.
    const int64_t mult_rows = l_sa.stride ? plan.m : 1, mult_cols = l_sb.stride ? plan.n : 1;
    std::vector<float> mult(static_cast<size_t>(mult_rows * mult_cols));
    dispatch_types<uint8_t, int8_t>(a.dtype(), [&](auto atag) {
      using TA = decltype(atag);
      dispatch_types<uint8_t, int8_t>(b.dtype(), [&](auto btag) {
        using TB = decltype(btag);
        dispatch_types<uint8_t, int8_t>(y.dtype(), [&](auto ytag) {
          using TY = decltype(ytag);
          for (size_t i = 0; i < plan.a_offsets.size(); ++i) {
            const auto g = quant::batch_qgemm_args<TA, TB>(plan, i, a, b, za, l_za, zb, l_zb, acc.data());
            kernels::qgemm_ref(g);

            for (int64_t r = 0; r < mult_rows; ++r)
              for (int64_t c = 0; c < mult_cols; ++c)
                mult[static_cast<size_t>(r * mult_cols + c)] =
                    qmath::requant_multiplier(sa[static_cast<size_t>(l_sa.offsets[i] + r)],
                                              sb[static_cast<size_t>(l_sb.offsets[i] + c)], sy);
            kernels::RequantArgs rq;
            rq.rows = plan.m;
            rq.cols = plan.n;
            rq.acc = acc.data();
            rq.ld_acc = plan.n;
            rq.multipliers = mult.data();
            rq.mult_row_stride = l_sa.stride ? mult_cols : 0;
            rq.mult_col_stride = l_sb.stride;
            rq.zero_point = zy;
            rq.ld_dst = plan.n;
            kernels::requantize_ref(rq, y.data<TY>() + static_cast<int64_t>(i) * plan.m * plan.n);
          }
        });
      });
    });
    out[0] = std::move(y);
  });
}

}  // namespace tinyq::rt
