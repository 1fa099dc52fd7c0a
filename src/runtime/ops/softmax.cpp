// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// Softmax. Before opset 13 the input is coerced to 2-D at `axis` (default 1) and each row of
// prod(dims[axis:]) values is normalised; from opset 13 only dimension `axis` (default -1) is.
// Both are a walk over (outer, len, inner) blocks: coerced is len = prod(dims[axis:]), inner = 1.

#include <cmath>

#include "runtime/broadcast.h"
#include "runtime/ops/op_support.h"

namespace tinyq::rt {

namespace {

// Subtracting the row maximum keeps exp() from overflowing; the sum is kept in double.
template <typename T>
void softmax_ref(const T* src, T* dst, int64_t outer, int64_t len, int64_t inner) {
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      const T* s = src + o * len * inner + i;
      T* d = dst + o * len * inner + i;
      T max = s[0];
      for (int64_t k = 1; k < len; ++k) max = s[k * inner] > max ? s[k * inner] : max;
      double sum = 0;
      for (int64_t k = 0; k < len; ++k) {
        d[k * inner] = std::exp(s[k * inner] - max);
        sum += static_cast<double>(d[k * inner]);
      }
      for (int64_t k = 0; k < len; ++k) d[k * inner] = static_cast<T>(static_cast<double>(d[k * inner]) / sum);
    }
  }
}

}  // namespace

std::unique_ptr<Op> make_softmax(const OpContext& ctx) {
  check_attrs(ctx, {"axis"});
  check_arity(ctx, 1, 1, 1, 1);
  const bool coerce_2d = ctx.opset < 13;
  const int64_t axis = ctx.node.attr_int("axis", coerce_2d ? 1 : -1);
  return make_lambda_op([coerce_2d, axis](const OpInputs& in, std::vector<Tensor>& out) {
    const Tensor& x = *in[0];
    const int64_t rank = static_cast<int64_t>(x.rank());
    if (rank == 0) throw Error("Softmax needs an input of rank 1 or more");
    const int64_t a = normalize_axis(axis, rank);
    int64_t outer = 1, len = 1, inner = 1;
    for (int64_t d = 0; d < a; ++d) outer *= x.dim(d);
    if (coerce_2d) {
      for (int64_t d = a; d < rank; ++d) len *= x.dim(d);
    } else {
      len = x.dim(a);
      for (int64_t d = a + 1; d < rank; ++d) inner *= x.dim(d);
    }
    Tensor y(x.dtype(), x.shape());
    if (x.numel() > 0) {
      dispatch_types<float, double>(x.dtype(), [&](auto tag) {
        using T = decltype(tag);
        softmax_ref<T>(x.data<T>(), y.data<T>(), outer, len, inner);
      });
    }
    out[0] = std::move(y);
  });
}

}  // namespace tinyq::rt
