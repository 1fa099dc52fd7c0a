// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// Clip: bounds are float attributes before opset 11 and optional scalar inputs of the data's
// type from opset 11; an omitted bound is the type's lowest / highest value.

#include <limits>

#include "kernels/ref/elementwise_ref.h"
#include "runtime/ops/op_support.h"

namespace tinyq::rt {

namespace {

#define TINYQ_CLIP_TYPES float, double, int8_t, uint8_t, int16_t, uint16_t, int32_t, uint32_t, int64_t, uint64_t

template <typename T>
T bound_value(const Tensor* t, T fallback, const char* which) {
  if (!t) return fallback;
  if (t->numel() != 1)
    throw Error(std::string(which) + " must be a scalar, has shape " + shape_to_string(t->shape()));
  return t->data<T>()[0];
}

void check_bound(const OpContext& ctx, size_t i, const char* which) {
  if (const Tensor* t = ctx.constant(i); t && t->numel() != 1)
    ctx.fail(std::string(which) + " must be a scalar, has shape " + shape_to_string(t->shape()));
}

}  // namespace

std::unique_ptr<Op> make_clip(const OpContext& ctx) {
  if (ctx.opset < 11) {
    check_attrs(ctx, {"min", "max"});
    check_arity(ctx, 1, 1, 1, 1);
    const float lo = ctx.node.attr_float("min", std::numeric_limits<float>::lowest());
    const float hi = ctx.node.attr_float("max", std::numeric_limits<float>::max());
    return make_lambda_op([lo, hi](const OpInputs& in, std::vector<Tensor>& out) {
      const Tensor& x = *in[0];
      Tensor y = Tensor::uninitialized(x.dtype(), x.shape());
      dispatch_types<float, double>(x.dtype(), [&](auto tag) {
        using T = decltype(tag);
        kernels::clip_ref<T>(x.data<T>(), y.data<T>(), x.numel(), static_cast<T>(lo), static_cast<T>(hi));
      });
      out[0] = std::move(y);
    });
  }
  check_attrs(ctx, {});
  check_arity(ctx, 1, 3, 1, 1);
  check_bound(ctx, 1, "min");
  check_bound(ctx, 2, "max");
  return make_lambda_op([](const OpInputs& in, std::vector<Tensor>& out) {
    const Tensor& x = *in[0];
    const Tensor* lo_t = in.size() > 1 ? in[1] : nullptr;
    const Tensor* hi_t = in.size() > 2 ? in[2] : nullptr;
    for (const Tensor* b : {lo_t, hi_t})
      if (b && b->dtype() != x.dtype())
        throw Error(std::string("bounds must have the input's type ") + dtype_name(x.dtype()) + ", not " +
                    dtype_name(b->dtype()));
    Tensor y = Tensor::uninitialized(x.dtype(), x.shape());
    dispatch_types<TINYQ_CLIP_TYPES>(x.dtype(), [&](auto tag) {
      using T = decltype(tag);
      const T lo = bound_value<T>(lo_t, std::numeric_limits<T>::lowest(), "min");
      const T hi = bound_value<T>(hi_t, std::numeric_limits<T>::max(), "max");
      kernels::clip_ref<T>(x.data<T>(), y.data<T>(), x.numel(), lo, hi);
    });
    out[0] = std::move(y);
  });
}

#undef TINYQ_CLIP_TYPES

}  // namespace tinyq::rt
