// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// fp32 convolution / GEMM rows for AVX2 + FMA (see kernels/fast/micro_kernels.h, ConvF32Row).
// Compiled with -mavx2 -mfma (kernels_x86.cmake). Register tile: up to 4 channels x 2 vectors
// of 8 positions (8 accumulators + 2 inputs + 1 broadcast of the 16 ymm registers). The row's
// last vector uses vmaskmovps, which neither reads nor writes the masked-off lanes.

#include <immintrin.h>

#include <algorithm>

#include "kernels/fast/micro_kernels.h"

namespace tinyq::kernels {

namespace {

inline __m256i lane_mask(int64_t lanes) {
  const int n = lanes >= 8 ? 8 : static_cast<int>(lanes < 0 ? 0 : lanes);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// The k loop alone, accumulators in registers (kept apart from the epilogue, whose
// channel-count test would otherwise make the compiler keep the array in memory). Full tiles
// load plainly; a row's last, partial vector goes through vmaskmovps.
template <int MR, int V, bool Full>
__attribute__((noinline)) void accumulate(const ConvF32Row& r, const float* w, const float* s, const __m256i* mask,
                                          __m256* out) {
  __m256 acc[MR * V];
#pragma GCC unroll 16
  for (int i = 0; i < MR * V; ++i) acc[i] = _mm256_setzero_ps();
  // Packed weights: [k][MR]; rows read in place (GEMM): row i at i * w_istride, k contiguous.
  const int64_t ks = r.w_kstride ? r.w_kstride : MR;
  int64_t woff[MR];
  for (int i = 0; i < MR; ++i) woff[i] = r.w_kstride ? std::min<int64_t>(i, r.w_rows - 1) * r.w_istride : i;
  for (int64_t k = 0; k < r.k; ++k) {
    const float* sk = s + r.k_off[k];
    __m256 x[V];
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) x[v] = Full ? _mm256_loadu_ps(sk + 8 * v) : _mm256_maskload_ps(sk + 8 * v, mask[v]);
    const float* wk = w + k * ks;
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i) {
      const __m256 b = _mm256_broadcast_ss(wk + woff[i]);
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) acc[i * V + v] = _mm256_fmadd_ps(b, x[v], acc[i * V + v]);
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < MR * V; ++i) out[i] = acc[i];
}

template <int MR, int V>
inline void tile(const ConvF32Row& r, const float* w, int64_t c0, int64_t p, int64_t valid) {
  __m256i mask[V];
  bool full[V];
  for (int v = 0; v < V; ++v) {
    full[v] = valid - 8 * v >= 8;
    mask[v] = lane_mask(valid - 8 * v);
  }
  __m256 acc_mem[MR * V];
  if (valid >= 8 * V)
    accumulate<MR, V, true>(r, w, r.src + p, mask, acc_mem);
  else
    accumulate<MR, V, false>(r, w, r.src + p, mask, acc_mem);
  auto acc = [&](int i, int v) { return acc_mem[i * V + v]; };
  const __m256 lo = _mm256_set1_ps(r.lo), hi = _mm256_set1_ps(r.hi);
  for (int i = 0; i < MR; ++i) {
    const int64_t c = c0 + i;
    if (c >= r.m) break;
    float* d = r.dst + c * r.ld_dst + p;
    const float* res = r.res ? r.res + c * r.ld_res + p : nullptr;
    for (int v = 0; v < V; ++v) {
      __m256 y = acc(i, v);
      if (r.scale) y = _mm256_mul_ps(y, _mm256_set1_ps(r.scale[c]));
      if (r.bias) y = _mm256_add_ps(y, _mm256_set1_ps(r.bias[c]));
      if (res) y = _mm256_add_ps(y, full[v] ? _mm256_loadu_ps(res + 8 * v) : _mm256_maskload_ps(res + 8 * v, mask[v]));
      if (r.clamp) y = _mm256_min_ps(hi, _mm256_max_ps(lo, y));  // operand order passes NaN through, as Relu and Clip do
      if (full[v])
        _mm256_storeu_ps(d + 8 * v, y);
      else
        _mm256_maskstore_ps(d + 8 * v, mask[v], y);
    }
  }
}

template <int MR, int V>
void row(const ConvF32Row& r) {
  const int64_t blocks = (r.m + MR - 1) / MR;
  const int64_t width = 8 * V;
  int64_t p = 0;
  for (; p + width <= r.n; p += width)
    for (int64_t b = 0; b < blocks; ++b) tile<MR, V>(r, r.w + b * r.k * MR, b * MR, p, width);
  // The rest in tiles as wide as it needs (the last vector masked).
  while (p < r.n) {
    const int64_t rest = r.n - p, vectors = (rest + 7) / 8;
    const int v = vectors >= 3 && V > 3 ? 3 : vectors >= 2 && V > 2 ? 2 : 1;
    for (int64_t b = 0; b < blocks; ++b) {
      const float* w = r.w + b * r.k * MR;
      if (v == 3)
        tile<MR, (V > 3 ? 3 : 1)>(r, w, b * MR, p, rest);
      else if (v == 2)
        tile<MR, (V > 2 ? 2 : 1)>(r, w, b * MR, p, rest);
      else
        tile<MR, 1>(r, w, b * MR, p, rest);
    }
    p += 8 * v;
  }
}

// One depthwise output row: 2 vectors (16 positions) per step, the weights in registers.
template <int T>
inline void dw_row(const DwF32Plane& d, const __m256* w, int64_t oh) {
  const float* s = d.src + oh * d.src_pitch;
  float* o = d.dst + oh * d.cols;
  const float* res = d.res ? d.res + oh * d.cols : nullptr;
  const int taps = T > 0 ? T : d.taps;
  const __m256 lo = _mm256_set1_ps(d.lo), hi = _mm256_set1_ps(d.hi);
  const __m256 scale = _mm256_set1_ps(d.scale), bias = _mm256_set1_ps(d.bias);
  for (int64_t ow = 0; ow < d.cols; ow += 16) {
    __m256i m[2];
    bool full[2];
    __m256 acc[2];
    for (int v = 0; v < 2; ++v) {
      full[v] = d.cols - ow - 8 * v >= 8;
      m[v] = lane_mask(d.cols - ow - 8 * v);
      acc[v] = _mm256_setzero_ps();
    }
    const bool both_full = full[0] && full[1];
#pragma GCC unroll 9
    for (int t = 0; t < taps; ++t) {
      const float* p = s + d.tap_off[t] + ow;
      const __m256 wt = T > 0 ? w[t] : _mm256_set1_ps(d.w[t]);
      if (both_full) {
        acc[0] = _mm256_fmadd_ps(wt, _mm256_loadu_ps(p), acc[0]);
        acc[1] = _mm256_fmadd_ps(wt, _mm256_loadu_ps(p + 8), acc[1]);
      } else {
        acc[0] = _mm256_fmadd_ps(wt, _mm256_maskload_ps(p, m[0]), acc[0]);
        acc[1] = _mm256_fmadd_ps(wt, _mm256_maskload_ps(p + 8, m[1]), acc[1]);
      }
    }
    for (int v = 0; v < 2; ++v) {
      if (d.cols - ow - 8 * v <= 0) break;
      __m256 y = acc[v];
      if (d.has_scale) y = _mm256_mul_ps(y, scale);
      if (d.has_bias) y = _mm256_add_ps(y, bias);
      if (res) y = _mm256_add_ps(y, full[v] ? _mm256_loadu_ps(res + ow + 8 * v) : _mm256_maskload_ps(res + ow + 8 * v, m[v]));
      if (d.clamp) y = _mm256_min_ps(hi, _mm256_max_ps(lo, y));  // NaN passes, as Relu and Clip
      if (full[v])
        _mm256_storeu_ps(o + ow + 8 * v, y);
      else
        _mm256_maskstore_ps(o + ow + 8 * v, m[v], y);
    }
  }
}

template <int T>
void dw_plane(const DwF32Plane& d) {
  __m256 w[T > 0 ? T : 1];
  for (int t = 0; t < T; ++t) w[t] = _mm256_set1_ps(d.w[t]);
  for (int64_t oh = 0; oh < d.rows; ++oh) dw_row<T>(d, w, oh);
}

}  // namespace

void dw_f32_plane_avx2(const DwF32Plane& d) {
  if (d.taps == 9)
    dw_plane<9>(d);
  else
    dw_plane<0>(d);
}

void deinterleave_f32_avx2(const float* src, int64_t n, int64_t stride, float* const* out) {
  int64_t i = 0;
  if (stride == 2) {
    float* even = out[0];
    float* odd = out[1];
    for (; i + 16 <= n; i += 16) {
      const __m256 a = _mm256_loadu_ps(src + i), b = _mm256_loadu_ps(src + i + 8);
      // shuffle picks within 128-bit lanes: [a0 a2 b0 b2 | a4 a6 b4 b6]; the 64-bit permute
      // puts the lanes back in order.
      const __m256 e = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));
      const __m256 o = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));
      _mm256_storeu_ps(even + i / 2, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), 0xD8)));
      _mm256_storeu_ps(odd + i / 2, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(o), 0xD8)));
    }
  }
  for (; i < n; ++i) out[i % stride][i / stride] = src[i];
}

void conv_f32_row_avx2(const ConvF32Row& r) {
  switch (r.mr) {
    case 4: row<4, 2>(r); break;
    case 2: row<2, 3>(r); break;
    default: row<1, 4>(r); break;
  }
}

}  // namespace tinyq::kernels
