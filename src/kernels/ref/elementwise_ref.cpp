// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include "kernels/ref/elementwise_ref.h"

#include <algorithm>

namespace tinyq::kernels {

namespace {

// Clamp to [0, 1] letting NaN through (std::min/max would turn it into a bound).
template <typename T>
T clamp01(T v) {
  return v < T(0) ? T(0) : (v > T(1) ? T(1) : v);
}

template <typename T, typename Fn>
void map_unary(const T* src, T* dst, int64_t n, Fn fn) {
  for (int64_t i = 0; i < n; ++i) dst[i] = fn(src[i]);
}

// Wrapping integer arithmetic, done in uint64 where every signed/unsigned case is defined.
template <typename T>
T wrap(uint64_t v) {
  return static_cast<T>(v);
}

}  // namespace

// One loop per op, so the op is chosen once per call rather than per element.
template <typename T>
void unary_float_ref(UnaryOp op, const UnaryParams& p, const T* src, T* dst, int64_t n) {
  const T zero = T(0), one = T(1);
  const T alpha = T(p.alpha), beta = T(p.beta), gamma = T(p.gamma);
  switch (op) {
    case UnaryOp::Neg: map_unary(src, dst, n, [](T x) { return -x; }); break;
    case UnaryOp::Abs: map_unary(src, dst, n, [](T x) { return std::abs(x); }); break;
    case UnaryOp::Sqrt: map_unary(src, dst, n, [](T x) { return std::sqrt(x); }); break;
    case UnaryOp::Exp: map_unary(src, dst, n, [](T x) { return std::exp(x); }); break;
    case UnaryOp::Log: map_unary(src, dst, n, [](T x) { return std::log(x); }); break;
    case UnaryOp::Reciprocal: map_unary(src, dst, n, [=](T x) { return one / x; }); break;
    // Written so NaN passes through, as in ONNX Runtime.
    case UnaryOp::Relu: map_unary(src, dst, n, [=](T x) { return x < zero ? zero : x; }); break;
    case UnaryOp::LeakyRelu: map_unary(src, dst, n, [=](T x) { return x >= zero ? x : alpha * x; }); break;
    case UnaryOp::Sigmoid: map_unary(src, dst, n, [=](T x) { return one / (one + std::exp(-x)); }); break;
    case UnaryOp::Tanh: map_unary(src, dst, n, [](T x) { return std::tanh(x); }); break;
    case UnaryOp::Elu: map_unary(src, dst, n, [=](T x) { return x >= zero ? x : alpha * std::expm1(x); }); break;
    case UnaryOp::Selu:
      map_unary(src, dst, n, [=](T x) { return x > zero ? gamma * x : gamma * (alpha * std::exp(x) - alpha); });
      break;
    // Written so exp never overflows: log(1 + e^x) = x + log(1 + e^-x).
    case UnaryOp::Softplus:
      map_unary(src, dst, n, [=](T x) { return x > zero ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); });
      break;
    case UnaryOp::Softsign: map_unary(src, dst, n, [=](T x) { return x / (one + std::abs(x)); }); break;
    case UnaryOp::Erf: map_unary(src, dst, n, [](T x) { return std::erf(x); }); break;
    case UnaryOp::HardSigmoid: map_unary(src, dst, n, [=](T x) { return clamp01(alpha * x + beta); }); break;
    case UnaryOp::HardSwish: map_unary(src, dst, n, [](T x) { return x * clamp01(x / T(6) + T(0.5)); }); break;
    case UnaryOp::Gelu:
      map_unary(src, dst, n, [=](T x) { return T(0.5) * x * (one + std::erf(x * T(0.70710678118654752440))); });
      break;
    case UnaryOp::GeluTanh:
      // 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))
      map_unary(src, dst, n, [=](T x) {
        return T(0.5) * x * (one + std::tanh(T(0.79788456080286535588) * (x + T(0.044715) * x * x * x)));
      });
      break;
  }
}

template <typename T>
bool unary_int_ref(UnaryOp op, const T* src, T* dst, int64_t n) {
  switch (op) {
    case UnaryOp::Neg:
      for (int64_t i = 0; i < n; ++i) dst[i] = wrap<T>(uint64_t{0} - static_cast<uint64_t>(src[i]));
      return true;
    case UnaryOp::Abs:
      for (int64_t i = 0; i < n; ++i)
        dst[i] = src[i] < 0 ? wrap<T>(uint64_t{0} - static_cast<uint64_t>(src[i])) : src[i];
      return true;
    case UnaryOp::Relu:
      for (int64_t i = 0; i < n; ++i) dst[i] = src[i] > 0 ? src[i] : T(0);
      return true;
    default:
      return false;
  }
}

template <typename T>
void clip_ref(const T* src, T* dst, int64_t n, T lo, T hi) {
  for (int64_t i = 0; i < n; ++i) {
    T v = src[i] < lo ? lo : src[i];
    dst[i] = v > hi ? hi : v;
  }
}

namespace {

template <typename T, typename Fn>
void binary_loop(const T* a, int64_t sa, const T* b, int64_t sb, T* dst, int64_t n, Fn fn) {
  // The common strides get loops of their own, which the compiler vectorises (a stride known
  // only at run time keeps the general loop scalar): same-shape operands, and one operand
  // broadcast along the row (a bias, a scalar).
  if (sa == 1 && sb == 1) {
    for (int64_t i = 0; i < n; ++i) dst[i] = fn(a[i], b[i]);
  } else if (sa == 1 && sb == 0) {
    const T y = b[0];
    for (int64_t i = 0; i < n; ++i) dst[i] = fn(a[i], y);
  } else if (sa == 0 && sb == 1) {
    const T x = a[0];
    for (int64_t i = 0; i < n; ++i) dst[i] = fn(x, b[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) dst[i] = fn(a[i * sa], b[i * sb]);
  }
}

}  // namespace

template <typename T>
bool binary_ref(BinaryOp op, const T* a, int64_t sa, const T* b, int64_t sb, T* dst, int64_t n) {
  constexpr bool is_float = std::is_floating_point<T>::value;
  switch (op) {
    case BinaryOp::Add:
      if constexpr (is_float) binary_loop(a, sa, b, sb, dst, n, [](T x, T y) { return x + y; });
      else binary_loop(a, sa, b, sb, dst, n, [](T x, T y) { return wrap<T>(static_cast<uint64_t>(x) + static_cast<uint64_t>(y)); });
      return true;
    case BinaryOp::Sub:
      if constexpr (is_float) binary_loop(a, sa, b, sb, dst, n, [](T x, T y) { return x - y; });
      else binary_loop(a, sa, b, sb, dst, n, [](T x, T y) { return wrap<T>(static_cast<uint64_t>(x) - static_cast<uint64_t>(y)); });
      return true;
    case BinaryOp::Mul:
      if constexpr (is_float) binary_loop(a, sa, b, sb, dst, n, [](T x, T y) { return x * y; });
      else binary_loop(a, sa, b, sb, dst, n, [](T x, T y) { return wrap<T>(static_cast<uint64_t>(x) * static_cast<uint64_t>(y)); });
      return true;
    case BinaryOp::Div:
      if constexpr (is_float) {
        binary_loop(a, sa, b, sb, dst, n, [](T x, T y) { return x / y; });
      } else {
        for (int64_t i = 0; i < n; ++i)
          if (b[i * sb] == T(0)) return false;
        binary_loop(a, sa, b, sb, dst, n, [](T x, T y) {
          if constexpr (std::is_signed<T>::value)
            if (x == std::numeric_limits<T>::min() && y == T(-1)) return x;  // wraps
          return static_cast<T>(x / y);
        });
      }
      return true;
    case BinaryOp::Min:
      binary_loop(a, sa, b, sb, dst, n, [](T x, T y) {
        if constexpr (is_float)
          if (std::isnan(x) || std::isnan(y)) return std::numeric_limits<T>::quiet_NaN();
        return y < x ? y : x;
      });
      return true;
    case BinaryOp::Max:
      binary_loop(a, sa, b, sb, dst, n, [](T x, T y) {
        if constexpr (is_float)
          if (std::isnan(x) || std::isnan(y)) return std::numeric_limits<T>::quiet_NaN();
        return y > x ? y : x;
      });
      return true;
    case BinaryOp::PRelu:
      if constexpr (is_float) {
        binary_loop(a, sa, b, sb, dst, n, [](T x, T slope) { return x > T(0) ? x : slope * x; });
        return true;
      }
      return false;
    case BinaryOp::ShiftLeft:
    case BinaryOp::ShiftRight:
      if constexpr (std::is_unsigned<T>::value && !std::is_same<T, bool>::value) {
        constexpr T bits = static_cast<T>(sizeof(T) * 8);
        if (op == BinaryOp::ShiftLeft)
          binary_loop(a, sa, b, sb, dst, n, [](T x, T s) { return s >= bits ? T(0) : static_cast<T>(x << s); });
        else
          binary_loop(a, sa, b, sb, dst, n, [](T x, T s) { return s >= bits ? T(0) : static_cast<T>(x >> s); });
        return true;
      }
      return false;
  }
  return false;
}

template <typename TB, typename TE>
void pow_ref(const TB* base, int64_t sb, const TE* exponent, int64_t se, TB* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    double v = std::pow(static_cast<double>(base[i * sb]), static_cast<double>(exponent[i * se]));
    if constexpr (std::is_floating_point<TB>::value) dst[i] = static_cast<TB>(v);
    else dst[i] = float_to_int<TB>(v);
  }
}

// ---- half precision -------------------------------------------------------------------------

float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);  // inf / NaN
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);  // rebias 15 -> 127
  } else if (mant == 0) {
    bits = sign;  // +-0
  } else {
    // Subnormal half: normalise the mantissa.
    int e = -1;
    do {
      ++e;
      mant <<= 1;
    } while ((mant & 0x400u) == 0);
    bits = sign | (static_cast<uint32_t>(112 - e) << 23) | ((mant & 0x3ffu) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t float_to_half(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t abs = bits & 0x7fffffffu;
  if (abs > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);  // NaN
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to inf (>= 65520)
  if (abs < 0x38800000u) {
    // Result is subnormal (or zero): scale so the half's subnormal step becomes an integer ulp,
    // and let the FPU round to nearest even.
    float a;
    std::memcpy(&a, &abs, 4);
    return static_cast<uint16_t>(sign | static_cast<uint16_t>(std::nearbyint(a * 16777216.0f)));  // 2^24
  }
  // Normal: drop 13 mantissa bits with round to nearest even; a carry into the exponent is right.
  uint32_t rebiased = abs - (112u << 23);
  uint32_t rounded = rebiased + 0xfffu + ((rebiased >> 13) & 1u);
  return static_cast<uint16_t>(sign | (rounded >> 13));
}

float bfloat16_to_float(uint16_t b) {
  uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t float_to_bfloat16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40u);  // quiet NaN
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

// ---- instantiations -------------------------------------------------------------------------

template void unary_float_ref<float>(UnaryOp, const UnaryParams&, const float*, float*, int64_t);
template void unary_float_ref<double>(UnaryOp, const UnaryParams&, const double*, double*, int64_t);
template bool unary_int_ref<int8_t>(UnaryOp, const int8_t*, int8_t*, int64_t);
template bool unary_int_ref<int16_t>(UnaryOp, const int16_t*, int16_t*, int64_t);
template bool unary_int_ref<int32_t>(UnaryOp, const int32_t*, int32_t*, int64_t);
template bool unary_int_ref<int64_t>(UnaryOp, const int64_t*, int64_t*, int64_t);

#define TINYQ_INSTANTIATE_ALL(T)                                                     \
  template void clip_ref<T>(const T*, T*, int64_t, T, T);                            \
  template bool binary_ref<T>(BinaryOp, const T*, int64_t, const T*, int64_t, T*, int64_t);
TINYQ_INSTANTIATE_ALL(float)
TINYQ_INSTANTIATE_ALL(double)
TINYQ_INSTANTIATE_ALL(int8_t)
TINYQ_INSTANTIATE_ALL(uint8_t)
TINYQ_INSTANTIATE_ALL(int16_t)
TINYQ_INSTANTIATE_ALL(uint16_t)
TINYQ_INSTANTIATE_ALL(int32_t)
TINYQ_INSTANTIATE_ALL(uint32_t)
TINYQ_INSTANTIATE_ALL(int64_t)
TINYQ_INSTANTIATE_ALL(uint64_t)
#undef TINYQ_INSTANTIATE_ALL

#define TINYQ_INSTANTIATE_POW(TB, TE) \
  template void pow_ref<TB, TE>(const TB*, int64_t, const TE*, int64_t, TB*, int64_t);
TINYQ_INSTANTIATE_POW(float, float)
TINYQ_INSTANTIATE_POW(float, double)
TINYQ_INSTANTIATE_POW(float, int32_t)
TINYQ_INSTANTIATE_POW(float, int64_t)
TINYQ_INSTANTIATE_POW(double, float)
TINYQ_INSTANTIATE_POW(double, double)
TINYQ_INSTANTIATE_POW(double, int32_t)
TINYQ_INSTANTIATE_POW(double, int64_t)
TINYQ_INSTANTIATE_POW(int32_t, float)
TINYQ_INSTANTIATE_POW(int32_t, double)
TINYQ_INSTANTIATE_POW(int32_t, int32_t)
TINYQ_INSTANTIATE_POW(int32_t, int64_t)
TINYQ_INSTANTIATE_POW(int64_t, float)
TINYQ_INSTANTIATE_POW(int64_t, double)
TINYQ_INSTANTIATE_POW(int64_t, int32_t)
TINYQ_INSTANTIATE_POW(int64_t, int64_t)
#undef TINYQ_INSTANTIATE_POW

}  // namespace tinyq::kernels
