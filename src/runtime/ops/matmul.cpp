// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// MatMul (opsets 1..18) with numpy's matmul semantics: a 1-D A is a row vector and a 1-D B a
// column vector (the added dim is removed from the result); leading (batch) dims broadcast.

#include <algorithm>
#include <string>

#include "kernels/nn_kernels.h"
#include "runtime/ops/nn_common.h"

namespace tinyq::rt {

std::unique_ptr<Op> make_matmul(const OpContext& ctx) {
  const Node& node = ctx.node;
  if (node.inputs.size() != 2 || !node.has_input(0) || !node.has_input(1) || node.outputs.size() != 1)
    ctx.fail("takes inputs A and B, and one output");
  return make_lambda_op([](const OpInputs& in, std::vector<Tensor>& out) {
    const Tensor& ta = nn::f32_input(in[0], "input A");
    const Tensor& tb = nn::f32_input(in[1], "input B");
    if (ta.rank() == 0 || tb.rank() == 0) throw Error("MatMul inputs must have rank 1 or more");
    Shape sa = ta.shape(), sb = tb.shape();
    const bool a_vec = sa.size() == 1, b_vec = sb.size() == 1;
    if (a_vec) sa.insert(sa.begin(), 1);
    if (b_vec) sb.push_back(1);
    const int64_t m = sa[sa.size() - 2], k = sa.back(), n = sb.back();
    if (sb[sb.size() - 2] != k)
      throw Error("inner dimensions differ: A " + shape_to_string(ta.shape()) + ", B " + shape_to_string(tb.shape()));

    // Broadcast the batch dims, right-aligned.
    const size_t batch_rank = std::max(sa.size(), sb.size()) - 2;
    Shape batch(batch_rank), a_batch(batch_rank, 1), b_batch(batch_rank, 1);
    for (size_t i = 0; i < sa.size() - 2; ++i) a_batch[batch_rank - (sa.size() - 2) + i] = sa[i];
    for (size_t i = 0; i < sb.size() - 2; ++i) b_batch[batch_rank - (sb.size() - 2) + i] = sb[i];
    for (size_t i = 0; i < batch_rank; ++i) {
      if (a_batch[i] != b_batch[i] && a_batch[i] != 1 && b_batch[i] != 1)
        throw Error("batch dimensions of A " + shape_to_string(ta.shape()) + " and B " + shape_to_string(tb.shape()) +
                    " cannot be broadcast");
      batch[i] = a_batch[i] == 1 ? b_batch[i] : a_batch[i];
    }

    Shape y_shape = batch;
    if (!a_vec) y_shape.push_back(m);
    if (!b_vec) y_shape.push_back(n);
    Tensor y(DType::F32, y_shape);

    kernels::GemmParams p;
    p.M = m;
    p.N = n;
    p.K = k;
    p.a_row = k;
    p.a_col = 1;
    p.b_row = n;
    p.b_col = 1;
    p.ldd = n;
    const kernels::GemmF32Kernel& kernel = kernels::pick_kernel(kernels::gemm_f32_kernels(), p);
    const int64_t batches = shape_numel(batch);
    const float* a = ta.data<float>();
    const float* b = tb.data<float>();
    float* dst = y.data<float>();
    // Walk the output batch index; a broadcast dim (size 1) of A or B stays at 0.
    std::vector<int64_t> idx(batch_rank, 0);
    for (int64_t t = 0; t < batches; ++t) {
      int64_t a_off = 0, b_off = 0;
      for (size_t i = 0; i < batch_rank; ++i) {
        a_off = a_off * a_batch[i] + (a_batch[i] == 1 ? 0 : idx[i]);
        b_off = b_off * b_batch[i] + (b_batch[i] == 1 ? 0 : idx[i]);
      }
      kernel.run(p, a + a_off * m * k, b + b_off * k * n, nullptr, dst + t * m * n);
      for (size_t i = batch_rank; i-- > 0;) {
        if (++idx[i] < batch[i]) break;
        idx[i] = 0;
      }
    }
    out[0] = std::move(y);
  });
}

}  // namespace tinyq::rt
