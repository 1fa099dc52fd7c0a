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
// adds the pair products into int32, which is exact.
//
// A register tile is 6 positions x 16 channels (a packed block): two ymm accumulators per
// position (lanes = channels), one activation broadcast feeding both halves' vpmaddwd. The
// 8-channel tile this replaced spent one broadcast per vpmaddwd and ran learned_filter's int8
// convolutions ~25% slower. Tiles fill a chunk of up to 96 positions; the chunk's epilogue
// transposes 8 x 8 (positions x channels) and writes each channel's plane in one run.

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

// Stores the low `n` (<= 8) bytes of the 8 int32 lanes of v, each narrowed (values in range,
// uint8 or int8: the low byte of each lane is the value either way). A whole vector is one
// 8-byte store; only a row's tail goes byte by byte.
inline void store_bytes(void* dst, __m256i v, int64_t n) {
  const __m128i words = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  const __m128i low_bytes = _mm_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, -1, -1, -1, -1, -1, -1, -1, -1);
  const __m128i bytes = _mm_shuffle_epi8(words, low_bytes);
  if (n >= 8) {
    _mm_storel_epi64(static_cast<__m128i*>(dst), bytes);
    return;
  }
  alignas(16) uint8_t b[16];
  _mm_store_si128(reinterpret_cast<__m128i*>(b), bytes);
  std::memcpy(dst, b, static_cast<size_t>(n));
}

size_t out_bytes(QEpilogueKind k) {
  return k == QEpilogueKind::RequantU8 || k == QEpilogueKind::RequantS8 ? 1 : 4;
}

// The epilogue's parameters, copied out of QTileRows once per call: the stores through dst
// could alias a QTileRows the compiler only sees by reference, so it would reload every field
// after every store.
struct Epi {
  const int32_t* corr;
  const float* scale;
  const float* bias;  // null unless Dequant with a bias
  const float* res;   // null unless Dequant with a residual
  int64_t ld_res;
  bool clamp;
  char* dst;
  int64_t ld_dst;
  size_t ob;
  __m256 lo, hi, qlo, qhi;
  __m256i zp;
  explicit Epi(const QTileRows& tr) {
    const bool dq = tr.kind == QEpilogueKind::Dequant;
    corr = tr.corr;
    scale = tr.scale;
    bias = dq ? tr.bias : nullptr;
    res = dq ? tr.res : nullptr;
    ld_res = tr.ld_res;
    clamp = tr.clamp;
    dst = static_cast<char*>(tr.dst);
    ld_dst = tr.ld_dst;
    ob = out_bytes(tr.kind);
    lo = _mm256_set1_ps(tr.lo);
    hi = _mm256_set1_ps(tr.hi);
    const bool u8 = tr.kind == QEpilogueKind::RequantU8;
    const float qmin = u8 ? 0.0f : -128.0f, qmax = u8 ? 255.0f : 127.0f;
    qlo = _mm256_set1_ps(qmin - static_cast<float>(tr.zero_point));
    qhi = _mm256_set1_ps(qmax - static_cast<float>(tr.zero_point));
    zp = _mm256_set1_epi32(tr.zero_point);
  }
};

// One vector of the epilogue: 8 lanes (n < 8 valid: masked) of accumulators v, finished per
// micro_kernels.h and stored at dst; res (or null) holds the lanes' residuals.
template <QEpilogueKind K>
inline void apply(const Epi& e, __m256i v, __m256i corr, __m256 scale, __m256 bias, const float* res, void* dst,
                  int64_t n) {
  const bool full = n >= 8;
  v = _mm256_sub_epi32(v, corr);
  if (K == QEpilogueKind::Int32) {
    if (full)
      _mm256_storeu_si256(static_cast<__m256i*>(dst), v);
    else
      _mm256_maskstore_epi32(static_cast<int*>(dst), lane_mask(n), v);
  } else if (K == QEpilogueKind::Dequant) {
    __m256 y = _mm256_mul_ps(_mm256_cvtepi32_ps(v), scale);
    if (e.bias) y = _mm256_add_ps(y, bias);
    if (res) y = _mm256_add_ps(y, full ? _mm256_loadu_ps(res) : _mm256_maskload_ps(res, lane_mask(n)));
    if (e.clamp) y = _mm256_min_ps(e.hi, _mm256_max_ps(e.lo, y));  // passes NaN through, as Relu and Clip do
    if (full)
      _mm256_storeu_ps(static_cast<float*>(dst), y);
    else
      _mm256_maskstore_ps(static_cast<float*>(dst), lane_mask(n), y);
  } else {
    __m256 y = _mm256_mul_ps(_mm256_cvtepi32_ps(v), scale);
    y = _mm256_min_ps(_mm256_max_ps(y, e.qlo), e.qhi);  // NaN -> low bound, as qmath
    store_bytes(dst, _mm256_add_epi32(_mm256_cvtps_epi32(y), e.zp), n < 8 ? n : 8);
  }
}

// Channels per packed block (two ymm of int32 lanes), positions per register tile (7 would
// spill: measured 20% slower), positions per chunk (whole tiles and whole 8-position groups).
constexpr int64_t kAvx2Nb = 16;
constexpr int kTileP = 6;
constexpr int64_t kChunk = 16 * kTileP;

// The k loop alone for P positions x (Two ? 16 : 8) channels, accumulators in registers,
// written out once at the end as out[2 * i + half]. Per k-step: one or two weight vectors and
// one activation broadcast per position, which feeds both halves' vpmaddwd (a 16-channel block
// halves the broadcasts per multiply-add of an 8-channel one). P <= 6 with Two: 12
// accumulators + 2 weights + 1 broadcast fit the 16 ymm registers. S is the position step when
// known at compile time (the activations then sit at fixed displacements from one pointer, no
// per-position address arithmetic in the loop); 0 reads it from `step`.
template <int P, int S, bool Two>
__attribute__((noinline)) void compute(const int16_t* base, int64_t step, const int64_t* k_off, int64_t ksteps,
                                       const int16_t* wb, __m256i* out) {
  __m256i acc0[P], acc1[P];
#pragma GCC unroll 8
  for (int i = 0; i < P; ++i) acc0[i] = acc1[i] = _mm256_setzero_si256();
  const int64_t st = S ? S : step;
  // Two k-steps per iteration: the loop's own instructions are ~10% of the body otherwise
  // (measured ~2% faster on learned_filter).
#pragma GCC unroll 2
  for (int64_t j = 0; j < ksteps; ++j, wb += 2 * kAvx2Nb) {
    const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb));
    const __m256i w1 = Two ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb + 16)) : w0;
    const int16_t* a = base + k_off[j];
#pragma GCC unroll 8
    for (int i = 0; i < P; ++i) {
      const __m256i b = bcast_dword(a + i * st);
      acc0[i] = _mm256_add_epi32(acc0[i], _mm256_madd_epi16(b, w0));
      if (Two) acc1[i] = _mm256_add_epi32(acc1[i], _mm256_madd_epi16(b, w1));
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < P; ++i) {
    out[2 * i] = acc0[i];
    if (Two) out[2 * i + 1] = acc1[i];
  }
}

using ComputeFn = void (*)(const int16_t*, int64_t, const int64_t*, int64_t, const int16_t*, __m256i*);

// The tile for np positions: whole tiles, or one short tile (np < kTileP) at a chunk's end.
template <int S, bool Two>
ComputeFn compute_for(int64_t np) {
  static_assert(kTileP == 6, "the cases below cover 1 .. kTileP - 1");
  switch (np) {
    case 1: return compute<1, S, Two>;
    case 2: return compute<2, S, Two>;
    case 3: return compute<3, S, Two>;
    case 4: return compute<4, S, Two>;
    case 5: return compute<5, S, Two>;
    default: return compute<kTileP, S, Two>;
  }
}

// The position steps of common input-channel counts (8, 16, 32, padded to pairs) get loops
// with constant displacements; others the general loop.
template <bool Two>
ComputeFn compute_for(int64_t step, int64_t np) {
  switch (step) {
    case 8: return compute_for<8, Two>(np);
    case 16: return compute_for<16, Two>(np);
    case 32: return compute_for<32, Two>(np);
    default: return compute_for<0, Two>(np);
  }
}

// The epilogue of one half of a block (channels ch0 .. ch0 + nch - 1, nch <= 8) for positions
// p0 .. p0 + np - 1, whose accumulators are acc[2 * i + h], into channel-major planes: 8 x 8
// transposes turn position vectors (lanes = channels) into channel vectors (lanes = positions).
template <QEpilogueKind K>
void finish_channel_major(const Epi& e, const __m256i* acc, int h, int64_t np, int64_t p0, int64_t ch0,
                          int64_t nch) {
  // All groups transposed first, then one channel at a time: each plane is written (and its
  // residual read) in one sequential run of up to kChunk positions instead of 8 planes
  // interleaved 32 bytes at a time (learned_filter int8 measured ~4% faster).
  alignas(32) __m256i tr[kChunk / 8][8];
  const int64_t groups = (np + 7) / 8;
  for (int64_t g = 0; g < groups; ++g) {
    const int64_t ng = np - 8 * g < 8 ? np - 8 * g : 8;
    __m256i r[8];
    for (int64_t i = 0; i < 8; ++i) r[i] = acc[2 * (8 * g + (i < ng ? i : ng - 1)) + h];
    transpose8(r);  // r[c]: channel ch0 + c, lanes = positions p0 + 8g ..
    for (int c = 0; c < 8; ++c) tr[g][c] = r[c];
  }
  const int64_t ob = static_cast<int64_t>(e.ob);
  for (int64_t c = 0; c < nch; ++c) {
    const int64_t ch = ch0 + c;
    const __m256i corr = _mm256_set1_epi32(e.corr ? e.corr[ch] : 0);
    const __m256 scale = _mm256_set1_ps(e.scale ? e.scale[ch] : 1.0f);
    const __m256 bias = _mm256_set1_ps(e.bias ? e.bias[ch] : 0.0f);
    const float* res = e.res ? e.res + ch * e.ld_res + p0 : nullptr;
    char* d = e.dst + (ch * e.ld_dst + p0) * ob;
    // The same plane's lines for the next chunk (past a row's end: the next call's): runs of a
    // few lines in 16+ planes are too short for the hardware prefetchers, and the residual (an
    // older activation) and the output buffer are rarely still in L2.
    for (int64_t at = 0; at < np * ob; at += 64) _mm_prefetch(d + kChunk * ob + at, _MM_HINT_T0);
    if (res)
      for (int64_t at = 0; at < np; at += 16)
        _mm_prefetch(reinterpret_cast<const char*>(res + kChunk + at), _MM_HINT_T0);
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t ng = np - 8 * g < 8 ? np - 8 * g : 8;
      apply<K>(e, tr[g][c], corr, scale, bias, res ? res + 8 * g : nullptr, d + 8 * g * ob, ng);
    }
  }
}

// The same into position-major rows (a GEMM's C): each accumulator is one row's 8 channels.
template <QEpilogueKind K>
void finish_position_major(const Epi& e, const __m256i* acc, int h, int64_t np, int64_t p0, int64_t ch0,
                           int64_t nch) {
  const __m256i cmask = lane_mask(nch);
  const __m256i corr = e.corr ? _mm256_maskload_epi32(e.corr + ch0, cmask) : _mm256_setzero_si256();
  const __m256 scale = e.scale ? _mm256_maskload_ps(e.scale + ch0, cmask) : _mm256_set1_ps(1.0f);
  const __m256 bias = e.bias ? _mm256_maskload_ps(e.bias + ch0, cmask) : _mm256_setzero_ps();
  for (int64_t i = 0; i < np; ++i) {
    const int64_t p = p0 + i;
    const float* res = e.res ? e.res + p * e.ld_res + ch0 : nullptr;
    char* d = e.dst + (p * e.ld_dst + ch0) * static_cast<int64_t>(e.ob);
    apply<K>(e, acc[2 * i + h], corr, scale, bias, res, d, nch);
  }
}

template <QEpilogueKind K>
void finish(const Epi& e, bool channel_major, const __m256i* acc, int h, int64_t np, int64_t p0, int64_t ch0,
            int64_t nch) {
  if (channel_major)
    finish_channel_major<K>(e, acc, h, np, p0, ch0, nch);
  else
    finish_position_major<K>(e, acc, h, np, p0, ch0, nch);
}

}  // namespace

void qtile_rows_u8s8_avx2(const QTileRows& t) {
  static_assert(kQLayoutAvx2.nb == kAvx2Nb && kQLayoutAvx2.kg == 2, "packed layout the kernel reads");
  const int16_t* src = static_cast<const int16_t*>(t.src);
  const int16_t* w = static_cast<const int16_t*>(t.w);
  const int64_t blocks = (t.m + kAvx2Nb - 1) / kAvx2Nb;
  const Epi epi(t);
  const int64_t step = t.step, ksteps = t.ksteps, m = t.m, n = t.n;
  const int64_t* k_off = t.k_off;
  const QEpilogueKind kind = t.kind;
  const bool channel_major = t.channel_major;
  // Positions go in chunks of kChunk = whole tiles of kTileP and whole 8-position groups of the
  // channel-major epilogue's 8 x 8 transposes, long enough that each channel's plane is
  // written a few cache lines at a time.
  alignas(32) __m256i acc[2 * kChunk];
  for (int64_t p0 = 0; p0 < n; p0 += kChunk) {
    const int64_t npc = n - p0 < kChunk ? n - p0 : kChunk;
    const int16_t* base = src + p0 * step;
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t c0 = b * kAvx2Nb;
      const int64_t nc = m - c0 < kAvx2Nb ? m - c0 : kAvx2Nb;
      const bool two = nc > 8;  // a last block of <= 8 channels computes one half only
      const int16_t* wb = w + b * ksteps * 2 * kAvx2Nb;
      for (int64_t q0 = 0; q0 < npc; q0 += kTileP) {
        const int64_t np = npc - q0 < kTileP ? npc - q0 : kTileP;
        const ComputeFn fn = two ? compute_for<true>(step, np) : compute_for<false>(step, np);
        fn(base + q0 * step, step, k_off, ksteps, wb, acc + 2 * q0);
      }
      for (int h = 0; h < (two ? 2 : 1); ++h) {
        const int64_t ch0 = c0 + 8 * h, nch = nc - 8 * h < 8 ? nc - 8 * h : 8;
        switch (kind) {
          case QEpilogueKind::Int32:
            finish<QEpilogueKind::Int32>(epi, channel_major, acc, h, npc, p0, ch0, nch);
            break;
          case QEpilogueKind::Dequant:
            finish<QEpilogueKind::Dequant>(epi, channel_major, acc, h, npc, p0, ch0, nch);
            break;
          case QEpilogueKind::RequantU8:
          case QEpilogueKind::RequantS8:  // one instantiation: Epi holds the bounds of either
            finish<QEpilogueKind::RequantU8>(epi, channel_major, acc, h, npc, p0, ch0, nch);
            break;
        }
      }
    }
  }
}

}  // namespace tinyq::kernels
