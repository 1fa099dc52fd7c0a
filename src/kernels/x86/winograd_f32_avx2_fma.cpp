// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// Winograd micro-kernels for AVX2 + FMA (see kernels/fast/winograd_kernels.h). Lanes are 8
// consecutive tiles of a tile row. The 8 * m input columns a vector of tiles reads are split
// into their m phases with in-lane shuffles (a transpose of 8 tiles x m taps); taps m and m + 1
// are phases 0 and 1 moved by one tile, the last lane filled from the next column. Output
// columns are interleaved back by the inverse transpose. The plane's edges go through
// vmaskmovps (padding reads as 0, nothing is written past the block).
// Compiled with -mavx2 -mfma (kernels_x86.cmake).

#include <immintrin.h>

#include <algorithm>
#include <limits>

#include "kernels/fast/winograd_kernels.h"

namespace tinyq::kernels {

namespace {

constexpr int kLanes = 8;

inline __m256i range_mask(int64_t lo, int64_t hi) {
  const int l = static_cast<int>(std::clamp<int64_t>(lo, 0, kLanes));
  const int h = static_cast<int>(std::clamp<int64_t>(hi, 0, kLanes));
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_and_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32(h), idx),
                          _mm256_cmpgt_epi32(idx, _mm256_set1_epi32(l - 1)));
}

// row[col .. col + 8) with the columns outside [0, width) as 0.
inline __m256 load_cols(const float* row, int64_t col, int64_t width) {
  if (col >= 0 && col + kLanes <= width) return _mm256_loadu_ps(row + col);
  if (col >= width || col + kLanes <= 0) return _mm256_setzero_ps();
  return _mm256_maskload_ps(row + col, range_mask(-col, width - col));
}

inline float load_col(const float* row, int64_t col, int64_t width) {
  return col >= 0 && col < width ? row[col] : 0.0f;
}

// Lanes 1..7 of x, then `last`.
inline __m256 next_tile(__m256 x, float last) {
  const __m256 r = _mm256_permutevar8x32_ps(x, _mm256_setr_epi32(1, 2, 3, 4, 5, 6, 7, 0));
  return _mm256_blend_ps(r, _mm256_set1_ps(last), 0x80);
}

// The alpha taps of 8 tiles of one input row (tile t's tap j at column base + m t + j).
template <int M>
inline void load_taps(const float* row, int64_t base, int64_t width, __m256* d) {
  constexpr int kAlpha = M + 2;
  if (!row) {
    for (int j = 0; j < kAlpha; ++j) d[j] = _mm256_setzero_ps();
    return;
  }
  if (M == 2) {
    // [a0 a2 b0 b2 | a4 a6 b4 b6] -> 64-bit lanes reordered 0 2 1 3.
    const __m256 a = load_cols(row, base, width), b = load_cols(row, base + kLanes, width);
    d[0] = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)), 0xD8));
    d[1] = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0xDD)), 0xD8));
  } else {
    // 8 tiles x 4 taps (two tiles per register) transposed to 4 taps x 8 tiles; the
    // unpacks leave the tiles in the order 0 2 4 6 1 3 5 7, which the final permute fixes.
    const __m256 a0 = load_cols(row, base, width), a1 = load_cols(row, base + kLanes, width);
    const __m256 a2 = load_cols(row, base + 2 * kLanes, width), a3 = load_cols(row, base + 3 * kLanes, width);
    const __m256 l01 = _mm256_unpacklo_ps(a0, a1), h01 = _mm256_unpackhi_ps(a0, a1);
    const __m256 l23 = _mm256_unpacklo_ps(a2, a3), h23 = _mm256_unpackhi_ps(a2, a3);
    const __m256i fix = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    auto lo = [](__m256 x, __m256 y) {
      return _mm256_castpd_ps(_mm256_unpacklo_pd(_mm256_castps_pd(x), _mm256_castps_pd(y)));
    };
    auto hi = [](__m256 x, __m256 y) {
      return _mm256_castpd_ps(_mm256_unpackhi_pd(_mm256_castps_pd(x), _mm256_castps_pd(y)));
    };
    d[0] = _mm256_permutevar8x32_ps(lo(l01, l23), fix);
    d[1] = _mm256_permutevar8x32_ps(hi(l01, l23), fix);
    d[2] = _mm256_permutevar8x32_ps(lo(h01, h23), fix);
    d[3] = _mm256_permutevar8x32_ps(hi(h01, h23), fix);
  }
  d[M] = next_tile(d[0], load_col(row, base + M * kLanes, width));
  d[M + 1] = next_tile(d[1], load_col(row, base + M * kLanes + 1, width));
}

inline void bt2(const __m256* d, __m256* s) {
  s[0] = _mm256_sub_ps(d[0], d[2]);
  s[1] = _mm256_add_ps(d[1], d[2]);
  s[2] = _mm256_sub_ps(d[2], d[1]);
  s[3] = _mm256_sub_ps(d[1], d[3]);
}

inline void bt4(const __m256* d, __m256* s) {
  const __m256 four = _mm256_set1_ps(4.0f), five = _mm256_set1_ps(5.0f), two = _mm256_set1_ps(2.0f);
  const __m256 t0 = _mm256_fnmadd_ps(four, d[2], d[4]);
  const __m256 t1 = _mm256_fnmadd_ps(four, d[1], d[3]);
  const __m256 t2 = _mm256_sub_ps(d[4], d[2]);
  const __m256 t3 = _mm256_mul_ps(two, _mm256_sub_ps(d[3], d[1]));
  s[0] = _mm256_fmadd_ps(four, d[0], _mm256_fnmadd_ps(five, d[2], d[4]));
  s[1] = _mm256_add_ps(t0, t1);
  s[2] = _mm256_sub_ps(t0, t1);
  s[3] = _mm256_add_ps(t2, t3);
  s[4] = _mm256_sub_ps(t2, t3);
  s[5] = _mm256_fmadd_ps(four, d[1], _mm256_fnmadd_ps(five, d[3], d[5]));
}

template <int M>
inline void bt(const __m256* d, __m256* s) {
  if (M == 2)
    bt2(d, s);
  else
    bt4(d, s);
}

template <int M>
void input_block(const WinoInput& a) {
  constexpr int kAlpha = M + 2;
  const int64_t vectors = a.ld / kLanes;
  const int64_t xi_stride = a.xi_stride;
  for (int64_t c = 0; c < a.channels; ++c) {
    const float* const* rows = a.rows + c * kAlpha;
    for (int64_t v = 0; v < vectors; ++v) {
      const int64_t base = a.in_col0 + v * kLanes * M;
      __m256 s[kAlpha][kAlpha];
      for (int r = 0; r < kAlpha; ++r) {
        __m256 d[kAlpha];
        load_taps<M>(rows[r], base, a.width, d);
        bt<M>(d, s[r]);
      }
      float* out = a.dst + c * a.ld + v * kLanes;
      for (int j = 0; j < kAlpha; ++j) {
        __m256 col[kAlpha], t[kAlpha];
        for (int r = 0; r < kAlpha; ++r) col[r] = s[r][j];
        bt<M>(col, t);
        for (int i = 0; i < kAlpha; ++i) _mm256_storeu_ps(out + (i * kAlpha + j) * xi_stride, t[i]);
      }
    }
  }
}

// One GEMM tile: MR output channels x V vectors of tiles (12 accumulators of the 16 ymm).
template <int MR, int V>
inline void gemm_tile(const float* v, const float* u, float* o, int64_t channels, int64_t ld) {
  __m256 acc[MR][V];
  for (int i = 0; i < MR; ++i)
    for (int q = 0; q < V; ++q) acc[i][q] = _mm256_setzero_ps();
  for (int64_t c = 0; c < channels; ++c) {
    __m256 x[V];
    for (int q = 0; q < V; ++q) x[q] = _mm256_loadu_ps(v + c * ld + q * kLanes);
    const float* uc = u + c * MR;
    for (int i = 0; i < MR; ++i) {
      const __m256 w = _mm256_broadcast_ss(uc + i);
      for (int q = 0; q < V; ++q) acc[i][q] = _mm256_fmadd_ps(w, x[q], acc[i][q]);
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int q = 0; q < V; ++q) _mm256_storeu_ps(o + i * ld + q * kLanes, acc[i][q]);
}

inline void at2(const __m256* o, __m256* s) {
  s[0] = _mm256_add_ps(_mm256_add_ps(o[0], o[1]), o[2]);
  s[1] = _mm256_sub_ps(_mm256_sub_ps(o[1], o[2]), o[3]);
}

inline void at4(const __m256* o, __m256* s) {
  const __m256 a = _mm256_add_ps(o[1], o[2]), b = _mm256_sub_ps(o[1], o[2]);
  const __m256 c = _mm256_add_ps(o[3], o[4]), d = _mm256_sub_ps(o[3], o[4]);
  s[0] = _mm256_add_ps(_mm256_add_ps(o[0], a), c);
  s[1] = _mm256_fmadd_ps(_mm256_set1_ps(2.0f), d, b);
  s[2] = _mm256_fmadd_ps(_mm256_set1_ps(4.0f), c, a);
  s[3] = _mm256_add_ps(_mm256_fmadd_ps(_mm256_set1_ps(8.0f), d, b), o[5]);
}

template <int M>
inline void at(const __m256* o, __m256* s) {
  if (M == 2)
    at2(o, s);
  else
    at4(o, s);
}

// 8 consecutive output columns from `col` of one row, with the epilogue; columns below
// `limit` only.
inline void store_masked(float* p, bool full, __m256i mask, __m256 y) {
  if (full)
    _mm256_storeu_ps(p, y);
  else
    _mm256_maskstore_ps(p, mask, y);
}

// The range of the values a block stores, kept in registers: a running min and max, and a
// probe, probe += y * 0, that turns NaN when any y is NaN or infinite (as in the AVX-512
// kernels).
struct StoredRange {
  __m256 lo = _mm256_set1_ps(std::numeric_limits<float>::infinity());
  __m256 hi = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  __m256 probe = _mm256_setzero_ps();
  void add(bool full, __m256i mask, __m256 y) {
    if (full) {
      lo = _mm256_min_ps(lo, y);
      hi = _mm256_max_ps(hi, y);
      probe = _mm256_fmadd_ps(y, _mm256_setzero_ps(), probe);
    } else {
      const __m256 in = _mm256_castsi256_ps(mask);
      lo = _mm256_blendv_ps(lo, _mm256_min_ps(lo, y), in);
      hi = _mm256_blendv_ps(hi, _mm256_max_ps(hi, y), in);
      probe = _mm256_fmadd_ps(_mm256_and_ps(in, y), _mm256_setzero_ps(), probe);
    }
  }
  /// Whether every value was finite (else lo and hi may hold NaN or infinities).
  bool all_finite() const {
    return _mm256_movemask_ps(_mm256_cmp_ps(probe, _mm256_setzero_ps(), _CMP_EQ_OQ)) == 0xFF;
  }
  void merge_into(FiniteRange* r, int64_t count) const {
    alignas(32) float l[kLanes], h[kLanes];
    _mm256_store_ps(l, lo);
    _mm256_store_ps(h, hi);
    FiniteRange mine;
    for (int i = 0; i < kLanes; ++i) {
      mine.lo = l[i] < mine.lo ? l[i] : mine.lo;
      mine.hi = h[i] > mine.hi ? h[i] : mine.hi;
    }
    mine.count = count;
    r->merge(mine);
  }
};

// Stores 8 consecutive output columns starting at `col` of row `row_off` with the epilogue;
// only columns below `limit` are written. `pre_range` and `range` measure them when
// a.pre_range and a.range ask. With
// kStore false nothing is stored and conv + bias goes to the exact `recount` instead (a block
// that held a NaN or an infinity is measured again that way).
template <bool kStore = true>
inline void store_cols(const WinoOutput& a, int64_t k, int64_t row_off, int64_t col, int64_t limit, __m256 y,
                       __m256 bias, StoredRange& pre_range, StoredRange& range, FiniteRange* recount = nullptr) {
  if (col >= limit) return;
  const bool full = col + kLanes <= limit;
  const __m256i mask = range_mask(0, limit - col);
  const int64_t idx = k * a.plane + row_off + col;
  if (a.bias) y = _mm256_add_ps(y, bias);
  if (!kStore) {
    alignas(32) float v[kLanes];
    _mm256_store_ps(v, y);
    for (int64_t i = 0; i < std::min<int64_t>(kLanes, limit - col); ++i) recount->add(v[i]);
    return;
  }
  if (a.pre) store_masked(a.pre + idx, full, mask, y);
  if (a.pre_range) pre_range.add(full, mask, y);
  if (a.residual)
    y = _mm256_add_ps(y, full ? _mm256_loadu_ps(a.residual + idx) : _mm256_maskload_ps(a.residual + idx, mask));
  if (a.clamp) y = _mm256_min_ps(_mm256_set1_ps(a.hi), _mm256_max_ps(_mm256_set1_ps(a.lo), y));  // NaN passes
  store_masked(a.dst + idx, full, mask, y);
  if (a.range) range.add(full, mask, y);
}

// kStore false: conv + bias measured into `recount`, exactly, and nothing stored.
template <int M, bool kStore = true>
void output_block(const WinoOutput& a, FiniteRange* recount = nullptr) {
  constexpr int kAlpha = M + 2;
  const int64_t vectors = (a.tiles + kLanes - 1) / kLanes;
  const int64_t xi_stride = a.xi_stride;
  const int64_t limit = std::min(a.out_w, a.col0 + M * a.tiles);
  const int rows = static_cast<int>(std::min<int64_t>(M, a.out_h - a.row0));
  StoredRange pre_range, range;  // in registers: what is measured, as a.pre_range and a.range ask
  for (int64_t k = 0; k < a.channels; ++k) {
    const __m256 bias = _mm256_set1_ps(a.bias ? a.bias[k] : 0.0f);
    for (int64_t v = 0; v < vectors; ++v) {
      const float* o = a.o + k * a.ld + v * kLanes;
      __m256 s[M][kAlpha];
      for (int j = 0; j < kAlpha; ++j) {
        __m256 col[kAlpha], t[M];
        for (int r = 0; r < kAlpha; ++r) col[r] = _mm256_loadu_ps(o + (r * kAlpha + j) * xi_stride);
        at<M>(col, t);
        for (int i = 0; i < M; ++i) s[i][j] = t[i];
      }
      const int64_t col0 = a.col0 + v * kLanes * M;
      for (int i = 0; i < rows; ++i) {
        __m256 y[M];
        at<M>(s[i], y);
        const int64_t row_off = (a.row0 + i) * a.out_w;
        auto store = [&](int64_t col, __m256 cols) {
          store_cols<kStore>(a, k, row_off, col, limit, cols, bias, pre_range, range, recount);
        };
        if (M == 2) {
          // [y0_0 y1_0 y0_1 y1_1 | y0_4 ...] and [y0_2 y1_2 y0_3 y1_3 | y0_6 ...] -> tiles 0-3, 4-7.
          const __m256 l = _mm256_unpacklo_ps(y[0], y[1]), h = _mm256_unpackhi_ps(y[0], y[1]);
          store(col0, _mm256_permute2f128_ps(l, h, 0x20));
          store(col0 + kLanes, _mm256_permute2f128_ps(l, h, 0x31));
        } else {
          // 4 taps x 8 tiles -> 8 tiles x 4 taps: t0|t4, t1|t5, t2|t6, t3|t7, then 128-bit halves.
          const __m256 l01 = _mm256_unpacklo_ps(y[0], y[1]), h01 = _mm256_unpackhi_ps(y[0], y[1]);
          const __m256 l23 = _mm256_unpacklo_ps(y[2], y[3]), h23 = _mm256_unpackhi_ps(y[2], y[3]);
          auto lo = [](__m256 x, __m256 z) {
            return _mm256_castpd_ps(_mm256_unpacklo_pd(_mm256_castps_pd(x), _mm256_castps_pd(z)));
          };
          auto hi = [](__m256 x, __m256 z) {
            return _mm256_castpd_ps(_mm256_unpackhi_pd(_mm256_castps_pd(x), _mm256_castps_pd(z)));
          };
          const __m256 t04 = lo(l01, l23), t15 = hi(l01, l23), t26 = lo(h01, h23), t37 = hi(h01, h23);
          store(col0, _mm256_permute2f128_ps(t04, t15, 0x20));
          store(col0 + kLanes, _mm256_permute2f128_ps(t26, t37, 0x20));
          store(col0 + 2 * kLanes, _mm256_permute2f128_ps(t04, t15, 0x31));
          store(col0 + 3 * kLanes, _mm256_permute2f128_ps(t26, t37, 0x31));
        }
      }
    }
  }
  if (kStore) finish_stored_ranges(a, rows, limit, range, pre_range, [&] { output_block<M, false>(a, a.pre_range); });
}

}  // namespace

void wino_input_avx2(const WinoInput& a) {
  if (a.m == 2)
    input_block<2>(a);
  else
    input_block<4>(a);
}

void wino_gemm_avx2(const WinoGemm& a) {
  constexpr int kMr = 4;  // the driver packs u with mr = 4 for this kernel
  const int64_t blocks = a.m_padded / kMr;
  const int64_t vectors = a.ld / kLanes;
  for (int64_t v0 = 0; v0 < vectors;) {
    const int64_t rest = vectors - v0;
    const int nv = rest >= 5 || rest == 3 ? 3 : rest >= 2 ? 2 : 1;
    for (int64_t xi = 0; xi < a.positions; ++xi) {
      const float* v = a.v + xi * a.v_stride + v0 * kLanes;
      for (int64_t b = 0; b < blocks; ++b) {
        const float* u = a.u + (xi * blocks + b) * a.channels * kMr;
        float* o = a.o + xi * a.o_stride + b * kMr * a.ld + v0 * kLanes;
        if (nv == 3)
          gemm_tile<kMr, 3>(v, u, o, a.channels, a.ld);
        else if (nv == 2)
          gemm_tile<kMr, 2>(v, u, o, a.channels, a.ld);
        else
          gemm_tile<kMr, 1>(v, u, o, a.channels, a.ld);
      }
    }
    v0 += nv;
  }
}

void wino_output_avx2(const WinoOutput& a) {
  if (a.m == 2)
    output_block<2>(a);
  else
    output_block<4>(a);
}

}  // namespace tinyq::kernels
