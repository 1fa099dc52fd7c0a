// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// fp32 convolution / GEMM rows for AVX2 + FMA (see kernels/fast/micro_kernels.h, ConvF32Row).
// Compiled with -mavx2 -mfma (kernels_x86.cmake). Register tile: up to 4 channels x 2 vectors
// of 8 positions (8 accumulators + 2 inputs + 1 broadcast of the 16 ymm registers). The row's
// last vector uses vmaskmovps, which neither reads nor writes the masked-off lanes.

#include <immintrin.h>

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
  for (int64_t k = 0; k < r.k; ++k) {
    const float* sk = s + r.k_off[k];
    __m256 x[V];
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) x[v] = Full ? _mm256_loadu_ps(sk + 8 * v) : _mm256_maskload_ps(sk + 8 * v, mask[v]);
    const float* wk = w + k * MR;
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i) {
      const __m256 b = _mm256_broadcast_ss(wk + i);
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
  for (; p < r.n; p += 8)
    for (int64_t b = 0; b < blocks; ++b) tile<MR, 1>(r, r.w + b * r.k * MR, b * MR, p, r.n - p);
}

}  // namespace

void conv_f32_row_avx2(const ConvF32Row& r) {
  switch (r.mr) {
    case 4: row<4, 2>(r); break;
    case 2: row<2, 3>(r); break;
    default: row<1, 4>(r); break;
  }
}

}  // namespace tinyq::kernels
