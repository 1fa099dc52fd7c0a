// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// The element-wise steps around the integer kernels, for AVX2: the range scan of
// DynamicQuantizeLinear, float -> uint8 quantisation, and the uint8 NCHW -> NHWC packing of
// the integer convolution's input. Compiled with -mavx2 -mfma (kernels_x86.cmake); each gives
// the same bytes as its portable version (kernels/fast/micro_ref.cpp, kernels/ref/qlinear_ref).

#include <immintrin.h>

#include <cmath>
#include <limits>

#include "common/qmath.h"
#include "kernels/fast/micro_kernels.h"

namespace tinyq::kernels {

void minmax_f32_avx2(const float* src, int64_t n, float* lo_out, float* hi_out) {
  const float inf = std::numeric_limits<float>::infinity();
  __m256 lo = _mm256_set1_ps(inf), hi = _mm256_set1_ps(-inf);
  __m256 lo2 = lo, hi2 = hi;
  int64_t i = 0;
  // min/max return their second operand when either is NaN, so putting the running value
  // second skips NaNs, as the reference's comparisons do.
  for (; i + 16 <= n; i += 16) {
    const __m256 a = _mm256_loadu_ps(src + i), b = _mm256_loadu_ps(src + i + 8);
    lo = _mm256_min_ps(a, lo);
    hi = _mm256_max_ps(a, hi);
    lo2 = _mm256_min_ps(b, lo2);
    hi2 = _mm256_max_ps(b, hi2);
  }
  lo = _mm256_min_ps(lo, lo2);
  hi = _mm256_max_ps(hi, hi2);
  alignas(32) float l[8], h[8];
  _mm256_store_ps(l, lo);
  _mm256_store_ps(h, hi);
  float a = inf, b = -inf;
  for (int k = 0; k < 8; ++k) {
    if (l[k] < a) a = l[k];
    if (h[k] > b) b = h[k];
  }
  for (; i < n; ++i) {
    if (src[i] < a) a = src[i];
    if (src[i] > b) b = src[i];
  }
  if (a > b) a = b = 0.0f;
  *lo_out = a;
  *hi_out = b;
}

void quantize_f32_u8_avx2(const float* src, int64_t n, float scale, int32_t zero_point, uint8_t* dst) {
  const __m256 s = _mm256_set1_ps(scale);
  // Clamp to [0 - zp, 255 - zp] before the conversion (integer bounds, so clamping before or
  // after rounding agrees); max first turns NaN into the low bound (qmath: NaN -> qmin).
  const __m256 lo = _mm256_set1_ps(static_cast<float>(-zero_point));
  const __m256 hi = _mm256_set1_ps(static_cast<float>(255 - zero_point));
  const __m256i zp = _mm256_set1_epi32(zero_point);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m256i q[4];
    for (int k = 0; k < 4; ++k) {
      // Division, not a reciprocal multiply: QuantizeLinear divides, and so does ONNX Runtime.
      __m256 y = _mm256_div_ps(_mm256_loadu_ps(src + i + 8 * k), s);
      y = _mm256_min_ps(_mm256_max_ps(y, lo), hi);
      q[k] = _mm256_add_epi32(_mm256_cvtps_epi32(y), zp);  // rounds half to even
    }
    const __m256i ab = _mm256_packs_epi32(q[0], q[1]), cd = _mm256_packs_epi32(q[2], q[3]);
    const __m256i bytes = _mm256_permutevar8x32_epi32(_mm256_packus_epi16(ab, cd), order);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), bytes);
  }
  for (; i + 8 <= n; i += 8) {  // short rows (a tiny MLP's 6 to 32 features)
    __m256 y = _mm256_div_ps(_mm256_loadu_ps(src + i), s);
    y = _mm256_min_ps(_mm256_max_ps(y, lo), hi);
    const __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(y), zp);
    const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(dst + i), _mm_packus_epi16(w, w));
  }
  for (; i < n; ++i) dst[i] = static_cast<uint8_t>(qmath::quantize(src[i], scale, zero_point, 0, 255));
}

void quantize_f32_s8_avx2(const float* src, int64_t n, float scale, int32_t zero_point, int8_t* dst) {
  const __m256 s = _mm256_set1_ps(scale);
  const __m256 lo = _mm256_set1_ps(static_cast<float>(-128 - zero_point));
  const __m256 hi = _mm256_set1_ps(static_cast<float>(127 - zero_point));
  const __m256i zp = _mm256_set1_epi32(zero_point);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m256i q[4];
    for (int k = 0; k < 4; ++k) {
      __m256 y = _mm256_div_ps(_mm256_loadu_ps(src + i + 8 * k), s);
      y = _mm256_min_ps(_mm256_max_ps(y, lo), hi);  // NaN -> low bound, as qmath
      q[k] = _mm256_add_epi32(_mm256_cvtps_epi32(y), zp);
    }
    const __m256i ab = _mm256_packs_epi32(q[0], q[1]), cd = _mm256_packs_epi32(q[2], q[3]);
    const __m256i bytes = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(ab, cd), order);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), bytes);
  }
  for (; i < n; ++i) dst[i] = static_cast<int8_t>(qmath::quantize(src[i], scale, zero_point, -128, 127));
}

namespace {

// 8 consecutive 8-bit values widened to int32.
inline __m256i load8_epi32(const void* p, bool u8) {
  const __m128i b = _mm_loadl_epi64(static_cast<const __m128i*>(p));
  return u8 ? _mm256_cvtepu8_epi32(b) : _mm256_cvtepi8_epi32(b);
}

inline __m256 dequant8(const void* p, bool u8, __m256i zp, __m256 scale) {
  return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(load8_epi32(p, u8), zp)), scale);
}

// Stores 8 int32 lanes (already in range) as 8 bytes.
inline void store8_bytes(void* dst, __m256i v) {
  const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  _mm_storel_epi64(static_cast<__m128i*>(dst), _mm_packs_epi16(w, w));
}

}  // namespace

void dequantize_8_f32_avx2(const void* src, bool is_u8, int64_t n, float scale, int32_t zero_point, float* dst) {
  const __m256 s = _mm256_set1_ps(scale);
  const __m256i zp = _mm256_set1_epi32(zero_point);
  const uint8_t* p = static_cast<const uint8_t*>(src);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, dequant8(p + i, is_u8, zp, s));
  for (; i < n; ++i) {
    const int32_t q = is_u8 ? p[i] : static_cast<int8_t>(p[i]);
    dst[i] = qmath::dequantize(q, scale, zero_point);
  }
}

void requant_f32acc_avx2(const float* acc, int64_t n, int32_t bias, float mult, int32_t zero_point, bool u8, void* dst) {
  const __m256i b = _mm256_set1_epi32(bias), zp = _mm256_set1_epi32(zero_point);
  const __m256 m = _mm256_set1_ps(mult);
  const int32_t qmin = u8 ? 0 : -128, qmax = u8 ? 255 : 127;
  const __m256 lo = _mm256_set1_ps(static_cast<float>(qmin - zero_point));
  const __m256 hi = _mm256_set1_ps(static_cast<float>(qmax - zero_point));
  uint8_t* d = static_cast<uint8_t*>(dst);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    // The sums are exact integers: truncation is exact; the bias adds in int32 (wrapping).
    const __m256i v = _mm256_add_epi32(_mm256_cvttps_epi32(_mm256_loadu_ps(acc + i)), b);
    __m256 y = _mm256_mul_ps(_mm256_cvtepi32_ps(v), m);
    y = _mm256_min_ps(_mm256_max_ps(y, lo), hi);  // NaN -> low bound, as qmath
    const __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(y), zp);
    const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(d + i), u8 ? _mm_packus_epi16(w, w) : _mm_packs_epi16(w, w));
  }
  if (i < n) requant_f32acc_ref(acc + i, n - i, bias, mult, zero_point, u8, d + i);
}

void qadd_avx2(const QAddArgs& t) {
  const __m256 sa = _mm256_set1_ps(t.sa), sb = _mm256_set1_ps(t.sb), sy = _mm256_set1_ps(t.sy);
  const __m256i za = _mm256_set1_epi32(t.za), zb = _mm256_set1_epi32(t.zb), zy = _mm256_set1_epi32(t.zy);
  const int32_t qmin = t.y_u8 ? 0 : -128, qmax = t.y_u8 ? 255 : 127;
  const __m256 lo = _mm256_set1_ps(static_cast<float>(qmin - t.zy));
  const __m256 hi = _mm256_set1_ps(static_cast<float>(qmax - t.zy));
  const uint8_t* a = static_cast<const uint8_t*>(t.a);
  const uint8_t* b = static_cast<const uint8_t*>(t.b);
  uint8_t* y = static_cast<uint8_t*>(t.y);
  int64_t i = 0;
  for (; i + 8 <= t.n; i += 8) {
    const __m256 f = _mm256_add_ps(dequant8(a + i, t.a_u8, za, sa), dequant8(b + i, t.b_u8, zb, sb));
    __m256 q = _mm256_div_ps(f, sy);
    q = _mm256_min_ps(_mm256_max_ps(q, lo), hi);  // NaN -> low bound, as qmath
    const __m256i v = _mm256_add_epi32(_mm256_cvtps_epi32(q), zy);
    if (t.y_u8) {
      // In [0, 255]: pack through int16 unsigned saturation.
      const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
      _mm_storel_epi64(reinterpret_cast<__m128i*>(y + i), _mm_packus_epi16(w, w));
    } else {
      store8_bytes(y + i, v);
    }
  }
  if (i < t.n) {
    QAddArgs rest = t;
    rest.a = a + i;
    rest.b = b + i;
    rest.y = y + i;
    rest.n = t.n - i;
    qadd_ref(rest);
  }
}

namespace {

// 16 rows of 16 bytes -> 16 columns: x[r] byte c becomes x[c] byte r.
inline void transpose16x16_u8(__m128i x[16]) {
  __m128i t[16], u[16], v0[8], v1[8];
  for (int i = 0; i < 8; ++i) {
    t[i] = _mm_unpacklo_epi8(x[2 * i], x[2 * i + 1]);      // word p: rows 2i, 2i+1 at column p
    t[8 + i] = _mm_unpackhi_epi8(x[2 * i], x[2 * i + 1]);  // columns 8 + p
  }
  for (int h = 0; h < 16; h += 8) {
    for (int j = 0; j < 4; ++j) {
      u[h + 2 * j] = _mm_unpacklo_epi16(t[h + 2 * j], t[h + 2 * j + 1]);      // dword q: column h+q, rows 4j..4j+3
      u[h + 2 * j + 1] = _mm_unpackhi_epi16(t[h + 2 * j], t[h + 2 * j + 1]);  // column h+4+q
    }
  }
  for (int h = 0; h < 16; h += 8) {
    for (int s = 0; s < 2; ++s) {
      const int pair = (h + 4 * s) / 2;
      for (int e = 0; e < 2; ++e) {
        const __m128i a = u[h + 4 * e + s], b = u[h + 4 * e + 2 + s];
        // qword r: column h+4s+r (lo) or h+4s+2+r (hi), rows 8e..8e+7
        (e == 0 ? v0 : v1)[pair] = _mm_unpacklo_epi32(a, b);
        (e == 0 ? v0 : v1)[pair + 1] = _mm_unpackhi_epi32(a, b);
      }
    }
  }
  for (int pair = 0; pair < 8; ++pair) {
    x[2 * pair] = _mm_unpacklo_epi64(v0[pair], v1[pair]);
    x[2 * pair + 1] = _mm_unpackhi_epi64(v0[pair], v1[pair]);
  }
}

template <typename T>
void pack_nhwc(const uint8_t* src, int64_t ld_src, int64_t channels, int64_t pad_to, int64_t n, uint8_t flip,
               T* dst, int64_t step) {
  const __m128i f = _mm_set1_epi8(static_cast<char>(flip));
  const int64_t c_full = channels / 16 * 16, p_full = n / 16 * 16;
  for (int64_t c0 = 0; c0 < c_full; c0 += 16) {
    for (int64_t p0 = 0; p0 < p_full; p0 += 16) {
      __m128i x[16];
      for (int r = 0; r < 16; ++r)
        x[r] = _mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + (c0 + r) * ld_src + p0)), f);
      transpose16x16_u8(x);
      for (int q = 0; q < 16; ++q) {
        T* d = dst + (p0 + q) * step + c0;
        if constexpr (sizeof(T) == 1) {
          _mm_storeu_si128(reinterpret_cast<__m128i*>(d), x[q]);
        } else {
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(d), _mm256_cvtepu8_epi16(x[q]));
        }
      }
    }
    for (int64_t p = p_full; p < n; ++p)
      for (int64_t c = c0; c < c0 + 16; ++c)
        dst[p * step + c] = static_cast<T>(static_cast<uint8_t>(src[c * ld_src + p] ^ flip));
  }
  // The channels past the last whole 16 and the padding lanes, if any (a per-position loop
  // with nothing to do cost as much as the transposes on 16-channel rows).
  if (c_full == pad_to) return;
  for (int64_t p = 0; p < n; ++p) {
    T* d = dst + p * step;
    for (int64_t c = c_full; c < channels; ++c) d[c] = static_cast<T>(static_cast<uint8_t>(src[c * ld_src + p] ^ flip));
    for (int64_t c = channels; c < pad_to; ++c) d[c] = 0;
  }
}

}  // namespace

void pack_nhwc_u8_avx2(const uint8_t* src, int64_t ld_src, int64_t channels, int64_t pad_to, int64_t n, uint8_t flip,
                       uint8_t* dst, int64_t step) {
  pack_nhwc(src, ld_src, channels, pad_to, n, flip, dst, step);
}

void pack_nhwc_s16_avx2(const uint8_t* src, int64_t ld_src, int64_t channels, int64_t pad_to, int64_t n, uint8_t flip,
                        int16_t* dst, int64_t step) {
  pack_nhwc(src, ld_src, channels, pad_to, n, flip, dst, step);
}

void pack_c4_avx2(const uint8_t* const* rows, int64_t n, uint8_t flip, uint8_t fill, uint8_t* dst) {
  const __m128i f = _mm_set1_epi8(static_cast<char>(flip)), fv = _mm_set1_epi8(static_cast<char>(fill));
  auto row16 = [&](int k, int64_t i) {
    return rows[k] ? _mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(rows[k] + i)), f) : fv;
  };
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m128i a = row16(0, i), b = row16(1, i), c = row16(2, i), d = row16(3, i);
    // Bytes of rows 0/1 and 2/3 paired, then the pairs into dwords: position i + q's 4 bytes.
    const __m128i ab_lo = _mm_unpacklo_epi8(a, b), ab_hi = _mm_unpackhi_epi8(a, b);
    const __m128i cd_lo = _mm_unpacklo_epi8(c, d), cd_hi = _mm_unpackhi_epi8(c, d);
    __m128i* o = reinterpret_cast<__m128i*>(dst + 4 * i);
    _mm_storeu_si128(o + 0, _mm_unpacklo_epi16(ab_lo, cd_lo));
    _mm_storeu_si128(o + 1, _mm_unpackhi_epi16(ab_lo, cd_lo));
    _mm_storeu_si128(o + 2, _mm_unpacklo_epi16(ab_hi, cd_hi));
    _mm_storeu_si128(o + 3, _mm_unpackhi_epi16(ab_hi, cd_hi));
  }
  if (i < n) {
    const uint8_t* tail[4];
    for (int k = 0; k < 4; ++k) tail[k] = rows[k] ? rows[k] + i : nullptr;
    pack_c4_ref(tail, n - i, flip, fill, dst + 4 * i);
  }
}

}  // namespace tinyq::kernels
