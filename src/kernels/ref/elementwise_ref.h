// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// Scalar reference kernels for elementwise ops: unary maths and activations, binary arithmetic
// over one broadcast row, clip, and element type conversion (Cast).
//
// A broadcast row is n output elements; each input advances along it by a stride of 0
// (a broadcast value) or 1. The runtime's broadcast walker (src/runtime/broadcast.h) cuts
// whole tensors into such rows.

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

namespace tinyq::kernels {

enum class UnaryOp {
  Neg, Abs, Sqrt, Exp, Log, Reciprocal, Relu, LeakyRelu, Sigmoid, Tanh, Elu, Selu, Softplus,
  Softsign, Erf, HardSigmoid, HardSwish, Gelu, GeluTanh,
};

/// Float attributes of the activations, with ONNX's names: LeakyRelu/Elu alpha; Selu alpha and
/// gamma; HardSigmoid alpha and beta.
struct UnaryParams {
  float alpha = 0.0f;
  float beta = 0.0f;
  float gamma = 0.0f;
};

/// dst[i] = op(src[i]) for float and double.
template <typename T>
void unary_float_ref(UnaryOp op, const UnaryParams& params, const T* src, T* dst, int64_t n);
/// dst[i] = op(src[i]) for signed integers; only Neg, Abs and Relu are defined there (others
/// return false). Negating the most negative value wraps, as two's complement does.
template <typename T>
bool unary_int_ref(UnaryOp op, const T* src, T* dst, int64_t n);

/// dst[i] = min(max(src[i], lo), hi) (so hi wins when lo > hi, as in ONNX Runtime).
template <typename T>
void clip_ref(const T* src, T* dst, int64_t n, T lo, T hi);

enum class BinaryOp { Add, Sub, Mul, Div, Min, Max, PRelu, ShiftLeft, ShiftRight };

/// dst[i] = op(a[i * a_stride], b[i * b_stride]) for i < n.
/// Integers: Add, Sub and Mul wrap; Div truncates toward zero (as C++ and ONNX Runtime do),
/// INT_MIN / -1 wraps to INT_MIN, and division by zero returns false (nothing sensible to give).
/// Floats: Min/Max propagate NaN. PRelu: a > 0 ? a : b * a. Shifts (unsigned types only) by the
/// type's width or more give 0.
template <typename T>
bool binary_ref(BinaryOp op, const T* a, int64_t a_stride, const T* b, int64_t b_stride, T* dst, int64_t n);

/// dst[i] = pow(base[i * base_stride], exponent[i * exponent_stride]), computed in double and
/// converted back to the base's type.
template <typename TB, typename TE>
void pow_ref(const TB* base, int64_t base_stride, const TE* exponent, int64_t exponent_stride, TB* dst, int64_t n);

// ---- element type conversion -------------------------------------------------------------

/// IEEE binary16 and bfloat16 bit patterns <-> float (round to nearest even, NaN kept NaN).
float half_to_float(uint16_t h);
uint16_t float_to_half(float f);
float bfloat16_to_float(uint16_t b);
uint16_t float_to_bfloat16(float f);

/// Float -> integer conversion with x86's results where C++ leaves it undefined (NaN and out of
/// range): cvttss2si gives the type's most negative value for int32/int64; narrower types go
/// through int32 and wrap, uint32 through int64 — what ONNX Runtime's compiled static_cast does.
template <typename I, typename F>
I float_to_int(F x) {
  static_assert(std::is_integral<I>::value && std::is_floating_point<F>::value, "float to int only");
  if constexpr (std::is_same<I, bool>::value) {
    return x != F(0);
  } else if constexpr (std::is_same<I, int64_t>::value) {
    if (!(x >= F(-9223372036854775808.0) && x < F(9223372036854775808.0))) return std::numeric_limits<int64_t>::min();
    return static_cast<int64_t>(x);
  } else if constexpr (std::is_same<I, uint64_t>::value) {
    if (x >= F(9223372036854775808.0) && x < F(18446744073709551616.0))
      return static_cast<uint64_t>(x - F(9223372036854775808.0)) + (uint64_t{1} << 63);
    return static_cast<uint64_t>(float_to_int<int64_t>(x));
  } else if constexpr (std::is_same<I, uint32_t>::value) {
    return static_cast<uint32_t>(static_cast<uint64_t>(float_to_int<int64_t>(x)));
  } else {
    int32_t v = std::numeric_limits<int32_t>::min();
    if (x >= F(-2147483648.0) && x < F(2147483648.0)) v = static_cast<int32_t>(x);
    return static_cast<I>(static_cast<uint32_t>(v));  // modular narrowing
  }
}

/// One element converted as ONNX Cast does (integers narrow modulo 2^bits; to bool is != 0).
template <typename To, typename From>
To convert_ref(From x) {
  if constexpr (std::is_same<To, bool>::value) {
    return x != From(0);
  } else if constexpr (std::is_floating_point<From>::value && std::is_integral<To>::value) {
    return float_to_int<To>(x);
  } else if constexpr (std::is_integral<From>::value && std::is_integral<To>::value) {
    // Modular narrowing through uint64 (well-defined for every signed/unsigned pair).
    return static_cast<To>(static_cast<uint64_t>(x));
  } else {
    return static_cast<To>(x);
  }
}

template <typename To, typename From>
void cast_ref(const From* src, To* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = convert_ref<To>(src[i]);
}

}  // namespace tinyq::kernels
