// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// finite_minmax_f32 with AVX-512 (compiled with -mavx512f, called only where the CPU has it).

#if defined(__AVX512F__)

#include <immintrin.h>

#include <algorithm>

#include "kernels/reduce.h"

namespace tinyq::kernels {

int64_t finite_minmax_rows_f32_avx512(const RowSet& set, float* lo, float* hi) {
  // Two running vectors each for min and max (independent chains) over every row of the set,
  // and a probe, probe += x * 0, that turns NaN when any x is NaN or infinite; only such a set
  // goes through the scalar reference, which skips and counts those values.
  __m512 lo0 = _mm512_set1_ps(*lo), lo1 = lo0, hi0 = _mm512_set1_ps(*hi), hi1 = hi0;
  __m512 probe = _mm512_setzero_ps();
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t i = 0; i < set.outer; ++i)
    for (int64_t j = 0; j < set.rows; ++j) {
      const float* row = set.src + i * set.outer_stride + j * set.stride;
      int64_t k = 0;
      for (; k + 32 <= set.len; k += 32) {
        const __m512 a = _mm512_loadu_ps(row + k), b = _mm512_loadu_ps(row + k + 16);
        lo0 = _mm512_min_ps(lo0, a);
        hi0 = _mm512_max_ps(hi0, a);
        lo1 = _mm512_min_ps(lo1, b);
        hi1 = _mm512_max_ps(hi1, b);
        probe = _mm512_add_ps(probe, _mm512_add_ps(_mm512_mul_ps(a, zero), _mm512_mul_ps(b, zero)));
      }
      for (; k < set.len; k += 16) {
        const __mmask16 m = static_cast<__mmask16>((1u << std::min<int64_t>(16, set.len - k)) - 1u);
        const __m512 a = _mm512_maskz_loadu_ps(m, row + k);
        lo0 = _mm512_mask_min_ps(lo0, m, lo0, a);  // masked-off lanes keep their running value
        hi0 = _mm512_mask_max_ps(hi0, m, hi0, a);
        probe = _mm512_add_ps(probe, _mm512_mul_ps(a, zero));
      }
    }
  if (_mm512_cmp_ps_mask(probe, zero, _CMP_EQ_OQ) != 0xFFFF) return finite_minmax_rows_f32_ref(set, lo, hi);
  *lo = _mm512_reduce_min_ps(_mm512_min_ps(lo0, lo1));
  *hi = _mm512_reduce_max_ps(_mm512_max_ps(hi0, hi1));
  return 0;
}

int64_t finite_minmax_f32_avx512(const float* src, int64_t n, float* lo, float* hi) {
  // Blocks of 4096, each one row set: a NaN or infinity sends only its block through the scalar
  // reference.
  constexpr int64_t kBlock = 4096;
  int64_t nonfinite = 0;
  for (int64_t start = 0; start < n; start += kBlock)
    nonfinite += finite_minmax_rows_f32_avx512(RowSet{src + start, 1, 0, 1, 0, std::min(kBlock, n - start)}, lo, hi);
  return nonfinite;
}

}  // namespace tinyq::kernels

#endif  // __AVX512F__
