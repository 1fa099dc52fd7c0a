// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// Expand: the input broadcast to broadcast(input.shape, shape). Broadcasting goes both ways, so
// a 1 in `shape` keeps the input's dimension.

#include "runtime/broadcast.h"
#include "runtime/ops/op_support.h"

namespace tinyq::rt {

std::unique_ptr<Op> make_expand(const OpContext& ctx) {
  check_attrs(ctx, {});
  check_arity(ctx, 2, 2, 1, 1);
  if (const Tensor* shape = ctx.constant(1)) {
    if (shape->rank() != 1) ctx.fail("shape must be 1-D, has shape " + shape_to_string(shape->shape()));
    if (shape->dtype() != DType::I64) ctx.fail(std::string("shape must be int64, is ") + dtype_name(shape->dtype()));
    for (int64_t d : tensor_to_int64s(*shape))
      if (d < 0) ctx.fail("shape " + shape_to_string(tensor_to_int64s(*shape)) + " has a negative dimension");
  }
  return make_lambda_op([](const OpInputs& in, std::vector<Tensor>& out) {
    const Tensor& x = *in[0];
    const Tensor& target = *in[1];
    if (target.rank() != 1) throw Error("shape must be 1-D, has shape " + shape_to_string(target.shape()));
    const Shape shape = broadcast_shapes(x.shape(), int_values(target, "shape"));
    Tensor y(x.dtype(), shape);
    strided_copy(y.raw(), x.raw(), dtype_size(x.dtype()), shape, broadcast_strides(x.shape(), shape));
    out[0] = std::move(y);
  });
}

}  // namespace tinyq::rt
