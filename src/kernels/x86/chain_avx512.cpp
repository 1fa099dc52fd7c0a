// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// The fp32 chain micro-kernels (kernels/fast/chain_kernels.h) for AVX-512 (the u8 x s8 one is
// in chain_avx512vnni.cpp). Compiled with -mavx512f -mavx512bw -mavx512vl (kernels_x86.cmake).
//
// Dense kernels keep a tile of R positions x V 16-channel vectors of sums in registers: per
// k-step, V weight vectors are loaded once and each position's input is broadcast once, so a
// k-step costs R broadcasts + V loads for R * V multiply-adds (vfmadd231ps, or vpdpbusd for
// 4 unsigned x signed bytes per lane, exact in int32, in chain_avx512vnni.cpp). Depthwise kernels keep the taps'
// weights of a 16-channel block in registers and walk the row four positions at a time.

#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/fast/micro_kernels.h"
#include "kernels/x86/chain_avx512_common.h"

namespace tinyq::kernels {

// ---------------------------------------------------------------------------------------------
// fp32 dense: chain512's dense tiles for this kernel (declared in chain_avx512_common.h)

namespace chain512 {
namespace {

// A full tile (R positions, R a multiple of 3) straight into the epilogue. Positions are
// src_step apart: each group of three is read through one pointer as [q], [q + s], [q + 2s],
// so a k-step costs one pointer add per group, not one offset per position.
template <int R, int V, EpiMode M>
__attribute__((noinline)) void dense_full(const ChainDense& d, const float* base, const float* wb, Epi<M>& epi_io,
                                          char* dst, int64_t c0, size_t ob) {
  static_assert(R % 3 == 0, "positions come in threes");
  __m512 acc[R][V];
  unroll<V>([&](auto v) {
    const __m512 s0 = epi_io.start_f(c0 + 16 * v);  // -corr_f rides in the sums
    unroll<R>([&](auto r) { acc[r][v] = s0; });
  });
  const int64_t s = d.src_step, wstride = d.k * 16;
  const float* rows[R / 3];
#pragma GCC unroll 8
  for (int g = 0; g < R / 3; ++g) rows[g] = base + 3 * g * s;
  for (int64_t j = 0; j < d.k; ++j) {
    __m512 wv[V];
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) wv[v] = _mm512_loadu_ps(wb + v * wstride + j * 16);
    const int64_t off = d.k_off[j];
#pragma GCC unroll 8
    for (int g = 0; g < R / 3; ++g) {
      const float* q = rows[g] + off;
      const __m512 x0 = _mm512_set1_ps(q[0]), x1 = _mm512_set1_ps(q[s]), x2 = _mm512_set1_ps(q[2 * s]);
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) {
        acc[3 * g][v] = _mm512_fmadd_ps(x0, wv[v], acc[3 * g][v]);
        acc[3 * g + 1][v] = _mm512_fmadd_ps(x1, wv[v], acc[3 * g + 1][v]);
        acc[3 * g + 2][v] = _mm512_fmadd_ps(x2, wv[v], acc[3 * g + 2][v]);
      }
    }
  }
  // The epilogue's constants only now, after the sums (they would crowd the tile out of
  // registers during the k loop).
  EpiLocal<M> local(epi_io);
  Epi<M>& epi = local.e;
  const int64_t step = d.dst_step * static_cast<int64_t>(ob);
  unroll<V>([&](auto v) {  // one channel block's values at a time, over the tile's positions
    const typename Epi<M>::Block blk = epi.block(c0 + 16 * v);
    char* out = dst + 16 * v * ob;
    unroll<R>([&](auto r) { epi.apply_block(blk, acc[r][v], out + r * step); });
  });
}

// A short tile (np < R positions): the last position repeats (computed, not stored).
template <int R, int V, EpiMode M>
__attribute__((noinline)) void dense_tail(const ChainDense& d, const float* base, int64_t np, const float* wb,
                                          Epi<M>& epi_io, char* dst, int64_t c0, size_t ob) {
  __m512 acc[R][V];
  for (int v = 0; v < V; ++v) {
    const __m512 s0 = epi_io.start_f(c0 + 16 * v);
    for (int r = 0; r < R; ++r) acc[r][v] = s0;
  }
  int64_t off[R];
  tile_offsets<R>(np, d.src_step, off);
  const int64_t wstride = d.k * 16;
  for (int64_t j = 0; j < d.k; ++j) {
    __m512 wv[V];
    for (int v = 0; v < V; ++v) wv[v] = _mm512_loadu_ps(wb + v * wstride + j * 16);
    const float* a = base + d.k_off[j];
    for (int r = 0; r < R; ++r) {
      const __m512 x = _mm512_set1_ps(a[off[r]]);
      for (int v = 0; v < V; ++v) acc[r][v] = _mm512_fmadd_ps(x, wv[v], acc[r][v]);
    }
  }
  alignas(64) __m512 sums[R * V];  // as in the full tile
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) _mm512_store_ps(reinterpret_cast<float*>(sums + (r * V + v)), acc[r][v]);
  EpiLocal<M> local(epi_io);
  Epi<M>& epi = local.e;
  for (int v = 0; v < V; ++v) {
    const typename Epi<M>::Block blk = epi.block(c0 + 16 * v);
    for (int64_t r = 0; r < np; ++r) epi.apply_block(blk, sums[r * V + v], dst + (r * d.dst_step + 16 * v) * ob);
  }
}

}  // namespace
}  // namespace chain512

namespace {

using chain512::Epi;
using chain512::EpiLocal;
using chain512::EpiMode;
using chain512::store_bytes;
using chain512::tile_offsets;
using chain512::to_float;
using chain512::unroll;

// ---------------------------------------------------------------------------------------------
// fp32 depthwise

// 16 channels of input, kept in a register. The empty asm keeps the value in a register: without it GCC folds every use
// back into a memory operand of its multiply-add, re-loading what was meant to be shared.
inline __m512 load_x(const float* p) {
  __m512 v = _mm512_loadu_ps(p);
  asm("" : "+v"(v));
  return v;
}

// Any kernel: the taps from tap_off, weights from memory, eight positions at a time.
template <typename T, EpiMode M>
void dw_block_any(const ChainDw& d, int64_t c0, Epi<M>& epi_io) {
  EpiLocal<M> local(epi_io);
  Epi<M>& epi = local.e;
  const typename Epi<M>::Block blk = epi.block(c0);
  const size_t ob = store_bytes(d.epi.store);
  const T* src = static_cast<const T*>(d.src) + c0;
  char* dst = static_cast<char*>(d.dst) + c0 * ob;
  const int64_t s = d.src_step;
  int64_t p = 0;
  for (; p + 8 <= d.n; p += 8) {
    __m512 a[8];
    for (int r = 0; r < 8; ++r) a[r] = epi.start_f(c0);
    for (int t = 0; t < d.taps; ++t) {
      const __m512 w = _mm512_loadu_ps(d.w + t * d.m + c0);
      const T* x = src + p * s + d.tap_off[t];
#pragma GCC unroll 8
      for (int r = 0; r < 8; ++r) a[r] = _mm512_fmadd_ps(w, load_x(x + r * s), a[r]);
    }
    for (int r = 0; r < 8; ++r) epi.apply_block(blk, a[r], dst + (p + r) * d.dst_step * ob);
  }
  for (; p < d.n; ++p) {
    __m512 a0 = epi.start_f(c0);
    for (int t = 0; t < d.taps; ++t)
      a0 = _mm512_fmadd_ps(_mm512_loadu_ps(d.w + t * d.m + c0), load_x(src + p * s + d.tap_off[t]), a0);
    epi.apply_block(blk, a0, dst + p * d.dst_step * ob);
  }
}

// 3x3, undilated, stride S along the row: the nine weights stay in registers, and R positions
// share their input vectors, streamed along the row (stride 1: each vector loaded once serves
// three positions; stride 2: two loads per position instead of three). Loads, not
// multiply-adds, are what limit a depthwise convolution.
template <typename T, int S, int R, EpiMode M>
__attribute__((noinline)) void dw3x3_block(const ChainDw& d, int64_t c0, Epi<M>& epi_io) {
  EpiLocal<M> local(epi_io);
  Epi<M>& epi = local.e;
  const typename Epi<M>::Block blk = epi.block(c0);
  const int64_t m = d.m;
  __m512 w[9];
#pragma GCC unroll 9
  for (int t = 0; t < 9; ++t) w[t] = _mm512_loadu_ps(d.w + t * m + c0);
  const T* src = static_cast<const T*>(d.src);
  const T* rows[3] = {src + d.tap_off[0] + c0, src + d.tap_off[3] + c0, src + d.tap_off[6] + c0};
  const size_t ob = store_bytes(d.epi.store);
  char* dst = static_cast<char*>(d.dst) + c0 * ob;
  const __m512 s0 = epi.start_f(c0);  // -corr_f rides in the sums
  int64_t p = 0;
  for (; p + R <= d.n; p += R) {
    __m512 acc[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) acc[r] = s0;
#pragma GCC unroll 3
    for (int kh = 0; kh < 3; ++kh) {
      const T* q = rows[kh] + p * S * m;
      const __m512 w0 = w[kh * 3], w1 = w[kh * 3 + 1], w2 = w[kh * 3 + 2];
      __m512 xa = load_x(q);
      q += m;
      if (S == 1) {
        __m512 xb = load_x(q);
        q += m;
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
          const __m512 xc = load_x(q);
          q += m;
          acc[r] = _mm512_fmadd_ps(w0, xa, acc[r]);
          acc[r] = _mm512_fmadd_ps(w1, xb, acc[r]);
          acc[r] = _mm512_fmadd_ps(w2, xc, acc[r]);
          xa = xb;
          xb = xc;
        }
      } else {
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
          const __m512 xb = load_x(q), xc = load_x(q + m);
          q += 2 * m;
          acc[r] = _mm512_fmadd_ps(w0, xa, acc[r]);
          acc[r] = _mm512_fmadd_ps(w1, xb, acc[r]);
          acc[r] = _mm512_fmadd_ps(w2, xc, acc[r]);
          xa = xc;
        }
      }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) epi.apply_block(blk, acc[r], dst + (p + r) * d.dst_step * ob);
  }
  for (; p < d.n; ++p) {
    __m512 acc = s0;
    for (int kh = 0; kh < 3; ++kh) {
      const T* row = rows[kh] + p * S * m;
      for (int kw = 0; kw < 3; ++kw) acc = _mm512_fmadd_ps(w[kh * 3 + kw], load_x(row + kw * m), acc);
    }
    epi.apply_block(blk, acc, dst + p * d.dst_step * ob);
  }
}

// The stride (1 or 2) of a 3x3 undilated depthwise row whose taps sit kw * m apart, or 0.
int dw3x3_stride(const ChainDw& d) {
  if (d.taps != 9) return 0;
  for (int kh = 0; kh < 3; ++kh)
    for (int kw = 1; kw < 3; ++kw)
      if (d.tap_off[kh * 3 + kw] != d.tap_off[kh * 3] + kw * d.m) return 0;
  if (d.src_step == d.m) return 1;
  if (d.src_step == 2 * d.m) return 2;
  return 0;
}

template <typename T, EpiMode M>
void dw_all_in(const ChainDw& d) {
  Epi<M> epi(d.epi);
  const int stride = dw3x3_stride(d);
  for (int64_t c0 = 0; c0 < d.m; c0 += 16) {
    if (stride == 1)
      dw3x3_block<T, 1, 8, M>(d, c0, epi);
    else if (stride == 2)
      dw3x3_block<T, 2, 8, M>(d, c0, epi);
    else
      dw_block_any<T, M>(d, c0, epi);
  }
  epi.finish();
}

template <typename T>
void dw_all(const ChainDw& d) {
  switch (chain512::epi_mode(d.epi)) {
    case EpiMode::F32: dw_all_in<T, EpiMode::F32>(d); break;
    case EpiMode::Dequant: dw_all_in<T, EpiMode::Dequant>(d); break;
    case EpiMode::RequantF32: dw_all_in<T, EpiMode::RequantF32>(d); break;
    case EpiMode::RequantU8: dw_all_in<T, EpiMode::RequantU8>(d); break;
    case EpiMode::RequantS16: dw_all_in<T, EpiMode::RequantS16>(d); break;
  }
}

}  // namespace

void chain_dense_f32_avx512(const ChainDense& d) { chain512::dense_blocks<float, float>(d); }

void chain_dw_f32_avx512(const ChainDw& d) { dw_all<float>(d); }

void chain_quantize_avx512(const float* src, int64_t n, float scale, int32_t zero_point, ChainStore store, void* dst) {
  const __m512 s = _mm512_set1_ps(scale);
  // Clamp to [0 - zp, 255 - zp] before converting (integer bounds: clamping before or after
  // rounding agrees); max first turns NaN into the low bound (qmath: NaN -> qmin).
  const __m512 lo = _mm512_set1_ps(static_cast<float>(-zero_point));
  const __m512 hi = _mm512_set1_ps(static_cast<float>(255 - zero_point));
  const __m512i zp = _mm512_set1_epi32(zero_point);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    // Division, not a reciprocal multiply: QuantizeLinear divides, and so does ONNX Runtime.
    __m512 y = _mm512_div_ps(_mm512_loadu_ps(src + i), s);
    y = _mm512_min_ps(_mm512_max_ps(y, lo), hi);
    const __m512i r = chain512::to_int_round(y);  // round half to even
    switch (store) {
      case ChainStore::F32: _mm512_storeu_ps(static_cast<float*>(dst) + i, to_float(r)); break;
      case ChainStore::U8:
        _mm_storeu_si128(reinterpret_cast<__m128i*>(static_cast<uint8_t*>(dst) + i),
                         _mm512_cvtepi32_epi8(_mm512_add_epi32(r, zp)));
        break;
      case ChainStore::S16:
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(static_cast<int16_t*>(dst) + i),
                            _mm512_cvtepi32_epi16(_mm512_add_epi32(r, zp)));
        break;
    }
  }
  if (i < n)
    chain_quantize_ref(src + i, n - i, scale, zero_point, store,
                       static_cast<char*>(dst) + i * static_cast<int64_t>(store_bytes(store)));
}

// The chain's closing mean (chain_kernels.h, ChainMeanFn): up to 128 channels' double sums in
// 16 registers, so each position's row is read once and no add waits on another channel's.
void chain_mean_avx512(const float* src, int64_t positions, int64_t m, int64_t ms, float scale, float* dst) {
  const __m512 s = _mm512_set1_ps(scale);
  for (int64_t c0 = 0; c0 < m; c0 += 128) {
    const int vecs = static_cast<int>(std::min<int64_t>(8, (m - c0 + 15) / 16));  // 16-channel groups
    __m512d acc[16];
    for (int k = 0; k < 16; ++k) acc[k] = _mm512_setzero_pd();
    for (int64_t p = 0; p < positions; ++p) {
      const float* v = src + p * ms + c0;
#pragma GCC unroll 8
      for (int g = 0; g < 8; ++g) {  // the product in float, as the reference
        if (g >= vecs) break;  // (unrolled: constant indices keep acc in registers)
        const __m512 x = _mm512_mul_ps(_mm512_loadu_ps(v + 16 * g), s);
        acc[2 * g] = _mm512_add_pd(acc[2 * g], _mm512_cvtps_pd(_mm512_castps512_ps256(x)));
        acc[2 * g + 1] = _mm512_add_pd(acc[2 * g + 1], _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1))));
      }
    }
    const __m512d count = _mm512_set1_pd(static_cast<double>(positions));
    for (int g = 0; g < vecs; ++g) {
      alignas(64) float out[16];
      _mm256_store_ps(out, _mm512_cvtpd_ps(_mm512_div_pd(acc[2 * g], count)));
      _mm256_store_ps(out + 8, _mm512_cvtpd_ps(_mm512_div_pd(acc[2 * g + 1], count)));
      for (int64_t j = 0; j < 16 && c0 + 16 * g + j < m; ++j) dst[c0 + 16 * g + j] = out[j];
    }
  }
}

// The QDQ residual add (micro_kernels.h, QAddArgs) 16 values at a time. It sits here, with
// the other AVX-512 element-wise code of this file, for the AVX-512 flags.
void qadd_avx512(const QAddArgs& t) {
  const __m512 sa = _mm512_set1_ps(t.sa), sb = _mm512_set1_ps(t.sb), sy = _mm512_set1_ps(t.sy);
  const __m512i za = _mm512_set1_epi32(t.za), zb = _mm512_set1_epi32(t.zb), zy = _mm512_set1_epi32(t.zy);
  const int32_t qmin = t.y_u8 ? 0 : -128, qmax = t.y_u8 ? 255 : 127;
  const __m512 lo = _mm512_set1_ps(static_cast<float>(qmin - t.zy));
  const __m512 hi = _mm512_set1_ps(static_cast<float>(qmax - t.zy));
  const uint8_t* a = static_cast<const uint8_t*>(t.a);
  const uint8_t* b = static_cast<const uint8_t*>(t.b);
  uint8_t* y = static_cast<uint8_t*>(t.y);
  auto widen = [](const uint8_t* p, bool u8) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return u8 ? _mm512_cvtepu8_epi32(v) : _mm512_cvtepi8_epi32(v);
  };
  int64_t i = 0;
  for (; i + 16 <= t.n; i += 16) {
    // As the float graph: each operand dequantised (exact integer difference, one rounding),
    // added, then quantised by division (QuantizeLinear divides).
    const __m512 fa = _mm512_mul_ps(chain512::to_float(_mm512_sub_epi32(widen(a + i, t.a_u8), za)), sa);
    const __m512 fb = _mm512_mul_ps(chain512::to_float(_mm512_sub_epi32(widen(b + i, t.b_u8), zb)), sb);
    __m512 q = _mm512_div_ps(_mm512_add_ps(fa, fb), sy);
    q = _mm512_min_ps(_mm512_max_ps(q, lo), hi);                        // max first: NaN -> the low bound (qmath)
    const __m512i v = _mm512_add_epi32(chain512::to_int_round(q), zy);  // in [qmin, qmax]
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), _mm512_cvtepi32_epi8(v));
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

}  // namespace tinyq::kernels
