// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// u8 x s8 -> s32 tiles with AVX-512 VNNI (see kernels/fast/micro_kernels.h, QTileRows).
// Compiled with -mavx512f -mavx512bw -mavx512vnni (kernels_x86.cmake).
//
// vpdpbusd multiplies 4 unsigned bytes by 4 signed bytes per 32-bit lane and adds the four
// products to the lane in int32 without intermediate saturation, so the sum is exact (each
// product is at most 255 * 128). A tile is 16 positions x 16 output channels: one zmm
// accumulator per position, lanes = channels. Per k-step (4 input bytes) the 16 channels'
// weights are one 64-byte load and each position's 4 activation bytes one dword broadcast.
// The epilogue transposes the 16 x 16 int32 tile in registers for channel-major (NCHW) output.

#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/fast/micro_kernels.h"

namespace tinyq::kernels {

namespace {

inline __m512i bcast_dword(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof v);
  return _mm512_set1_epi32(v);
}

inline __mmask16 lane_mask(int64_t lanes) {
  if (lanes <= 0) return 0;
  return lanes >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << lanes) - 1u);
}

// In-register transpose of 16 rows of 16 int32 (see the derivation in the comments: 32-bit and
// 64-bit unpacks build 4x4 blocks inside each 128-bit lane, two rounds of 128-bit shuffles
// move the blocks into place).
inline void transpose16(__m512i r[16]) {
  __m512i t[16], u[16];
  for (int g = 0; g < 4; ++g) {
    const int a = 4 * g;
    t[a + 0] = _mm512_unpacklo_epi32(r[a + 0], r[a + 1]);
    t[a + 1] = _mm512_unpackhi_epi32(r[a + 0], r[a + 1]);
    t[a + 2] = _mm512_unpacklo_epi32(r[a + 2], r[a + 3]);
    t[a + 3] = _mm512_unpackhi_epi32(r[a + 2], r[a + 3]);
    // u[a + c] holds, in 128-bit lane L, column 4L + c of rows a..a+3.
    u[a + 0] = _mm512_unpacklo_epi64(t[a + 0], t[a + 2]);
    u[a + 1] = _mm512_unpackhi_epi64(t[a + 0], t[a + 2]);
    u[a + 2] = _mm512_unpacklo_epi64(t[a + 1], t[a + 3]);
    u[a + 3] = _mm512_unpackhi_epi64(t[a + 1], t[a + 3]);
  }
  for (int c = 0; c < 4; ++c) {
    const __m512i a = _mm512_maskz_shuffle_i32x4(0xFFFF, u[c], u[4 + c], 0x88);       // u0.L0 u0.L2 u1.L0 u1.L2
    const __m512i b = _mm512_maskz_shuffle_i32x4(0xFFFF, u[c], u[4 + c], 0xDD);       // u0.L1 u0.L3 u1.L1 u1.L3
    const __m512i d = _mm512_maskz_shuffle_i32x4(0xFFFF, u[8 + c], u[12 + c], 0x88);  // u2.L0 u2.L2 u3.L0 u3.L2
    const __m512i e = _mm512_maskz_shuffle_i32x4(0xFFFF, u[8 + c], u[12 + c], 0xDD);  // u2.L1 u2.L3 u3.L1 u3.L3
    r[0 + c] = _mm512_maskz_shuffle_i32x4(0xFFFF, a, d, 0x88);   // column c:      lanes L0 of u0..u3
    r[8 + c] = _mm512_maskz_shuffle_i32x4(0xFFFF, a, d, 0xDD);   // column 8 + c:  lanes L2
    r[4 + c] = _mm512_maskz_shuffle_i32x4(0xFFFF, b, e, 0x88);   // column 4 + c:  lanes L1
    r[12 + c] = _mm512_maskz_shuffle_i32x4(0xFFFF, b, e, 0xDD);  // column 12 + c: lanes L3
  }
}

// Applies the epilogue to 16 lanes of int32 `acc` already less nothing; `corr`, `scale`, `bias`
// are vectors (per lane) or broadcasts, chosen by the caller. Stores under `mask` at `dst`.
struct Epi {
  const QTileRows& t;
  __m512 lo, hi, qlo, qhi;
  __m512i zp;
  explicit Epi(const QTileRows& tr) : t(tr) {
    lo = _mm512_set1_ps(tr.lo);
    hi = _mm512_set1_ps(tr.hi);
    const bool u8 = tr.kind == QEpilogueKind::RequantU8;
    const float qmin = u8 ? 0.0f : -128.0f, qmax = u8 ? 255.0f : 127.0f;
    qlo = _mm512_set1_ps(qmin - static_cast<float>(tr.zero_point));
    qhi = _mm512_set1_ps(qmax - static_cast<float>(tr.zero_point));
    zp = _mm512_set1_epi32(tr.zero_point);
  }
  // v: accumulators; corr/scale/bias vectors; res pointer or null; dst byte address.
  // Returns the stored floats (Dequant), else 0.
  inline __m512 apply(__m512i v, __m512i corr, __m512 scale, __m512 bias, bool has_bias, const float* res,
                      void* dst, __mmask16 mask) const {
    v = _mm512_sub_epi32(v, corr);
    switch (t.kind) {
      case QEpilogueKind::Int32:
        _mm512_mask_storeu_epi32(dst, mask, v);
        return _mm512_setzero_ps();
      case QEpilogueKind::Dequant: {
        __m512 y = _mm512_mul_ps(_mm512_cvtepi32_ps(v), scale);
        if (has_bias) y = _mm512_add_ps(y, bias);
        if (res) y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(mask, res));
        if (t.clamp) y = _mm512_min_ps(hi, _mm512_max_ps(lo, y));  // passes NaN through, as Relu and Clip do
        _mm512_mask_storeu_ps(dst, mask, y);
        return y;
      }
      case QEpilogueKind::RequantU8:
      case QEpilogueKind::RequantS8: {
        __m512 y = _mm512_mul_ps(_mm512_cvtepi32_ps(v), scale);
        // max first: a NaN product becomes the low bound (qmath: NaN maps to qmin).
        y = _mm512_min_ps(_mm512_max_ps(y, qlo), qhi);
        const __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(y), zp);  // round half to even
        _mm_mask_storeu_epi8(dst, mask, _mm512_cvtepi32_epi8(q));
        return _mm512_setzero_ps();
      }
    }
    return _mm512_setzero_ps();
  }
};

size_t out_bytes(QEpilogueKind k) {
  return k == QEpilogueKind::RequantU8 || k == QEpilogueKind::RequantS8 ? 1 : 4;
}

// The k loop alone, P (<= 16) accumulators in registers; written out once at the end. A short
// tile (np < P positions) repeats its last position instead of reading past the data; tiles
// of 1, 2, 4 or 8 positions keep a batch-1 GEMM from computing 16 copies of its one row.
template <int P>
__attribute__((noinline)) void compute(const QTileRows& t, const uint8_t* base, int64_t np, const int8_t* wb,
                                       __m512i* out) {
  __m512i acc[P];
#pragma GCC unroll 16
  for (int i = 0; i < P; ++i) acc[i] = _mm512_setzero_si512();
  const int64_t step = t.step;
  if (np < P) {
    int64_t row_off[P];
    for (int i = 0; i < P; ++i) row_off[i] = (i < np ? i : np - 1) * step;
    for (int64_t j = 0; j < t.ksteps; ++j) {
      const __m512i wv = _mm512_loadu_si512(wb + j * 64);
      const uint8_t* a = base + t.k_off[j];
#pragma GCC unroll 16
      for (int i = 0; i < P; ++i) acc[i] = _mm512_dpbusd_epi32(acc[i], bcast_dword(a + row_off[i]), wv);
    }
  } else {
    for (int64_t j = 0; j < t.ksteps; ++j) {
      const __m512i wv = _mm512_loadu_si512(wb + j * 64);
      const uint8_t* a = base + t.k_off[j];
#pragma GCC unroll 16
      for (int i = 0; i < P; ++i) acc[i] = _mm512_dpbusd_epi32(acc[i], bcast_dword(a + i * step), wv);
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < P; ++i) out[i] = acc[i];
}

void compute_any(const QTileRows& t, const uint8_t* base, int64_t np, const int8_t* wb, __m512i* out) {
  if (np > 8)
    compute<16>(t, base, np, wb, out);
  else if (np > 4)
    compute<8>(t, base, np, wb, out);
  else if (np > 2)
    compute<4>(t, base, np, wb, out);
  else if (np > 1)
    compute<2>(t, base, np, wb, out);
  else
    compute<1>(t, base, np, wb, out);
}

}  // namespace

void qtile_rows_u8s8_avx512vnni(const QTileRows& t) {
  const uint8_t* src = static_cast<const uint8_t*>(t.src);
  const int8_t* w = static_cast<const int8_t*>(t.w);
  const int64_t blocks = (t.m + 15) / 16;
  const Epi epi(t);
  const size_t ob = out_bytes(t.kind);
  char* dst = static_cast<char*>(t.dst);
  const bool dq = t.kind == QEpilogueKind::Dequant;
  for (int64_t p0 = 0; p0 < t.n; p0 += 16) {
    const int64_t np = t.n - p0 < 16 ? t.n - p0 : 16;
    const uint8_t* base = src + p0 * t.step;
    for (int64_t b = 0; b < blocks; ++b) {
      __m512i acc[16];
      const int8_t* wb = w + b * t.ksteps * 64;
      compute_any(t, base, np, wb, acc);
      const int64_t c0 = b * 16;
      const int64_t nc = t.m - c0 < 16 ? t.m - c0 : 16;
      if (t.channel_major) {
        transpose16(acc);  // acc[c] = channel c0 + c over the 16 positions
        const __mmask16 pmask = lane_mask(np);
        for (int64_t c = 0; c < nc; ++c) {
          const int64_t ch = c0 + c;
          const __m512i corr = _mm512_set1_epi32(t.corr ? t.corr[ch] : 0);
          const __m512 scale = _mm512_set1_ps(t.scale ? t.scale[ch] : 1.0f);
          const __m512 bias = _mm512_set1_ps(dq && t.bias ? t.bias[ch] : 0.0f);
          const float* res = dq && t.res ? t.res + ch * t.ld_res + p0 : nullptr;
          epi.apply(acc[c], corr, scale, bias, dq && t.bias, res, dst + (ch * t.ld_dst + p0) * ob, pmask);
        }
      } else {
        const __mmask16 cmask = lane_mask(nc);
        const __m512i corr = t.corr ? _mm512_maskz_loadu_epi32(cmask, t.corr + c0) : _mm512_setzero_si512();
        const __m512 scale = t.scale ? _mm512_maskz_loadu_ps(cmask, t.scale + c0) : _mm512_set1_ps(1.0f);
        const __m512 bias = dq && t.bias ? _mm512_maskz_loadu_ps(cmask, t.bias + c0) : _mm512_setzero_ps();
        for (int64_t i = 0; i < np; ++i) {
          const float* res = dq && t.res ? t.res + (p0 + i) * t.ld_res + c0 : nullptr;
          epi.apply(acc[i], corr, scale, bias, dq && t.bias, res, dst + ((p0 + i) * t.ld_dst + c0) * ob, cmask);
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// c4 tiles (micro_kernels.h, QTileC4): lanes are 16 consecutive positions. A k-step loads them
// once and runs one vpdpbusd per output channel, the channel's 4 weights broadcast from memory
// (a load, no shuffle). On Zen 4 a loop of 16 channels x 16 positions per k-step ran at
// vpdpbusd's peak, one per cycle; in learned_filter's 16 -> 16 layers, with their unaligned
// input rows and the epilogue, about 70% of it. The earlier layout (lanes 4 channels x 4
// positions, a 128-bit broadcast of the inputs feeding four vpdpbusd, then a transpose) ran
// them at about 63%: learned_filter dynamic int8 8.1 -> 7.4 ms. Two halves of 8 channels x 2
// position vectors (fewer loads per vpdpbusd) measured slower, 7.7-7.9 ms.

namespace {

// The running range of stored Dequant values (QTileRows::minmax) as vectors, carried from tile
// to tile of one call and reduced once at its end.
struct RunningRange {
  __m512 mn, mx;
};

// MC channels of 16-channel block `blk` (the block's first MC: channels past m are zero weights,
// computed and not stored) x R vectors of 16 positions from p0. Vectors wholly past n read the
// last one's inputs instead (computed, not stored).
template <int MC, int R>
__attribute__((noinline)) void c4_tile(const QTileC4& t, const Epi& epi, int64_t p0, int64_t blk,
                                       RunningRange* range) {
  __m512i acc[MC][R];
#pragma GCC unroll 16
  for (int c = 0; c < MC; ++c)
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) acc[c][r] = _mm512_setzero_si512();
  const int64_t vectors = std::min<int64_t>(R, (t.n - p0 + 15) / 16);
  int64_t voff[R];
  for (int r = 0; r < R; ++r) voff[r] = 64 * (r < vectors ? r : vectors - 1);
  const uint8_t* base = t.src + p0 * 4;
  const int8_t* wb = t.w + c4_weight_index(t.ksteps, blk * 16, 0, 0);
  for (int64_t j = 0; j < t.ksteps; ++j) {
    const uint8_t* a = base + t.k_off[j];
    __m512i x[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) x[r] = _mm512_loadu_si512(a + voff[r]);
    const int8_t* w = wb + j * 64;
#pragma GCC unroll 16
    for (int c = 0; c < MC; ++c) {
      int32_t w4;
      std::memcpy(&w4, w + c * 4, 4);
      const __m512i wc = _mm512_set1_epi32(w4);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) acc[c][r] = _mm512_dpbusd_epi32(acc[c][r], x[r], wc);
    }
  }
  const QTileRows& e = t.epi;
  const bool dq = e.kind == QEpilogueKind::Dequant;
  const size_t ob = out_bytes(e.kind);
  char* dst = static_cast<char*>(e.dst);
  // range: the stored values' range in registers, the running value second in min / max so
  // that NaN lanes leave it unchanged.
  const bool track = range != nullptr;
  __m512 mn = track ? range->mn : _mm512_setzero_ps(), mx = track ? range->mx : _mm512_setzero_ps();
  // Unrolled (constant indices): a tile indexed by a rolled loop would live in memory.
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    if (r >= vectors) break;
    const int64_t p = p0 + 16 * r;
    const __mmask16 pmask = lane_mask(t.n - p);
#pragma GCC unroll 16
    for (int c = 0; c < MC; ++c) {
      const int64_t ch = blk * 16 + c;
      if (ch >= t.m) break;
      const __m512i corr = _mm512_set1_epi32(e.corr ? e.corr[ch] : 0);
      const __m512 scale = _mm512_set1_ps(e.scale ? e.scale[ch] : 1.0f);
      const __m512 bias = _mm512_set1_ps(dq && e.bias ? e.bias[ch] : 0.0f);
      const float* res = dq && e.res ? e.res + ch * e.ld_res + p : nullptr;
      const __m512 y = epi.apply(acc[c][r], corr, scale, bias, dq && e.bias, res, dst + (ch * e.ld_dst + p) * ob, pmask);
      if (track) {
        mn = _mm512_mask_min_ps(mn, pmask, y, mn);
        mx = _mm512_mask_max_ps(mx, pmask, y, mx);
      }
    }
  }
  if (track) {
    range->mn = mn;
    range->mx = mx;
  }
}

template <int MC, int R>
void c4_block(const QTileC4& t, const Epi& epi, int64_t blk, RunningRange* range) {
  for (int64_t p0 = 0; p0 < t.n; p0 += 16 * R) c4_tile<MC, R>(t, epi, p0, blk, range);
}

}  // namespace

void qtile_c4_u8s8_avx512vnni(const QTileC4& t) {
  const Epi epi(t.epi);
  const bool track = t.epi.kind == QEpilogueKind::Dequant && t.epi.minmax;
  RunningRange running{_mm512_set1_ps(track ? t.epi.minmax[0] : 0.0f), _mm512_set1_ps(track ? t.epi.minmax[1] : 0.0f)};
  RunningRange* range = track ? &running : nullptr;
  // 16 accumulators at most (with the inputs and a broadcast, within the 32 registers): fewer
  // channels take more position vectors.
  for (int64_t blk = 0; blk * 16 < t.m; ++blk) {
    const int64_t channels = std::min<int64_t>(16, t.m - blk * 16);
    if (channels > 8)
      c4_block<16, 1>(t, epi, blk, range);
    else if (channels > 4)
      c4_block<8, 2>(t, epi, blk, range);
    else if (channels > 1)
      c4_block<4, 4>(t, epi, blk, range);
    else
      c4_block<1, 8>(t, epi, blk, range);
  }
  if (track) {
    t.epi.minmax[0] = _mm512_reduce_min_ps(running.mn);
    t.epi.minmax[1] = _mm512_reduce_max_ps(running.mx);
  }
}

}  // namespace tinyq::kernels
