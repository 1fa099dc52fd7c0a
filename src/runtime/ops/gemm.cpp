// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// Gemm (opsets 7..18): Y = alpha * A' * B' + beta * C, A' = transA ? A^T : A (M x K),
// B' = transB ? B^T : B (K x N), C unidirectionally broadcastable to (M, N) and optional from
// opset 11 (tinyq accepts its absence at any opset).

#include <string>

#include "kernels/nn_kernels.h"
#include "runtime/ops/nn_common.h"

namespace tinyq::rt {

namespace {

struct GemmAttrs {
  bool trans_a = false;
  bool trans_b = false;
  float alpha = 1.0f;
  float beta = 1.0f;
};

// Strides that read C as an (M, N) matrix: a dim of 1 (or a missing one) broadcasts.
void bind_c(const Shape& c, int64_t m, int64_t n, kernels::GemmParams& p) {
  auto fail = [&] {
    throw Error("C " + shape_to_string(c) + " cannot be broadcast to the output [" + std::to_string(m) + "," +
                std::to_string(n) + "]");
  };
  if (c.size() > 2) fail();
  const int64_t rows = c.size() == 2 ? c[0] : 1;
  const int64_t cols = c.empty() ? 1 : c.back();
  if ((rows != 1 && rows != m) || (cols != 1 && cols != n)) fail();
  p.c_row = rows == 1 ? 0 : cols;
  p.c_col = cols == 1 ? 0 : 1;
}

}  // namespace

std::unique_ptr<Op> make_gemm(const OpContext& ctx) {
  const Node& node = ctx.node;
  if (!node.has_input(0) || !node.has_input(1) || node.inputs.size() > 3 || node.outputs.size() != 1)
    ctx.fail("takes inputs A, B and an optional C, and one output");
  if (node.find_attr("broadcast")) ctx.fail("the pre-opset-7 'broadcast' attribute is not supported");
  GemmAttrs a;
  const int64_t trans_a = node.attr_int("transA", 0), trans_b = node.attr_int("transB", 0);
  if ((trans_a != 0 && trans_a != 1) || (trans_b != 0 && trans_b != 1)) ctx.fail("transA and transB must be 0 or 1");
  a.trans_a = trans_a == 1;
  a.trans_b = trans_b == 1;
  a.alpha = node.attr_float("alpha", 1.0f);
  a.beta = node.attr_float("beta", 1.0f);
  if (const Tensor* b = ctx.constant(1))
    if (b->rank() != 2) ctx.fail("B must be a matrix, got " + shape_to_string(b->shape()));
  const bool has_c = node.has_input(2);
  return make_lambda_op([a, has_c](const OpInputs& in, std::vector<Tensor>& out) {
    const Tensor& ta = nn::f32_input(in[0], "input A");
    const Tensor& tb = nn::f32_input(in[1], "input B");
    const Tensor* tc = has_c ? &nn::f32_input(in[2], "input C") : nullptr;
    if (ta.rank() != 2 || tb.rank() != 2)
      throw Error("A and B must be matrices, got " + shape_to_string(ta.shape()) + " and " +
                  shape_to_string(tb.shape()));
    const int64_t m = a.trans_a ? ta.dim(1) : ta.dim(0), k = a.trans_a ? ta.dim(0) : ta.dim(1);
    const int64_t kb = a.trans_b ? tb.dim(1) : tb.dim(0), n = a.trans_b ? tb.dim(0) : tb.dim(1);
    if (k != kb)
      throw Error("inner dimensions differ: A" + std::string(a.trans_a ? "^T " : " ") + shape_to_string(ta.shape()) +
                  ", B" + (a.trans_b ? "^T " : " ") + shape_to_string(tb.shape()));
    kernels::GemmParams p;
    p.M = m;
    p.N = n;
    p.K = k;
    // A[m][k] lives at m*K + k, or at k*M + m when transposed; likewise B.
    p.a_row = a.trans_a ? 1 : k;
    p.a_col = a.trans_a ? m : 1;
    p.b_row = a.trans_b ? 1 : n;
    p.b_col = a.trans_b ? k : 1;
    p.ldd = n;
    p.alpha = a.alpha;
    p.beta = a.beta;
    if (tc) bind_c(tc->shape(), m, n, p);
    Tensor y(DType::F32, {m, n});
    kernels::pick_kernel(kernels::gemm_f32_kernels(), p)
        .run(p, ta.data<float>(), tb.data<float>(), tc ? tc->data<float>() : nullptr, y.data<float>());
    out[0] = std::move(y);
  });
}

}  // namespace tinyq::rt
