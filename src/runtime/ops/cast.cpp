// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// Cast between every numeric type tinyq holds. float16 and bfloat16 have no C++ type here:
// they are widened to float first (exact) and narrowed from float last (round to nearest even).

#include "kernels/ref/elementwise_ref.h"
#include "runtime/ops/op_support.h"

namespace tinyq::rt {

namespace {

#define TINYQ_CAST_TYPES \
  float, double, int8_t, uint8_t, int16_t, uint16_t, int32_t, uint32_t, int64_t, uint64_t, bool

bool is_half(DType t) { return t == DType::F16 || t == DType::BF16; }

Tensor half_to_float_tensor(const Tensor& x) {
  Tensor f(DType::F32, x.shape());
  const auto* src = static_cast<const uint16_t*>(x.raw());
  float* dst = f.data<float>();
  for (int64_t i = 0; i < x.numel(); ++i)
    dst[i] = x.dtype() == DType::F16 ? kernels::half_to_float(src[i]) : kernels::bfloat16_to_float(src[i]);
  return f;
}

Tensor cast(const Tensor& in, DType to) {
  if (in.dtype() == to) return in;
  const Tensor x = is_half(in.dtype()) ? half_to_float_tensor(in) : in;
  if (is_half(to)) {
    const Tensor f = cast(x, DType::F32);
    Tensor y(to, f.shape());
    const float* src = f.data<float>();
    auto* dst = static_cast<uint16_t*>(y.raw());
    for (int64_t i = 0; i < f.numel(); ++i)
      dst[i] = to == DType::F16 ? kernels::float_to_half(src[i]) : kernels::float_to_bfloat16(src[i]);
    return y;
  }
  if (x.dtype() == to) return x;
  Tensor y(to, x.shape());
  dispatch_types<TINYQ_CAST_TYPES>(x.dtype(), [&](auto from_tag) {
    using From = decltype(from_tag);
    dispatch_types<TINYQ_CAST_TYPES>(to, [&](auto to_tag) {
      using To = decltype(to_tag);
      kernels::cast_ref<To, From>(x.data<From>(), y.data<To>(), x.numel());
    });
  });
  return y;
}

#undef TINYQ_CAST_TYPES

}  // namespace

std::unique_ptr<Op> make_cast(const OpContext& ctx) {
  check_attrs(ctx, {"to"});
  check_arity(ctx, 1, 1, 1, 1);
  require_attr(ctx, "to");
  const int64_t code = ctx.node.attr_int("to", 0);
  const DType to = static_cast<DType>(code);
  const bool known = code >= 0 && code <= 16 && dtype_is_numeric(to) && dtype_name(to) != std::string("undefined");
  if (!known) ctx.fail("attribute 'to' is " + std::to_string(code) + ", not a numeric type tinyq supports");
  return make_lambda_op([to](const OpInputs& in, std::vector<Tensor>& out) { out[0] = cast(*in[0], to); });
}

}  // namespace tinyq::rt
