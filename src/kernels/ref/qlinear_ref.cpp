// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include "kernels/ref/qlinear_ref.h"

#include <cmath>
#include <limits>

#include "common/qmath.h"

namespace tinyq::kernels {

namespace {

template <typename T>
constexpr int32_t qmin_of() { return std::numeric_limits<T>::min(); }
template <typename T>
constexpr int32_t qmax_of() { return std::numeric_limits<T>::max(); }

int32_t quantize_one(float x, float scale, int32_t zp, int32_t lo, int32_t hi) {
  return qmath::quantize(x, scale, zp, lo, hi);
}
int32_t quantize_one(int32_t x, float scale, int32_t zp, int32_t lo, int32_t hi) {
  return qmath::quantize_int32(x, scale, zp, lo, hi);
}

template <typename TSrc, typename TDst>
void quantize_impl(const TSrc* src, const QAxisLayout& l, const float* scales, const int32_t* zero_points,
                   TDst* dst) {
  constexpr int32_t lo = qmin_of<TDst>(), hi = qmax_of<TDst>();
  for (int64_t o = 0; o < l.outer; ++o) {
    for (int64_t c = 0; c < l.channels; ++c) {
      const float scale = scales[c];
      const int32_t zp = zero_points ? zero_points[c] : 0;
      const int64_t base = (o * l.channels + c) * l.inner;
      for (int64_t i = 0; i < l.inner; ++i)
        dst[base + i] = static_cast<TDst>(quantize_one(src[base + i], scale, zp, lo, hi));
    }
  }
}

template <typename TSrc>
void dequantize_impl(const TSrc* src, const QAxisLayout& l, const float* scales, const int32_t* zero_points,
                     float* dst) {
  for (int64_t o = 0; o < l.outer; ++o) {
    for (int64_t c = 0; c < l.channels; ++c) {
      const float scale = scales[c];
      const int32_t zp = zero_points ? zero_points[c] : 0;
      const int64_t base = (o * l.channels + c) * l.inner;
      for (int64_t i = 0; i < l.inner; ++i) dst[base + i] = qmath::dequantize(src[base + i], scale, zp);
    }
  }
}

template <typename TDst>
void requantize_impl(const RequantArgs& r, TDst* dst) {
  constexpr int32_t lo = qmin_of<TDst>(), hi = qmax_of<TDst>();
  for (int64_t row = 0; row < r.rows; ++row) {
    const int32_t* acc = r.acc + row * r.ld_acc;
    // The bias is quantised at the accumulator's scale, so it adds before scaling; the sum wraps
    // like the accumulation itself.
    const uint32_t bias = r.bias ? static_cast<uint32_t>(r.bias[row]) : 0u;
    const float* mult = r.multipliers + row * r.mult_row_stride;
    TDst* out = dst + row * r.ld_dst;
    for (int64_t col = 0; col < r.cols; ++col) {
      const int32_t v = static_cast<int32_t>(static_cast<uint32_t>(acc[col]) + bias);
      out[col] = static_cast<TDst>(qmath::requantize(v, mult[col * r.mult_col_stride], r.zero_point, lo, hi));
    }
  }
}

}  // namespace

void quantize_f32_u8_ref(const float* src, const QAxisLayout& layout, const float* scales,
                         const int32_t* zero_points, uint8_t* dst) {
  quantize_impl(src, layout, scales, zero_points, dst);
}
void quantize_f32_s8_ref(const float* src, const QAxisLayout& layout, const float* scales,
                         const int32_t* zero_points, int8_t* dst) {
  quantize_impl(src, layout, scales, zero_points, dst);
}
void quantize_s32_u8_ref(const int32_t* src, const QAxisLayout& layout, const float* scales,
                         const int32_t* zero_points, uint8_t* dst) {
  quantize_impl(src, layout, scales, zero_points, dst);
}
void quantize_s32_s8_ref(const int32_t* src, const QAxisLayout& layout, const float* scales,
                         const int32_t* zero_points, int8_t* dst) {
  quantize_impl(src, layout, scales, zero_points, dst);
}

void dequantize_u8_f32_ref(const uint8_t* src, const QAxisLayout& layout, const float* scales,
                           const int32_t* zero_points, float* dst) {
  dequantize_impl(src, layout, scales, zero_points, dst);
}
void dequantize_s8_f32_ref(const int8_t* src, const QAxisLayout& layout, const float* scales,
                           const int32_t* zero_points, float* dst) {
  dequantize_impl(src, layout, scales, zero_points, dst);
}
void dequantize_s32_f32_ref(const int32_t* src, const QAxisLayout& layout, const float* scales,
                            const int32_t* zero_points, float* dst) {
  dequantize_impl(src, layout, scales, zero_points, dst);
}

void minmax_f32_ref(const float* src, int64_t n, float* min_out, float* max_out) {
  float lo = std::numeric_limits<float>::infinity(), hi = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) {
    // Comparisons with NaN are false, so NaNs never become the min or max.
    if (src[i] < lo) lo = src[i];
    if (src[i] > hi) hi = src[i];
  }
  if (lo > hi) lo = hi = 0.0f;  // nothing but NaNs (or nothing)
  *min_out = lo;
  *max_out = hi;
}

void requantize_s32_u8_ref(const RequantArgs& args, uint8_t* dst) { requantize_impl(args, dst); }
void requantize_s32_s8_ref(const RequantArgs& args, int8_t* dst) { requantize_impl(args, dst); }

}  // namespace tinyq::kernels
