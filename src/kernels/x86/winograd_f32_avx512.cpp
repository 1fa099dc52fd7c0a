// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// Winograd micro-kernels for AVX-512F (see kernels/fast/winograd_kernels.h). Lanes are 16
// consecutive tiles of a tile row. Input: a tile's taps are every m-th input column, so the
// 16 * m (+2) columns a vector of tiles reads are loaded once and split into their m phases
// with vpermt2ps; the taps m and m + 1 are phases 0 and 1 moved by one tile. Output: the m
// columns of each tile are interleaved back the same way before the epilogue. Loads and stores
// at the plane's edges are masked (padding reads as 0, nothing is written past the block).
// Compiled with -mavx512f -mavx512bw -mfma (kernels_x86.cmake).

#include <immintrin.h>

#include <algorithm>
#include <limits>

#include "kernels/fast/winograd_kernels.h"

namespace tinyq::kernels {

namespace {

constexpr int kLanes = 16;

// Lanes [lo, hi) set.
inline __mmask16 range_mask(int64_t lo, int64_t hi) {
  lo = std::max<int64_t>(lo, 0);
  hi = std::min<int64_t>(hi, kLanes);
  if (hi <= lo) return 0;
  const uint32_t upto = hi >= 32 ? 0xFFFFFFFFu : (1u << hi) - 1u;
  return static_cast<__mmask16>(upto & ~((1u << lo) - 1u));
}

// row[col .. col + 16) with the columns outside [0, width) as 0.
inline __m512 load_cols(const float* row, int64_t col, int64_t width) {
  if (col >= 0 && col + kLanes <= width) return _mm512_loadu_ps(row + col);
  const __mmask16 k = range_mask(-col, width - col);
  if (!k) return _mm512_setzero_ps();
  return _mm512_maskz_loadu_ps(k, row + col);
}

struct Perms {
  __m512i even, odd, next0, next1, il_lo, il_hi;
  __m512i q_lo, q_hi;  // 64-bit interleave of two pair-interleaved vectors
  Perms() {
    even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    // Lanes 1..15 of the first operand, then lane 0 (next0) or 1 (next1) of the second.
    next0 = _mm512_setr_epi32(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);
    next1 = _mm512_setr_epi32(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 17);
    il_lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    il_hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    q_lo = _mm512_setr_epi64(0, 8, 1, 9, 2, 10, 3, 11);
    q_hi = _mm512_setr_epi64(4, 12, 5, 13, 6, 14, 7, 15);
  }
};

// The alpha taps d[0..alpha) of 16 tiles of one input row (tile t's tap j at column
// base + m t + j).
template <int M>
inline void load_taps(const Perms& P, const float* row, int64_t base, int64_t width, __m512* d) {
  constexpr int kAlpha = M + 2;
  if (!row) {
    for (int j = 0; j < kAlpha; ++j) d[j] = _mm512_setzero_ps();
    return;
  }
  const __m512 e = load_cols(row, base + M * kLanes, width);  // columns for the last tile's taps m, m + 1
  if (M == 2) {
    const __m512 a = load_cols(row, base, width), b = load_cols(row, base + kLanes, width);
    d[0] = _mm512_permutex2var_ps(a, P.even, b);
    d[1] = _mm512_permutex2var_ps(a, P.odd, b);
  } else {
    const __m512 a0 = load_cols(row, base, width), a1 = load_cols(row, base + kLanes, width);
    const __m512 a2 = load_cols(row, base + 2 * kLanes, width), a3 = load_cols(row, base + 3 * kLanes, width);
    const __m512 e01 = _mm512_permutex2var_ps(a0, P.even, a1), o01 = _mm512_permutex2var_ps(a0, P.odd, a1);
    const __m512 e23 = _mm512_permutex2var_ps(a2, P.even, a3), o23 = _mm512_permutex2var_ps(a2, P.odd, a3);
    d[0] = _mm512_permutex2var_ps(e01, P.even, e23);
    d[2] = _mm512_permutex2var_ps(e01, P.odd, e23);
    d[1] = _mm512_permutex2var_ps(o01, P.even, o23);
    d[3] = _mm512_permutex2var_ps(o01, P.odd, o23);
  }
  d[M] = _mm512_permutex2var_ps(d[0], P.next0, e);
  d[M + 1] = _mm512_permutex2var_ps(d[1], P.next1, e);
}

// s = B^T d along one axis (alpha values).
inline void bt2(const __m512* d, __m512* s) {
  s[0] = _mm512_sub_ps(d[0], d[2]);
  s[1] = _mm512_add_ps(d[1], d[2]);
  s[2] = _mm512_sub_ps(d[2], d[1]);
  s[3] = _mm512_sub_ps(d[1], d[3]);
}

inline void bt4(const __m512* d, __m512* s) {
  const __m512 four = _mm512_set1_ps(4.0f), five = _mm512_set1_ps(5.0f), two = _mm512_set1_ps(2.0f);
  const __m512 t0 = _mm512_fnmadd_ps(four, d[2], d[4]);  // d4 - 4 d2
  const __m512 t1 = _mm512_fnmadd_ps(four, d[1], d[3]);  // d3 - 4 d1
  const __m512 t2 = _mm512_sub_ps(d[4], d[2]);
  const __m512 t3 = _mm512_mul_ps(two, _mm512_sub_ps(d[3], d[1]));
  s[0] = _mm512_fmadd_ps(four, d[0], _mm512_fnmadd_ps(five, d[2], d[4]));
  s[1] = _mm512_add_ps(t0, t1);
  s[2] = _mm512_sub_ps(t0, t1);
  s[3] = _mm512_add_ps(t2, t3);
  s[4] = _mm512_sub_ps(t2, t3);
  s[5] = _mm512_fmadd_ps(four, d[1], _mm512_fnmadd_ps(five, d[3], d[5]));
}

template <int M>
inline void bt(const __m512* d, __m512* s) {
  if (M == 2)
    bt2(d, s);
  else
    bt4(d, s);
}

template <int M>
void input_block(const WinoInput& a) {
  constexpr int kAlpha = M + 2;
  const Perms P;
  const int64_t vectors = (a.ld + kLanes - 1) / kLanes;  // ld may end in half a vector
  const int64_t xi_stride = a.xi_stride;
  for (int64_t c = 0; c < a.channels; ++c) {
    const float* const* rows = a.rows + c * kAlpha;
    for (int64_t v = 0; v < vectors; ++v) {
      const int64_t base = a.in_col0 + v * kLanes * M;
      // Rows first (s[r] = B^T applied to row r's taps), then columns.
      __m512 s[kAlpha][kAlpha];
      for (int r = 0; r < kAlpha; ++r) {
        __m512 d[kAlpha];
        load_taps<M>(P, rows[r], base, a.width, d);
        bt<M>(d, s[r]);
      }
      float* out = a.dst + c * a.ld + v * kLanes;
      const __mmask16 keep = range_mask(0, a.ld - v * kLanes);
      for (int j = 0; j < kAlpha; ++j) {
        __m512 col[kAlpha], t[kAlpha];
        for (int r = 0; r < kAlpha; ++r) col[r] = s[r][j];
        bt<M>(col, t);
        for (int i = 0; i < kAlpha; ++i) _mm512_mask_storeu_ps(out + (i * kAlpha + j) * xi_stride, keep, t[i]);
      }
    }
  }
}

// One GEMM tile: MR output channels x V vectors of tiles, accumulated over all channels.
template <int MR, int V>
inline void gemm_tile(const float* v, const float* u, float* o, int64_t channels, int64_t ld) {
  __m512 acc[MR][V];
  for (int i = 0; i < MR; ++i)
    for (int q = 0; q < V; ++q) acc[i][q] = _mm512_setzero_ps();
  for (int64_t c = 0; c < channels; ++c) {
    __m512 x[V];
    for (int q = 0; q < V; ++q) x[q] = _mm512_loadu_ps(v + c * ld + q * kLanes);
    const float* uc = u + c * MR;
    for (int i = 0; i < MR; ++i) {
      const __m512 w = _mm512_set1_ps(uc[i]);
      for (int q = 0; q < V; ++q) acc[i][q] = _mm512_fmadd_ps(w, x[q], acc[i][q]);
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int q = 0; q < V; ++q) _mm512_storeu_ps(o + i * ld + q * kLanes, acc[i][q]);
}

// The same for a last half vector (8 tiles), in ymm registers: half the work of a zmm tile.
template <int MR>
inline void gemm_tile_half(const float* v, const float* u, float* o, int64_t channels, int64_t ld) {
  __m256 acc[MR];
  for (int i = 0; i < MR; ++i) acc[i] = _mm256_setzero_ps();
  for (int64_t c = 0; c < channels; ++c) {
    const __m256 x = _mm256_loadu_ps(v + c * ld);
    const float* uc = u + c * MR;
    for (int i = 0; i < MR; ++i) acc[i] = _mm256_fmadd_ps(_mm256_set1_ps(uc[i]), x, acc[i]);
  }
  for (int i = 0; i < MR; ++i) _mm256_storeu_ps(o + i * ld, acc[i]);
}

// s = A^T o along one axis (alpha values in, m out).
inline void at2(const __m512* o, __m512* s) {
  s[0] = _mm512_add_ps(_mm512_add_ps(o[0], o[1]), o[2]);
  s[1] = _mm512_sub_ps(_mm512_sub_ps(o[1], o[2]), o[3]);
}

inline void at4(const __m512* o, __m512* s) {
  const __m512 a = _mm512_add_ps(o[1], o[2]), b = _mm512_sub_ps(o[1], o[2]);
  const __m512 c = _mm512_add_ps(o[3], o[4]), d = _mm512_sub_ps(o[3], o[4]);
  s[0] = _mm512_add_ps(_mm512_add_ps(o[0], a), c);
  s[1] = _mm512_fmadd_ps(_mm512_set1_ps(2.0f), d, b);
  s[2] = _mm512_fmadd_ps(_mm512_set1_ps(4.0f), c, a);
  s[3] = _mm512_add_ps(_mm512_fmadd_ps(_mm512_set1_ps(8.0f), d, b), o[5]);
}

template <int M>
inline void at(const __m512* o, __m512* s) {
  if (M == 2)
    at2(o, s);
  else
    at4(o, s);
}

// The range of the values a block stores, kept in registers: a running min and max, and a
// probe, probe += y * 0, that turns NaN when any y is NaN or infinite (three operations per
// vector; masking out the non-finite lanes as they come cost twice that, about as much as a
// separate pass over the block).
struct StoredRange {
  __m512 lo = _mm512_set1_ps(std::numeric_limits<float>::infinity());
  __m512 hi = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  __m512 probe = _mm512_setzero_ps();
  void add(__mmask16 mask, __m512 y) {
    if (mask == 0xFFFF) {
      lo = _mm512_min_ps(lo, y);
      hi = _mm512_max_ps(hi, y);
      probe = _mm512_fmadd_ps(y, _mm512_setzero_ps(), probe);
    } else {
      lo = _mm512_mask_min_ps(lo, mask, lo, y);
      hi = _mm512_mask_max_ps(hi, mask, hi, y);
      probe = _mm512_fmadd_ps(_mm512_maskz_mov_ps(mask, y), _mm512_setzero_ps(), probe);
    }
  }
  /// Whether every value was finite (else lo and hi may hold NaN or infinities).
  bool all_finite() const { return _mm512_cmp_ps_mask(probe, _mm512_setzero_ps(), _CMP_EQ_OQ) == 0xFFFF; }
  void merge_into(FiniteRange* r, int64_t count) const {
    FiniteRange mine;
    mine.lo = _mm512_reduce_min_ps(lo);
    mine.hi = _mm512_reduce_max_ps(hi);
    mine.count = count;
    r->merge(mine);
  }
};

// Stores 16 consecutive output columns starting at `col` of row `row_off` with the epilogue;
// only columns below `limit` are written. `pre_range` and `range` measure them when
// a.pre_range and a.range ask. With
// kStore false nothing is stored and conv + bias goes to the exact `recount` instead (a block
// that held a NaN or an infinity is measured again that way).
template <bool kStore = true>
inline void store_cols(const WinoOutput& a, int64_t k, int64_t row_off, int64_t col, int64_t limit, __m512 y,
                       __m512 bias, StoredRange& pre_range, StoredRange& range, FiniteRange* recount = nullptr) {
  const __mmask16 mask = col + kLanes <= limit ? static_cast<__mmask16>(0xFFFF) : range_mask(0, limit - col);
  if (!mask) return;
  const int64_t idx = k * a.plane + row_off + col;
  if (a.bias) y = _mm512_add_ps(y, bias);
  if (!kStore) {
    alignas(64) float v[kLanes];
    _mm512_store_ps(v, y);
    for (int i = 0; i < kLanes; ++i)
      if (mask >> i & 1) recount->add(v[i]);
    return;
  }
  if (a.pre) _mm512_mask_storeu_ps(a.pre + idx, mask, y);
  if (a.pre_range) pre_range.add(mask, y);
  if (a.residual) y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(mask, a.residual + idx));
  if (a.clamp) y = _mm512_min_ps(_mm512_set1_ps(a.hi), _mm512_max_ps(_mm512_set1_ps(a.lo), y));  // NaN passes
  _mm512_mask_storeu_ps(a.dst + idx, mask, y);
  if (a.range) range.add(mask, y);
}

// kStore false: conv + bias measured into `recount`, exactly, and nothing stored.
template <int M, bool kStore = true>
void output_block(const WinoOutput& a, FiniteRange* recount = nullptr) {
  constexpr int kAlpha = M + 2;
  const Perms P;
  const int64_t vectors = (a.tiles + kLanes - 1) / kLanes;
  const int64_t xi_stride = a.xi_stride;
  const int64_t limit = std::min(a.out_w, a.col0 + M * a.tiles);
  const int rows = static_cast<int>(std::min<int64_t>(M, a.out_h - a.row0));
  StoredRange pre_range, range;  // in registers: what is measured, as a.pre_range and a.range ask
  for (int64_t k = 0; k < a.channels; ++k) {
    const __m512 bias = _mm512_set1_ps(a.bias ? a.bias[k] : 0.0f);
    for (int64_t v = 0; v < vectors; ++v) {
      const float* o = a.o + k * a.ld + v * kLanes;
      const __mmask16 have = range_mask(0, a.ld - v * kLanes);  // ld may end in half a vector
      // Columns first (s[.][j] = A^T o[.][j]), then each output row.
      __m512 s[M][kAlpha];
      for (int j = 0; j < kAlpha; ++j) {
        __m512 col[kAlpha], t[M];
        for (int r = 0; r < kAlpha; ++r) col[r] = _mm512_maskz_loadu_ps(have, o + (r * kAlpha + j) * xi_stride);
        at<M>(col, t);
        for (int i = 0; i < M; ++i) s[i][j] = t[i];
      }
      const int64_t col0 = a.col0 + v * kLanes * M;
      for (int i = 0; i < rows; ++i) {
        __m512 y[M];
        at<M>(s[i], y);
        const int64_t row_off = (a.row0 + i) * a.out_w;
        auto store = [&](int64_t col, __m512 cols) {
          store_cols<kStore>(a, k, row_off, col, limit, cols, bias, pre_range, range, recount);
        };
        // Interleave tile-major: output column col0 + M t + j holds y[j][t].
        if (M == 2) {
          store(col0, _mm512_permutex2var_ps(y[0], P.il_lo, y[1]));
          store(col0 + kLanes, _mm512_permutex2var_ps(y[0], P.il_hi, y[1]));
        } else {
          const __m512 p01l = _mm512_permutex2var_ps(y[0], P.il_lo, y[1]);
          const __m512 p01h = _mm512_permutex2var_ps(y[0], P.il_hi, y[1]);
          const __m512 p23l = _mm512_permutex2var_ps(y[2], P.il_lo, y[3]);
          const __m512 p23h = _mm512_permutex2var_ps(y[2], P.il_hi, y[3]);
          auto q = [](__m512 x, __m512i idx, __m512 z) {
            return _mm512_castpd_ps(_mm512_permutex2var_pd(_mm512_castps_pd(x), idx, _mm512_castps_pd(z)));
          };
          store(col0, q(p01l, P.q_lo, p23l));
          store(col0 + kLanes, q(p01l, P.q_hi, p23l));
          store(col0 + 2 * kLanes, q(p01h, P.q_lo, p23h));
          store(col0 + 3 * kLanes, q(p01h, P.q_hi, p23h));
        }
      }
    }
  }
  if (kStore) finish_stored_ranges(a, rows, limit, range, pre_range, [&] { output_block<M, false>(a, a.pre_range); });
}

}  // namespace

void wino_input_avx512(const WinoInput& a) {
  if (a.m == 2)
    input_block<2>(a);
  else
    input_block<4>(a);
}

void wino_gemm_avx512(const WinoGemm& a) {
  constexpr int kMr = 8;  // the driver packs u with mr = 8 for this kernel
  const int64_t blocks = a.m_padded / kMr;
  const int64_t vectors = a.ld / kLanes;
  // Chunks of 3 vectors (24 accumulators), the rest as 2 + 2 or 2 or 1, then half a vector
  // when ld ends in one (learned_filter's 56-tile rows: 3.5 vectors).
  if (a.ld % kLanes) {
    for (int64_t xi = 0; xi < a.positions; ++xi)
      for (int64_t b = 0; b < blocks; ++b)
        gemm_tile_half<kMr>(a.v + xi * a.v_stride + vectors * kLanes, a.u + (xi * blocks + b) * a.channels * kMr,
                            a.o + xi * a.o_stride + b * kMr * a.ld + vectors * kLanes, a.channels, a.ld);
  }
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

void wino_output_avx512(const WinoOutput& a) {
  if (a.m == 2)
    output_block<2>(a);
  else
    output_block<4>(a);
}

}  // namespace tinyq::kernels
