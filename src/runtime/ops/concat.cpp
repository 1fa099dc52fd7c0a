// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// Concat along `axis` (negative from opset 11). Seen as [outer, dim_k * inner] blocks, each
// input contributes one contiguous chunk per outer index.

#include <algorithm>
#include <cstring>

#include "runtime/broadcast.h"
#include "runtime/ops/op_support.h"

namespace tinyq::rt {

std::unique_ptr<Op> make_concat(const OpContext& ctx) {
  check_attrs(ctx, {"axis"});
  const size_t n_in = std::max<size_t>(1, ctx.node.inputs.size());
  check_arity(ctx, n_in, n_in, 1, 1);
  require_attr(ctx, "axis");
  const int64_t axis = ctx.node.attr_int("axis", 0);
  return make_lambda_op([axis](const OpInputs& in, std::vector<Tensor>& out) {
    const Tensor& first = *in[0];
    const int64_t rank = static_cast<int64_t>(first.rank());
    const size_t a = static_cast<size_t>(normalize_axis(axis, rank));
    Shape shape = first.shape();
    shape[a] = 0;
    for (const Tensor* t : in) {
      if (t->dtype() != first.dtype())
        throw Error(std::string("input element types differ: ") + dtype_name(first.dtype()) + " and " +
                    dtype_name(t->dtype()));
      bool ok = t->rank() == first.rank();
      for (size_t d = 0; ok && d < first.rank(); ++d) ok = d == a || t->dim(d) == first.dim(d);
      if (!ok)
        throw Error("cannot concatenate shapes " + shape_to_string(first.shape()) + " and " +
                    shape_to_string(t->shape()) + " on axis " + std::to_string(axis));
      shape[a] += t->dim(a);
    }
    Tensor y(first.dtype(), shape);
    int64_t outer = 1, inner = 1;
    for (size_t d = 0; d < a; ++d) outer *= shape[d];
    for (size_t d = a + 1; d < shape.size(); ++d) inner *= shape[d];
    const size_t esize = dtype_size(first.dtype());
    const size_t out_row = static_cast<size_t>(shape[a] * inner) * esize;
    size_t col = 0;  // byte offset of this input's chunk within an output row
    for (const Tensor* t : in) {
      const size_t chunk = static_cast<size_t>(t->dim(a) * inner) * esize;
      if (chunk == 0) continue;
      const auto* src = static_cast<const uint8_t*>(t->raw());
      auto* dst = static_cast<uint8_t*>(y.raw()) + col;
      for (int64_t o = 0; o < outer; ++o) std::memcpy(dst + static_cast<size_t>(o) * out_row, src + static_cast<size_t>(o) * chunk, chunk);
      col += chunk;
    }
    out[0] = std::move(y);
  });
}

}  // namespace tinyq::rt
