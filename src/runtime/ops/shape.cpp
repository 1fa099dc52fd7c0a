// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// Shape: the input's dimensions as a 1-D int64 tensor; from opset 15 only dims[start:end]
// (negative values count from the end, both clamped to [0, rank]).

#include <algorithm>

#include "runtime/ops/op_support.h"

namespace tinyq::rt {

std::unique_ptr<Op> make_shape(const OpContext& ctx) {
  if (ctx.opset >= 15) check_attrs(ctx, {"start", "end"});
  else check_attrs(ctx, {});
  check_arity(ctx, 1, 1, 1, 1);
  const int64_t start = ctx.node.attr_int("start", 0);
  const bool has_end = ctx.node.find_attr("end") != nullptr;
  const int64_t end = ctx.node.attr_int("end", 0);
  return make_lambda_op([start, has_end, end](const OpInputs& in, std::vector<Tensor>& out) {
    const Shape& dims = in[0]->shape();
    const int64_t rank = static_cast<int64_t>(dims.size());
    auto clamp_index = [rank](int64_t v) { return std::clamp<int64_t>(v < 0 ? v + rank : v, 0, rank); };
    const int64_t s = clamp_index(start);
    const int64_t e = has_end ? clamp_index(end) : rank;
    std::vector<int64_t> values;
    for (int64_t i = s; i < e; ++i) values.push_back(dims[static_cast<size_t>(i)]);
    out[0] = Tensor::from_vector<int64_t>({static_cast<int64_t>(values.size())}, values);
  });
}

}  // namespace tinyq::rt
