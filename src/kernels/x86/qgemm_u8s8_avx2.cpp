// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// u8 x s8 -> s32 tiles with AVX2, for CPUs without VNNI (see kernels/fast/micro_kernels.h,
// QTileRows). Compiled with -mavx2 -mfma (kernels_x86.cmake).
//
// Why not vpmaddubsw: it multiplies u8 by s8 and adds adjacent pairs into int16 *with
// saturation*; 255 * 127 + 255 * 127 = 64770 does not fit, so full-range inputs give wrong sums
// (the reason ONNX Runtime offers reduce_range). Here both operands are widened to int16 first
// (the driver stores activations zero-extended, weights are packed as int16) and vpmaddwd
// adds the pair products into int32, which is exact. A tile is 8 positions x 8 channels, one
// ymm accumulator per position (lanes = channels); the epilogue transposes 8 x 8 in registers.

#include <immintrin.h>

#include <cstring>

#include "kernels/fast/micro_kernels.h"

namespace tinyq::kernels {

namespace {

inline __m256i bcast_dword(const int16_t* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof v);
  return _mm256_set1_epi32(v);
}

inline __m256i lane_mask(int64_t lanes) {
  const int n = lanes >= 8 ? 8 : static_cast<int>(lanes < 0 ? 0 : lanes);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

inline void transpose8(__m256i r[8]) {
  __m256i t[8], u[8];
  for (int g = 0; g < 2; ++g) {
    const int a = 4 * g;
    t[a + 0] = _mm256_unpacklo_epi32(r[a + 0], r[a + 1]);
    t[a + 1] = _mm256_unpackhi_epi32(r[a + 0], r[a + 1]);
    t[a + 2] = _mm256_unpacklo_epi32(r[a + 2], r[a + 3]);
    t[a + 3] = _mm256_unpackhi_epi32(r[a + 2], r[a + 3]);
    // u[a + c] holds, in 128-bit lane L, column 4L + c of rows a..a+3.
    u[a + 0] = _mm256_unpacklo_epi64(t[a + 0], t[a + 2]);
    u[a + 1] = _mm256_unpackhi_epi64(t[a + 0], t[a + 2]);
    u[a + 2] = _mm256_unpacklo_epi64(t[a + 1], t[a + 3]);
    u[a + 3] = _mm256_unpackhi_epi64(t[a + 1], t[a + 3]);
  }
  for (int c = 0; c < 4; ++c) {
    r[c] = _mm256_permute2x128_si256(u[c], u[4 + c], 0x20);      // lanes L0: column c
    r[4 + c] = _mm256_permute2x128_si256(u[c], u[4 + c], 0x31);  // lanes L1: column 4 + c
  }
}

// Stores the low `n` (<= 8) bytes of the 8 int32 lanes of v, each narrowed (values in range).
inline void store_bytes(void* dst, __m256i v, int64_t n) {
  const __m256i packed16 = _mm256_packs_epi32(v, v);  // per 128-bit lane: 4 int16, duplicated
  const __m128i lo = _mm256_castsi256_si128(packed16), hi = _mm256_extracti128_si256(packed16, 1);
  const __m128i words = _mm_unpacklo_epi64(lo, hi);  // 8 int16 in order
  alignas(16) int16_t w16[8];
  _mm_store_si128(reinterpret_cast<__m128i*>(w16), words);
  uint8_t* d = static_cast<uint8_t*>(dst);
  for (int64_t i = 0; i < n; ++i) d[i] = static_cast<uint8_t>(w16[i]);
}

struct Epi {
  const QTileRows& t;
  __m256 lo, hi, qlo, qhi;
  __m256i zp;
  explicit Epi(const QTileRows& tr) : t(tr) {
    lo = _mm256_set1_ps(tr.lo);
    hi = _mm256_set1_ps(tr.hi);
    const bool u8 = tr.kind == QEpilogueKind::RequantU8;
    const float qmin = u8 ? 0.0f : -128.0f, qmax = u8 ? 255.0f : 127.0f;
    qlo = _mm256_set1_ps(qmin - static_cast<float>(tr.zero_point));
    qhi = _mm256_set1_ps(qmax - static_cast<float>(tr.zero_point));
    zp = _mm256_set1_epi32(tr.zero_point);
  }
  inline void apply(__m256i v, __m256i corr, __m256 scale, __m256 bias, bool has_bias, const float* res,
                    void* dst, int64_t n) const {
    const bool full = n >= 8;
    const __m256i mask = lane_mask(n);
    v = _mm256_sub_epi32(v, corr);
    switch (t.kind) {
      case QEpilogueKind::Int32:
        if (full)
          _mm256_storeu_si256(static_cast<__m256i*>(dst), v);
        else
          _mm256_maskstore_epi32(static_cast<int*>(dst), mask, v);
        return;
      case QEpilogueKind::Dequant: {
        __m256 y = _mm256_mul_ps(_mm256_cvtepi32_ps(v), scale);
        if (has_bias) y = _mm256_add_ps(y, bias);
        if (res) y = _mm256_add_ps(y, full ? _mm256_loadu_ps(res) : _mm256_maskload_ps(res, mask));
        if (t.clamp) y = _mm256_min_ps(hi, _mm256_max_ps(lo, y));  // passes NaN through, as Relu and Clip do
        if (full)
          _mm256_storeu_ps(static_cast<float*>(dst), y);
        else
          _mm256_maskstore_ps(static_cast<float*>(dst), mask, y);
        return;
      }
      case QEpilogueKind::RequantU8:
      case QEpilogueKind::RequantS8: {
        __m256 y = _mm256_mul_ps(_mm256_cvtepi32_ps(v), scale);
        y = _mm256_min_ps(_mm256_max_ps(y, qlo), qhi);  // NaN -> low bound, as qmath
        store_bytes(dst, _mm256_add_epi32(_mm256_cvtps_epi32(y), zp), n < 8 ? n : 8);
        return;
      }
    }
  }
};

size_t out_bytes(QEpilogueKind k) {
  return k == QEpilogueKind::RequantU8 || k == QEpilogueKind::RequantS8 ? 1 : 4;
}

// The k loop alone, P (<= 8) accumulators in registers; written out once at the end. A short
// tile (np < P positions) repeats its last position instead of reading past the data.
template <int P>
__attribute__((noinline)) void compute(const QTileRows& t, const int16_t* base, int64_t np, const int16_t* wb,
                                       __m256i* out) {
  __m256i acc[P];
#pragma GCC unroll 8
  for (int i = 0; i < P; ++i) acc[i] = _mm256_setzero_si256();
  int64_t row_off[P];
  for (int i = 0; i < P; ++i) row_off[i] = (i < np ? i : np - 1) * t.step;
  for (int64_t j = 0; j < t.ksteps; ++j) {
    const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb + j * 16));
    const int16_t* a = base + t.k_off[j];
#pragma GCC unroll 8
    for (int i = 0; i < P; ++i)
      acc[i] = _mm256_add_epi32(acc[i], _mm256_madd_epi16(bcast_dword(a + row_off[i]), wv));
  }
#pragma GCC unroll 8
  for (int i = 0; i < P; ++i) out[i] = acc[i];
}

void compute_any(const QTileRows& t, const int16_t* base, int64_t np, const int16_t* wb, __m256i* out) {
  if (np > 4)
    compute<8>(t, base, np, wb, out);
  else if (np > 2)
    compute<4>(t, base, np, wb, out);
  else if (np > 1)
    compute<2>(t, base, np, wb, out);
  else
    compute<1>(t, base, np, wb, out);
}

}  // namespace

void qtile_rows_u8s8_avx2(const QTileRows& t) {
  const int16_t* src = static_cast<const int16_t*>(t.src);
  const int16_t* w = static_cast<const int16_t*>(t.w);
  const int64_t blocks = (t.m + 7) / 8;
  const Epi epi(t);
  const size_t ob = out_bytes(t.kind);
  char* dst = static_cast<char*>(t.dst);
  const bool dq = t.kind == QEpilogueKind::Dequant;
  for (int64_t p0 = 0; p0 < t.n; p0 += 8) {
    const int64_t np = t.n - p0 < 8 ? t.n - p0 : 8;
    const int16_t* base = src + p0 * t.step;
    for (int64_t b = 0; b < blocks; ++b) {
      __m256i acc[8];
      const int16_t* wb = w + b * t.ksteps * 16;
      compute_any(t, base, np, wb, acc);
      const int64_t c0 = b * 8;
      const int64_t nc = t.m - c0 < 8 ? t.m - c0 : 8;
      if (t.channel_major) {
        transpose8(acc);
        for (int64_t c = 0; c < nc; ++c) {
          const int64_t ch = c0 + c;
          const __m256i corr = _mm256_set1_epi32(t.corr ? t.corr[ch] : 0);
          const __m256 scale = _mm256_set1_ps(t.scale ? t.scale[ch] : 1.0f);
          const __m256 bias = _mm256_set1_ps(dq && t.bias ? t.bias[ch] : 0.0f);
          const float* res = dq && t.res ? t.res + ch * t.ld_res + p0 : nullptr;
          epi.apply(acc[c], corr, scale, bias, dq && t.bias, res, dst + (ch * t.ld_dst + p0) * ob, np);
        }
      } else {
        const __m256i cmask = lane_mask(nc);
        const __m256i corr = t.corr ? _mm256_maskload_epi32(t.corr + c0, cmask) : _mm256_setzero_si256();
        const __m256 scale = t.scale ? _mm256_maskload_ps(t.scale + c0, cmask) : _mm256_set1_ps(1.0f);
        const __m256 bias = dq && t.bias ? _mm256_maskload_ps(t.bias + c0, cmask) : _mm256_setzero_ps();
        for (int64_t i = 0; i < np; ++i) {
          const float* res = dq && t.res ? t.res + (p0 + i) * t.ld_res + c0 : nullptr;
          epi.apply(acc[i], corr, scale, bias, dq && t.bias, res, dst + ((p0 + i) * t.ld_dst + c0) * ob, nc);
        }
      }
    }
  }
}

}  // namespace tinyq::kernels
