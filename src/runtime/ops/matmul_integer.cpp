// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// MatMulInteger (opset 10): numpy.matmul of 8-bit A and B less their zero points, int32 output:
//     Y[..., i, j] = sum_p (A[..., i, p] - za[i]) * (B[..., p, j] - zb[j])
// za is per tensor or per row of A, zb per tensor or per column of B (see
// quant::matmul_param_layout for the accepted shapes).

#include "kernels/fast/select.h"
#include "kernels/fast/thread_pool.h"
#include "kernels/ref/qgemm_ref.h"
#include "runtime/ops/quant_support.h"

namespace tinyq::rt {

namespace {

void check_constants(const OpContext& ctx) {
  quant::check_8bit_constants(ctx, {0, 1, 2, 3});
  if (const Tensor* b = ctx.constant(1), *zb = ctx.constant(3); b && zb && b->dtype() != zb->dtype())
    ctx.fail("b_zero_point must have B's type");
}

}  // namespace

std::unique_ptr<Op> make_matmul_integer(const OpContext& ctx) {
  check_arity(ctx, 2, 4, 1, 1);
  check_attrs(ctx, {});
  check_constants(ctx);
  // A constant 2-D B (and zero point): the fast integer kernels, packed once; else the
  // reference below.
  std::shared_ptr<const kernels::QGemmFast> fast;
  if (!ctx.node.has_input(3) || ctx.constant(3)) fast = kernels::prepare_qgemm(ctx.constant(1), ctx.constant(3));
  return make_lambda_op([fast](const OpInputs& in, std::vector<Tensor>& out) {
    const Tensor& a = *in[0];
    const Tensor& b = *in[1];
    const Tensor* a_zp = in.size() > 2 ? in[2] : nullptr;
    const Tensor* b_zp = in.size() > 3 ? in[3] : nullptr;
    if (!quant::is_8bit(a.dtype()) || !quant::is_8bit(b.dtype()))
      throw Error(std::string("A and B must be uint8 or int8, are ") + dtype_name(a.dtype()) + " and " +
                  dtype_name(b.dtype()));
    const quant::MatMulPlan plan = quant::plan_matmul(a.shape(), b.shape());
    const std::vector<int32_t> za = quant::zero_point_values(a_zp, a.dtype(), 1, "a_zero_point");
    const std::vector<int32_t> zb = quant::zero_point_values(b_zp, b.dtype(), 1, "b_zero_point");
    const quant::MatMulParamLayout la = quant::matmul_param_layout(a_zp, plan, true, "a_zero_point");
    const quant::MatMulParamLayout lb = quant::matmul_param_layout(b_zp, plan, false, "b_zero_point");
    Tensor y(DType::I32, plan.out);
    if (fast && la.stride == 0) {  // per-tensor a_zero_point
      kernels::QInput qi;
      qi.kind = a.dtype() == DType::U8 ? kernels::QInputKind::U8 : kernels::QInputKind::S8;
      qi.zero_point = za[0];
      kernels::QOutput qo;
      for (size_t i = 0; i < plan.a_offsets.size(); ++i) {
        qi.data = static_cast<const uint8_t*>(a.raw()) + plan.a_offsets[i];
        qo.dst = y.data<int32_t>() + static_cast<int64_t>(i) * plan.m * plan.n;
        fast->run(plan.m, qi, qo, plan.n, kernels::current_threads());
      }
      out[0] = std::move(y);
      return;
    }
    dispatch_types<uint8_t, int8_t>(a.dtype(), [&](auto atag) {
      using TA = decltype(atag);
      dispatch_types<uint8_t, int8_t>(b.dtype(), [&](auto btag) {
        using TB = decltype(btag);
        for (size_t i = 0; i < plan.a_offsets.size(); ++i) {
          const auto g = quant::batch_qgemm_args<TA, TB>(plan, i, a, b, za, la, zb, lb,
                                                         y.data<int32_t>() + static_cast<int64_t>(i) * plan.m * plan.n);
          kernels::qgemm_ref(g);
        }
      });
    });
    out[0] = std::move(y);
  });
}

}  // namespace tinyq::rt
