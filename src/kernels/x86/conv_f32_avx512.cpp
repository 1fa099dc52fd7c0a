// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// fp32 convolution / GEMM rows for AVX-512F (see kernels/fast/micro_kernels.h, ConvF32Row).
// Compiled with -mavx512f -mavx512bw -mfma (kernels_x86.cmake); called only after dispatch
// checked the CPU. Register tile: `mr` channels x V vectors of 16 positions, accumulators kept
// in zmm registers over the whole k loop (8 x 3 = 24 of the 32 registers for the widest), the
// weight of each channel broadcast once per k and reused for the V position vectors. The last
// vector of a row is loaded and stored under a mask, so rows of any length need no padding and
// nothing is read or written past the row.

#include <immintrin.h>

#include <algorithm>

#include "kernels/fast/micro_kernels.h"

namespace tinyq::kernels {

namespace {

inline __mmask16 lane_mask(int64_t lanes) {
  if (lanes <= 0) return 0;
  return lanes >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << lanes) - 1u);
}

// One tile: channels [c0, c0 + MR) (rows >= r.m are computed but not stored), positions
// [p, p + 16 * V) of which `valid` exist.
// The k loop alone, accumulators in registers (kept apart from the epilogue, whose
// channel-count test would otherwise make the compiler keep the array in memory).
template <int MR, int V>
__attribute__((noinline)) void accumulate(const ConvF32Row& r, const float* w, const float* s, const __mmask16* mask,
                                          __m512* out) {
  __m512 acc[MR * V];
#pragma GCC unroll 32
  for (int i = 0; i < MR * V; ++i) acc[i] = _mm512_setzero_ps();
  // Packed weights: [k][MR]; rows read in place (GEMM): row i at i * w_istride, k contiguous.
  const int64_t ks = r.w_kstride ? r.w_kstride : MR;
  int64_t woff[MR];
  for (int i = 0; i < MR; ++i) woff[i] = r.w_kstride ? std::min<int64_t>(i, r.w_rows - 1) * r.w_istride : i;
  for (int64_t k = 0; k < r.k; ++k) {
    const float* sk = s + r.k_off[k];
    __m512 x[V];
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) x[v] = _mm512_maskz_loadu_ps(mask[v], sk + 16 * v);
    const float* wk = w + k * ks;
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const __m512 b = _mm512_set1_ps(wk[woff[i]]);
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) acc[i * V + v] = _mm512_fmadd_ps(b, x[v], acc[i * V + v]);
    }
  }
#pragma GCC unroll 32
  for (int i = 0; i < MR * V; ++i) out[i] = acc[i];
}

template <int MR, int V>
inline void tile(const ConvF32Row& r, const float* w, int64_t c0, int64_t p, int64_t valid) {
  __mmask16 mask[V];
  for (int v = 0; v < V; ++v) mask[v] = lane_mask(valid - 16 * v);
  __m512 acc_mem[MR * V];
  accumulate<MR, V>(r, w, r.src + p, mask, acc_mem);
  auto acc = [&](int i, int v) { return acc_mem[i * V + v]; };
  const __m512 lo = _mm512_set1_ps(r.lo), hi = _mm512_set1_ps(r.hi);
  for (int i = 0; i < MR; ++i) {
    const int64_t c = c0 + i;
    if (c >= r.m) break;
    float* d = r.dst + c * r.ld_dst + p;
    const float* res = r.res ? r.res + c * r.ld_res + p : nullptr;
    for (int v = 0; v < V; ++v) {
      __m512 y = acc(i, v);
      if (r.scale) y = _mm512_mul_ps(y, _mm512_set1_ps(r.scale[c]));
      if (r.bias) y = _mm512_add_ps(y, _mm512_set1_ps(r.bias[c]));
      if (res) y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(mask[v], res + 16 * v));
      if (r.clamp) y = _mm512_min_ps(hi, _mm512_max_ps(lo, y));  // operand order passes NaN through, as Relu and Clip do
      _mm512_mask_storeu_ps(d + 16 * v, mask[v], y);
    }
  }
}

template <int MR, int V>
void row(const ConvF32Row& r) {
  const int64_t blocks = (r.m + MR - 1) / MR;
  const int64_t width = 16 * V;
  int64_t p = 0;
  // Full tiles; every channel block reuses the same input vectors from L1.
  for (; p + width <= r.n; p += width)
    for (int64_t b = 0; b < blocks; ++b) tile<MR, V>(r, r.w + b * r.k * MR, b * MR, p, width);
  // The rest in tiles as wide as it needs (the last vector masked): a tile with few
  // accumulators is bound by FMA latency, so one 2-vector tile beats two 1-vector ones.
  while (p < r.n) {
    const int64_t rest = r.n - p, vectors = (rest + 15) / 16;
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
    p += 16 * v;
  }
}

// One depthwise output row: 4 vectors (64 positions) per step, the weights in registers.
template <int T>
inline void dw_row(const DwF32Plane& d, const __m512* w, const int64_t* off, int64_t oh) {
  const float* s = d.src + oh * d.src_pitch;
  float* o = d.dst + oh * d.cols;
  const float* res = d.res ? d.res + oh * d.cols : nullptr;
  const int taps = T > 0 ? T : d.taps;
  const __m512 lo = _mm512_set1_ps(d.lo), hi = _mm512_set1_ps(d.hi);
  const __m512 scale = _mm512_set1_ps(d.scale), bias = _mm512_set1_ps(d.bias);
  for (int64_t ow = 0; ow < d.cols; ow += 64) {
    __mmask16 m[4];
    __m512 acc[4];
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) {
      m[v] = lane_mask(d.cols - ow - 16 * v);
      acc[v] = _mm512_setzero_ps();
    }
#pragma GCC unroll 9
    for (int t = 0; t < taps; ++t) {
      const float* p = s + off[t] + ow;
      const __m512 wt = T > 0 ? w[t] : _mm512_set1_ps(d.w[t]);
#pragma GCC unroll 4
      for (int v = 0; v < 4; ++v) acc[v] = _mm512_fmadd_ps(wt, _mm512_maskz_loadu_ps(m[v], p + 16 * v), acc[v]);
    }
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) {
      if (!m[v]) break;
      __m512 y = acc[v];
      if (d.has_scale) y = _mm512_mul_ps(y, scale);
      if (d.has_bias) y = _mm512_add_ps(y, bias);
      if (res) y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(m[v], res + ow + 16 * v));
      if (d.clamp) y = _mm512_min_ps(hi, _mm512_max_ps(lo, y));  // NaN passes, as Relu and Clip
      _mm512_mask_storeu_ps(o + ow + 16 * v, m[v], y);
    }
  }
}

template <int T>
void dw_plane(const DwF32Plane& d) {
  __m512 w[T > 0 ? T : 1];
  for (int t = 0; t < T; ++t) w[t] = _mm512_set1_ps(d.w[t]);
  for (int64_t oh = 0; oh < d.rows; ++oh) dw_row<T>(d, w, d.tap_off, oh);
}

}  // namespace

void dw_f32_plane_avx512(const DwF32Plane& d) {
  if (d.taps == 9)
    dw_plane<9>(d);
  else
    dw_plane<0>(d);
}

void conv_f32_row_avx512(const ConvF32Row& r) {
  switch (r.mr) {
    case 8: row<8, 3>(r); break;
    case 4: row<4, 4>(r); break;
    case 2: row<2, 4>(r); break;
    default: row<1, 4>(r); break;
  }
}

}  // namespace tinyq::kernels
