// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// Transpose: output dimension i is input dimension perm[i] (default: reversed). A strided copy
// whose source strides are the input's strides permuted.

#include "runtime/broadcast.h"
#include "runtime/ops/op_support.h"

namespace tinyq::rt {

std::unique_ptr<Op> make_transpose(const OpContext& ctx) {
  check_attrs(ctx, {"perm"});
  check_arity(ctx, 1, 1, 1, 1);
  const bool has_perm = ctx.node.find_attr("perm") != nullptr;
  const std::vector<int64_t> perm = ctx.node.attr_ints("perm");
  std::vector<bool> seen(perm.size(), false);
  for (int64_t p : perm) {
    if (p < 0 || p >= static_cast<int64_t>(perm.size()) || seen[static_cast<size_t>(p)])
      ctx.fail("perm " + shape_to_string(perm) + " is not a permutation of 0.." + std::to_string(perm.size() - 1));
    seen[static_cast<size_t>(p)] = true;
  }
  return make_lambda_op([has_perm, perm](const OpInputs& in, std::vector<Tensor>& out) {
    const Tensor& x = *in[0];
    const size_t rank = x.rank();
    std::vector<int64_t> order = perm;
    if (!has_perm)
      for (size_t i = 0; i < rank; ++i) order.push_back(static_cast<int64_t>(rank - 1 - i));
    if (order.size() != rank)
      throw Error("perm " + shape_to_string(order) + " does not match input rank " + std::to_string(rank));
    const std::vector<int64_t> in_strides = contiguous_strides(x.shape());
    Shape shape(rank);
    std::vector<int64_t> strides(rank);
    for (size_t i = 0; i < rank; ++i) {
      shape[i] = x.dim(static_cast<size_t>(order[i]));
      strides[i] = in_strides[static_cast<size_t>(order[i])];
    }
    Tensor y(x.dtype(), shape);
    strided_copy(y.raw(), x.raw(), dtype_size(x.dtype()), shape, strides);
    out[0] = std::move(y);
  });
}

}  // namespace tinyq::rt
