// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// The chain micro-kernels (kernels/fast/chain_kernels.h) for AVX2 + FMA, the fallback on CPUs
// without AVX-512 and the integer path on CPUs without VNNI. Compiled with -mavx2 -mfma
// (kernels_x86.cmake). A 16-channel block is two 8-lane halves.
//
// The integer dense kernel multiplies int16 activations (zero-extended kernel values, S16
// buffers) by int16 weights with vpmaddwd, which adds each pair of products into int32 exactly
// (vpmaddubsw would saturate the pair sum in int16). Depthwise and narrow-input layers of the
// integer chains go through the fp32 kernels, exactly (chain_kernels.h).

#include <immintrin.h>

#include <cmath>
#include <cstring>
#include <type_traits>
#include <utility>

#include "common/qmath.h"
#include "kernels/fast/chain_kernels.h"

namespace tinyq::kernels {

namespace {

// The epilogue's kind and store, fixed at compile time (see chain_avx512_common.h).
enum class EpiMode { F32, Dequant, RequantF32, RequantU8, RequantS16 };

EpiMode epi_mode(const ChainEpilogue& e) {
  if (e.kind == ChainEpi::F32) return EpiMode::F32;
  if (e.kind == ChainEpi::Dequant) return EpiMode::Dequant;
  return e.store == ChainStore::F32  ? EpiMode::RequantF32
         : e.store == ChainStore::U8 ? EpiMode::RequantU8
                                     : EpiMode::RequantS16;
}

// The epilogue of one 8-lane vector, channels c0..c0+7.
template <EpiMode M>
struct Epi {
  float* minmax;
  const float *bias, *scale;
  const int32_t* corr;
  const float* corr_f;
  bool clamp;
  float lo_v, hi_v;
  __m256 qlo, qhi, mn, mx;
  __m256i zp;
  explicit Epi(const ChainEpilogue& ep)
      : minmax(ep.minmax),
        bias(ep.bias),
        scale(ep.scale),
        corr(ep.corr),
        corr_f(ep.corr_f),
        clamp(ep.clamp),
        lo_v(ep.lo),
        hi_v(ep.hi) {
    qlo = _mm256_set1_ps(static_cast<float>(ep.qmin - ep.zero_point));
    qhi = _mm256_set1_ps(static_cast<float>(ep.qmax - ep.zero_point));
    zp = _mm256_set1_epi32(ep.zero_point);
    mn = _mm256_set1_ps(ep.minmax ? ep.minmax[0] : 0.0f);
    mx = _mm256_set1_ps(ep.minmax ? ep.minmax[1] : 0.0f);
  }
  void finish() const {  // the running range back to the caller (once, at the end)
    if (!minmax) return;
    alignas(32) float a[8], b[8];
    _mm256_store_ps(a, mn);
    _mm256_store_ps(b, mx);
    for (int i = 0; i < 8; ++i) {
      minmax[0] = a[i] < minmax[0] ? a[i] : minmax[0];
      minmax[1] = b[i] > minmax[1] ? b[i] : minmax[1];
    }
  }
  // One 8-channel half's per-channel values, copied once per run of vectors into a local the
  // kernels' stores cannot alias (so they stay memory operands, never reloaded from the layer's
  // arrays), and branch-free: no bias adds -0.0 (y + -0.0 is y exactly), no clamp clamps to the
  // infinities (NaN still passes), no corr_f subtracts 0. Sixteen ymm registers leave no room
  // to hold these in registers, as the AVX-512 kernels do.
  struct Block {
    alignas(32) float scale[8], bias[8], lo[8], hi[8], corr_f[8];
    alignas(32) int32_t corr[8];
    bool int_path;  // the float sum through int32 less corr (corr given without corr_f)
  };
  inline void fill_block(Block& b, int64_t c0) const {
    const float inf = __builtin_inff();
    b.int_path = M != EpiMode::F32 && corr && !corr_f;
    _mm256_store_ps(b.scale, M == EpiMode::F32 ? _mm256_set1_ps(1.0f) : _mm256_loadu_ps(scale + c0));
    _mm256_store_ps(b.bias, bias ? _mm256_loadu_ps(bias + c0) : _mm256_set1_ps(-0.0f));
    _mm256_store_ps(b.lo, _mm256_set1_ps(clamp ? lo_v : -inf));
    _mm256_store_ps(b.hi, _mm256_set1_ps(clamp ? hi_v : inf));
    _mm256_store_ps(b.corr_f, M != EpiMode::F32 && corr_f ? _mm256_loadu_ps(corr_f + c0) : _mm256_setzero_ps());
    _mm256_store_si256(reinterpret_cast<__m256i*>(b.corr),
                       b.int_path ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(corr + c0))
                                  : _mm256_setzero_si256());
  }
  // y plus bias, clamped, stored; in the dequantising mode also folded into the running range
  // (running value second: NaNs are skipped).
  inline void bias_clamp_store(const Block& b, __m256 y, void* dst) {
    y = _mm256_add_ps(y, _mm256_load_ps(b.bias));
    y = _mm256_min_ps(_mm256_load_ps(b.hi), _mm256_max_ps(_mm256_load_ps(b.lo), y));
    _mm256_storeu_ps(static_cast<float*>(dst), y);
    if constexpr (M == EpiMode::Dequant) {
      mn = _mm256_min_ps(y, mn);
      mx = _mm256_max_ps(y, mx);
    }
  }
  // A float kernel's sum through the epilogue with block b.
  inline void apply_block(const Block& b, __m256 s, void* dst) {
    if constexpr (M == EpiMode::F32) {
      bias_clamp_store(b, s, dst);
      return;
    }
    if (b.int_path)
      s = _mm256_cvtepi32_ps(
          _mm256_sub_epi32(_mm256_cvttps_epi32(s), _mm256_load_si256(reinterpret_cast<const __m256i*>(b.corr))));
    else
      s = _mm256_sub_ps(s, _mm256_load_ps(b.corr_f));  // exact: an exact integer less an exact correction
    apply_block_exact(b, s, dst);
  }
  // The net integer (corr already off) held exactly in a float, with block b (integer modes).
  inline void apply_block_exact(const Block& b, __m256 v, void* dst) {
    const __m256 y = _mm256_mul_ps(v, _mm256_load_ps(b.scale));
    if constexpr (M == EpiMode::Dequant)
      bias_clamp_store(b, y, dst);
    else
      store_requant(y, dst);
  }
  // The starting value of an integer tile's sums: -corr, so the epilogue need not subtract it.
  inline __m256i start(int64_t c0) const {
    return corr ? _mm256_sub_epi32(_mm256_setzero_si256(),
                                   _mm256_loadu_si256(reinterpret_cast<const __m256i*>(corr + c0)))
                : _mm256_setzero_si256();
  }
  // Requantisation of y = v * scale: saturate, round half to even, add the zero point.
  inline void store_requant(__m256 y, void* dst) {
    y = _mm256_min_ps(_mm256_max_ps(y, qlo), qhi);  // NaN -> the low bound (qmath)
    if constexpr (M == EpiMode::RequantF32) {
      _mm256_storeu_ps(static_cast<float*>(dst), _mm256_round_ps(y, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    } else {
      const __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(y), zp);  // round half to even; in [0, 255]
      const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
      if constexpr (M == EpiMode::RequantS16)
        _mm_storeu_si128(static_cast<__m128i*>(dst), w);
      else
        _mm_storel_epi64(static_cast<__m128i*>(dst), _mm_packus_epi16(w, w));
    }
  }
};

// A register copy of the epilogue state for a hot function (see chain_avx512_common.h).
template <EpiMode M>
struct EpiLocal {
  Epi<M>& io;
  Epi<M> e;
  explicit EpiLocal(Epi<M>& x) : io(x), e(x) {}
  ~EpiLocal() {
    io.mn = e.mn;
    io.mx = e.mx;
  }
  EpiLocal(const EpiLocal&) = delete;
  EpiLocal& operator=(const EpiLocal&) = delete;
};

template <typename F, int... I>
inline void unroll_seq(F&& f, std::integer_sequence<int, I...>) {
  (f(std::integral_constant<int, I>{}), ...);
}
template <int N, typename F>
inline void unroll(F&& f) {
  unroll_seq(f, std::make_integer_sequence<int, N>{});
}

inline size_t store_bytes(ChainStore s) { return s == ChainStore::F32 ? 4 : s == ChainStore::U8 ? 1 : 2; }

template <int R>
inline void tile_offsets(int64_t np, int64_t step, int64_t* off) {
  for (int r = 0; r < R; ++r) off[r] = (r < np ? r : np - 1) * step;
}

// The input of one position for one k-step, broadcast: an fp32 value, or a pair of int16.
inline __m256 bcast(const float* p) { return _mm256_broadcast_ss(p); }
inline __m256i bcast(const int16_t* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof v);
  return _mm256_set1_epi32(v);
}
inline __m256 zero_acc(__m256) { return _mm256_setzero_ps(); }
inline __m256i zero_acc(__m256i) { return _mm256_setzero_si256(); }
// acc + x * w: fp32 multiply-add, or int16 pairs multiplied and added into int32 (exact).
inline __m256 mac(__m256 acc, __m256 x, __m256 w) { return _mm256_fmadd_ps(x, w, acc); }
inline __m256i mac(__m256i acc, __m256i x, __m256i w) { return _mm256_add_epi32(acc, _mm256_madd_epi16(x, w)); }
inline __m256 load_w(const float* p) { return _mm256_loadu_ps(p); }
inline __m256i load_w(const int16_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

// A tile of R positions (R = 6 full, or np < 6 repeating the last) x one 16-channel block in
// two 8-lane halves: 12 sums, 2 weight vectors and a broadcast fill the 16 registers. KG input
// elements per k-step (1 float, 2 int16); weights [k][16][KG].
template <typename A, typename W, typename Acc, int KG, EpiMode M, bool Full>
__attribute__((noinline)) void dense_tile(const ChainDense& d, const A* base, int64_t np, const W* wb, Epi<M>& epi_io,
                                          const typename Epi<M>::Block* blk, char* dst, int64_t c0, size_t ob) {
  constexpr int R = 6;
  constexpr bool kInt = !std::is_same<A, float>::value;
  Acc acc[R][2];
  Acc s0 = zero_acc(Acc{}), s1 = zero_acc(Acc{});
  if constexpr (kInt) {  // integer tiles start at -corr (see Epi::start)
    s0 = epi_io.start(c0);
    s1 = epi_io.start(c0 + 8);
  }
  unroll<R>([&](auto r) {
    acc[r][0] = s0;
    acc[r][1] = s1;
  });
  const int64_t s = d.src_step;
  int64_t off[R];
  if constexpr (Full) {
    unroll<R>([&](auto r) { off[r] = r * s; });
  } else {
    tile_offsets<R>(np, s, off);
  }
  for (int64_t j = 0; j < d.k; ++j) {
    const Acc w0 = load_w(wb + j * 16 * KG), w1 = load_w(wb + j * 16 * KG + 8 * KG);
    const A* a = base + d.k_off[j];
    unroll<R>([&](auto r) {
      const Acc x = bcast(a + (Full ? r * s : off[r]));
      acc[r][0] = mac(acc[r][0], x, w0);
      acc[r][1] = mac(acc[r][1], x, w1);
    });
  }
  EpiLocal<M> local(epi_io);
  Epi<M>& epi = local.e;
  unroll<R>([&](auto r) {
    if (Full || r < np) {
      char* o = dst + r * d.dst_step * ob;
      if constexpr (kInt) {
        epi.apply_block_exact(blk[0], _mm256_cvtepi32_ps(acc[r][0]), o);
        epi.apply_block_exact(blk[1], _mm256_cvtepi32_ps(acc[r][1]), o + 8 * ob);
      } else {
        epi.apply_block(blk[0], acc[r][0], o);
        epi.apply_block(blk[1], acc[r][1], o + 8 * ob);
      }
    }
  });
}

template <typename A, typename W, typename Acc, int KG, EpiMode M>
void dense_rows_in(const ChainDense& d) {
  Epi<M> epi(d.epi);
  const A* src = static_cast<const A*>(d.src);
  const size_t ob = store_bytes(d.epi.store);
  char* dst = static_cast<char*>(d.dst);
  for (int64_t b = 0; b < d.m / 16; ++b) {
    const W* wb = static_cast<const W*>(d.w) + b * d.k * 16 * KG;
    const int64_t c0 = b * 16;
    typename Epi<M>::Block blk[2];
    epi.fill_block(blk[0], c0);
    epi.fill_block(blk[1], c0 + 8);
    int64_t p0 = 0;
    for (; p0 + 6 <= d.n; p0 += 6)
      dense_tile<A, W, Acc, KG, M, true>(d, src + p0 * d.src_step, 6, wb, epi, blk, dst + (p0 * d.dst_step + c0) * ob,
                                         c0, ob);
    if (p0 < d.n)
      dense_tile<A, W, Acc, KG, M, false>(d, src + p0 * d.src_step, d.n - p0, wb, epi, blk,
                                          dst + (p0 * d.dst_step + c0) * ob, c0, ob);
  }
  epi.finish();
}

template <typename A, typename W, typename Acc, int KG>
void dense_rows(const ChainDense& d) {
  switch (epi_mode(d.epi)) {
    case EpiMode::F32:
      if constexpr (!std::is_same<A, float>::value) break;  // integer sums have no F32 mode
      dense_rows_in<A, W, Acc, KG, EpiMode::F32>(d);
      break;
    case EpiMode::Dequant: dense_rows_in<A, W, Acc, KG, EpiMode::Dequant>(d); break;
    case EpiMode::RequantF32: dense_rows_in<A, W, Acc, KG, EpiMode::RequantF32>(d); break;
    case EpiMode::RequantU8: dense_rows_in<A, W, Acc, KG, EpiMode::RequantU8>(d); break;
    case EpiMode::RequantS16: dense_rows_in<A, W, Acc, KG, EpiMode::RequantS16>(d); break;
  }
}

// 8 channels of input, kept in a register (the empty asm stops GCC from folding the value back into memory operands,
// see chain_avx512.cpp).
inline __m256 load_x(const float* p) {
  __m256 v = _mm256_loadu_ps(p);
  asm("" : "+x"(v));
  return v;
}

// Any kernel: taps from tap_off, four positions at a time.
template <typename T, EpiMode M>
void dw_half_any(const ChainDw& d, int64_t c0, Epi<M>& epi_io) {
  EpiLocal<M> local(epi_io);
  Epi<M>& epi = local.e;
  typename Epi<M>::Block blk;
  epi.fill_block(blk, c0);
  const size_t ob = store_bytes(d.epi.store);
  const T* src = static_cast<const T*>(d.src) + c0;
  char* dst = static_cast<char*>(d.dst) + c0 * ob;
  const int64_t st = d.src_step;
  int64_t p = 0;
  for (; p + 4 <= d.n; p += 4) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int t = 0; t < d.taps; ++t) {
      const __m256 w = _mm256_loadu_ps(d.w + t * d.m + c0);
      const T* x = src + p * st + d.tap_off[t];
      a0 = _mm256_fmadd_ps(w, load_x(x), a0);
      a1 = _mm256_fmadd_ps(w, load_x(x + st), a1);
      a2 = _mm256_fmadd_ps(w, load_x(x + 2 * st), a2);
      a3 = _mm256_fmadd_ps(w, load_x(x + 3 * st), a3);
    }
    epi.apply_block(blk, a0, dst + (p + 0) * d.dst_step * ob);
    epi.apply_block(blk, a1, dst + (p + 1) * d.dst_step * ob);
    epi.apply_block(blk, a2, dst + (p + 2) * d.dst_step * ob);
    epi.apply_block(blk, a3, dst + (p + 3) * d.dst_step * ob);
  }
  for (; p < d.n; ++p) {
    __m256 a0 = _mm256_setzero_ps();
    for (int t = 0; t < d.taps; ++t)
      a0 = _mm256_fmadd_ps(_mm256_loadu_ps(d.w + t * d.m + c0), load_x(src + p * st + d.tap_off[t]), a0);
    epi.apply_block(blk, a0, dst + p * d.dst_step * ob);
  }
}

// 3x3 undilated, stride S: weights in registers, input vectors streamed along the row and
// shared by neighbouring positions (see chain_avx512.cpp). 9 weights + 4 sums + 3 inputs
// fill the 16 registers.
template <typename T, int S, EpiMode M>
__attribute__((noinline)) void dw3x3_half(const ChainDw& d, int64_t c0, Epi<M>& epi_io) {
  constexpr int R = 4;
  EpiLocal<M> local(epi_io);
  Epi<M>& epi = local.e;
  typename Epi<M>::Block blk;
  epi.fill_block(blk, c0);
  const int64_t m = d.m;
  const T* src = static_cast<const T*>(d.src);
  const T* rows[3] = {src + d.tap_off[0] + c0, src + d.tap_off[3] + c0, src + d.tap_off[6] + c0};
  const size_t ob = store_bytes(d.epi.store);
  char* dst = static_cast<char*>(d.dst) + c0 * ob;
  __m256 w[9];
  for (int t = 0; t < 9; ++t) w[t] = _mm256_loadu_ps(d.w + t * m + c0);
  int64_t p = 0;
  for (; p + R <= d.n; p += R) {
    __m256 acc[R];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
#pragma GCC unroll 3
    for (int kh = 0; kh < 3; ++kh) {
      const T* q = rows[kh] + p * S * m;
      __m256 xa = load_x(q);
      q += m;
      if (S == 1) {
        __m256 xb = load_x(q);
        q += m;
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
          const __m256 xc = load_x(q);
          q += m;
          acc[r] = _mm256_fmadd_ps(w[kh * 3], xa, acc[r]);
          acc[r] = _mm256_fmadd_ps(w[kh * 3 + 1], xb, acc[r]);
          acc[r] = _mm256_fmadd_ps(w[kh * 3 + 2], xc, acc[r]);
          xa = xb;
          xb = xc;
        }
      } else {
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
          const __m256 xb = load_x(q), xc = load_x(q + m);
          q += 2 * m;
          acc[r] = _mm256_fmadd_ps(w[kh * 3], xa, acc[r]);
          acc[r] = _mm256_fmadd_ps(w[kh * 3 + 1], xb, acc[r]);
          acc[r] = _mm256_fmadd_ps(w[kh * 3 + 2], xc, acc[r]);
          xa = xc;
        }
      }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) epi.apply_block(blk, acc[r], dst + (p + r) * d.dst_step * ob);
  }
  for (; p < d.n; ++p) {
    __m256 acc = _mm256_setzero_ps();
    for (int kh = 0; kh < 3; ++kh)
      for (int kw = 0; kw < 3; ++kw) acc = _mm256_fmadd_ps(w[kh * 3 + kw], load_x(rows[kh] + (p * S + kw) * m), acc);
    epi.apply_block(blk, acc, dst + p * d.dst_step * ob);
  }
}

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
  for (int64_t c0 = 0; c0 < d.m; c0 += 8) {
    if (stride == 1)
      dw3x3_half<T, 1, M>(d, c0, epi);
    else if (stride == 2)
      dw3x3_half<T, 2, M>(d, c0, epi);
    else
      dw_half_any<T, M>(d, c0, epi);
  }
  epi.finish();
}

template <typename T>
void dw_all(const ChainDw& d) {
  switch (epi_mode(d.epi)) {
    case EpiMode::F32: dw_all_in<T, EpiMode::F32>(d); break;
    case EpiMode::Dequant: dw_all_in<T, EpiMode::Dequant>(d); break;
    case EpiMode::RequantF32: dw_all_in<T, EpiMode::RequantF32>(d); break;
    case EpiMode::RequantU8: dw_all_in<T, EpiMode::RequantU8>(d); break;
    case EpiMode::RequantS16: dw_all_in<T, EpiMode::RequantS16>(d); break;
  }
}

}  // namespace

void chain_dense_f32_avx2(const ChainDense& d) { dense_rows<float, float, __m256, 1>(d); }
void chain_dense_s16_avx2(const ChainDense& d) { dense_rows<int16_t, int16_t, __m256i, 2>(d); }

void chain_dw_f32_avx2(const ChainDw& d) { dw_all<float>(d); }

void chain_quantize_avx2(const float* src, int64_t n, float scale, int32_t zero_point, ChainStore store, void* dst) {
  const __m256 s = _mm256_set1_ps(scale);
  // Clamp to [0 - zp, 255 - zp] before converting (integer bounds: clamping before or after
  // rounding agrees); max first turns NaN into the low bound (qmath: NaN -> qmin).
  const __m256 lo = _mm256_set1_ps(static_cast<float>(-zero_point));
  const __m256 hi = _mm256_set1_ps(static_cast<float>(255 - zero_point));
  const __m256i zp = _mm256_set1_epi32(zero_point);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    // Division, not a reciprocal multiply: QuantizeLinear divides, and so does ONNX Runtime.
    __m256 y = _mm256_div_ps(_mm256_loadu_ps(src + i), s);
    y = _mm256_min_ps(_mm256_max_ps(y, lo), hi);
    const __m256i r = _mm256_cvtps_epi32(y);  // round half to even
    if (store == ChainStore::F32) {
      _mm256_storeu_ps(static_cast<float*>(dst) + i, _mm256_cvtepi32_ps(r));
      continue;
    }
    const __m256i q = _mm256_add_epi32(r, zp);
    const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
    if (store == ChainStore::S16)
      _mm_storeu_si128(reinterpret_cast<__m128i*>(static_cast<int16_t*>(dst) + i), w);
    else
      _mm_storel_epi64(reinterpret_cast<__m128i*>(static_cast<uint8_t*>(dst) + i), _mm_packus_epi16(w, w));
  }
  if (i < n)
    chain_quantize_ref(src + i, n - i, scale, zero_point, store,
                       static_cast<char*>(dst) + i * static_cast<int64_t>(store_bytes(store)));
}

}  // namespace tinyq::kernels
