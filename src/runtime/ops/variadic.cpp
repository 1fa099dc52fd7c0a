// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// Variadic broadcasting ops: Min Max Sum Mean. Folded left to right over the inputs, as
// ONNX Runtime does, so float results round the same way.

#include <algorithm>

#include "runtime/ops/binary_common.h"
#include "runtime/ops/op_support.h"

namespace tinyq::rt {

using kernels::BinaryOp;

namespace {

std::unique_ptr<Op> make_variadic(const OpContext& ctx, BinaryOp op, bool mean) {
  check_attrs(ctx, {});
  // Every listed input is required.
  check_arity(ctx, std::max<size_t>(1, ctx.node.inputs.size()), std::max<size_t>(1, ctx.node.inputs.size()), 1, 1);
  return make_lambda_op([op, mean](const OpInputs& in, std::vector<Tensor>& out) {
    Tensor acc = *in[0];
    for (size_t k = 1; k < in.size(); ++k) acc = binary_broadcast(op, acc, *in[k]);
    if (mean && in.size() > 1) {
      Tensor count;
      dispatch_types<TINYQ_ARITH_TYPES>(acc.dtype(), [&](auto tag) {
        using T = decltype(tag);
        count = Tensor::scalar<T>(static_cast<T>(in.size()));
      });
      acc = binary_broadcast(BinaryOp::Div, acc, count);
    }
    out[0] = std::move(acc);
  });
}

}  // namespace

std::unique_ptr<Op> make_min(const OpContext& ctx) { return make_variadic(ctx, BinaryOp::Min, false); }
std::unique_ptr<Op> make_max(const OpContext& ctx) { return make_variadic(ctx, BinaryOp::Max, false); }
std::unique_ptr<Op> make_sum(const OpContext& ctx) { return make_variadic(ctx, BinaryOp::Add, false); }
std::unique_ptr<Op> make_mean(const OpContext& ctx) { return make_variadic(ctx, BinaryOp::Add, true); }

}  // namespace tinyq::rt
