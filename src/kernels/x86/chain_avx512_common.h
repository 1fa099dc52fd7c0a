// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// What the AVX-512 chain kernels share (chain_avx512.cpp, chain_avx512vnni.cpp): the epilogue
// of one 16-lane vector and the walk over channel blocks. Included only by translation units
// compiled with the AVX-512 flags (kernels_x86.cmake).

#include <immintrin.h>

#include <type_traits>
#include <utility>

#include "kernels/fast/chain_kernels.h"

// An unnamed namespace on purpose: the two files are compiled with different ISA flags, so
// their copies of these functions must stay apart (inline functions with external linkage
// would be merged by the linker, and a VNNI-flagged copy could end up in the non-VNNI file).
namespace tinyq::kernels::chain512 {
namespace {

// Conversions in their masked forms: GCC 12's plain ones start from _mm512_undefined_*(),
// which trips -Wuninitialized (GCC bug 105593).
inline __m512 to_float(__m512i v) { return _mm512_maskz_cvtepi32_ps(static_cast<__mmask16>(0xFFFF), v); }
// float -> int32, truncating (exact for integer-valued floats) / rounding half to even.
inline __m512i to_int_trunc(__m512 v) { return _mm512_maskz_cvttps_epi32(static_cast<__mmask16>(0xFFFF), v); }
inline __m512i to_int_round(__m512 v) { return _mm512_maskz_cvtps_epi32(static_cast<__mmask16>(0xFFFF), v); }
// max / min (vmaxps / vminps: the second operand when either is NaN), masked for the same reason.
inline __m512 vmax(__m512 a, __m512 b) { return _mm512_maskz_max_ps(static_cast<__mmask16>(0xFFFF), a, b); }
inline __m512 vmin(__m512 a, __m512 b) { return _mm512_maskz_min_ps(static_cast<__mmask16>(0xFFFF), a, b); }

// The epilogue's kind and store, fixed at compile time (the kernels are instantiated per
// mode, so the per-vector epilogue has no branches on them).
enum class EpiMode { F32, Dequant, RequantF32, RequantU8, RequantS16 };

inline EpiMode epi_mode(const ChainEpilogue& e) {
  if (e.kind == ChainEpi::F32) return EpiMode::F32;
  if (e.kind == ChainEpi::Dequant) return EpiMode::Dequant;
  return e.store == ChainStore::F32  ? EpiMode::RequantF32
         : e.store == ChainStore::U8 ? EpiMode::RequantU8
                                     : EpiMode::RequantS16;
}

// The epilogue of one 16-lane vector (chain_kernels.h, ChainEpi), channels c0..c0+15.
template <EpiMode M>
struct Epi {
  float* minmax;
  const float *bias, *scale;
  const int32_t* corr;
  const float* corr_f;
  bool clamp;
  __m512 lo, hi, qlo, qhi, mn, mx;
  __m512i zp;
  explicit Epi(const ChainEpilogue& ep)
      : minmax(ep.minmax), bias(ep.bias), scale(ep.scale), corr(ep.corr), corr_f(ep.corr_f), clamp(ep.clamp) {
    lo = _mm512_set1_ps(ep.lo);
    hi = _mm512_set1_ps(ep.hi);
    qlo = _mm512_set1_ps(static_cast<float>(ep.qmin - ep.zero_point));
    qhi = _mm512_set1_ps(static_cast<float>(ep.qmax - ep.zero_point));
    zp = _mm512_set1_epi32(ep.zero_point);
    mn = _mm512_set1_ps(ep.minmax ? ep.minmax[0] : 0.0f);
    mx = _mm512_set1_ps(ep.minmax ? ep.minmax[1] : 0.0f);
  }
  // Writes the running range back to the caller's epilogue (once, at the end of a kernel).
  void finish() const {
    if (!minmax) return;
    // min/max return their second operand when either is NaN: the running value goes second,
    // so NaNs are skipped (the reduction of the running values has no NaN left).
    minmax[0] = _mm512_reduce_min_ps(mn);
    minmax[1] = _mm512_reduce_max_ps(mx);
  }
  // One 16-channel block's per-channel values, held in registers over a run of vectors. Loaded
  // once: the kernels store through a char* that could alias these arrays, so per-vector loads
  // would be redone after every store. Branch-free where the epilogue allows: no bias adds
  // -0.0 (y + -0.0 is y exactly, -0.0 included); no clamp clamps to the infinities (NaN still
  // passes, max and min return it as their second operand).
  struct Block {
    __m512 scale, bias, lo, hi;
    __m512i corr;
    bool int_path;  // the float sum through int32 less corr (corr given without corr_f)
  };
  inline Block block(int64_t c0) const {
    Block b;
    const float inf = __builtin_inff();
    b.scale = M == EpiMode::F32 ? _mm512_set1_ps(1.0f) : _mm512_loadu_ps(scale + c0);
    b.bias = bias ? _mm512_loadu_ps(bias + c0) : _mm512_set1_ps(-0.0f);
    b.lo = clamp ? lo : _mm512_set1_ps(-inf);
    b.hi = clamp ? hi : _mm512_set1_ps(inf);
    b.int_path = M != EpiMode::F32 && corr && !corr_f;
    b.corr = b.int_path ? _mm512_loadu_si512(corr + c0) : _mm512_setzero_si512();
    return b;
  }
  // y plus bias, clamped, stored; in the dequantising mode (whose chains take the next
  // layer's range from it) also folded into the running range, which finish() drops when
  // nobody asked for it.
  inline void bias_clamp_store(const Block& b, __m512 y, void* dst) {
    y = vmin(b.hi, vmax(b.lo, _mm512_add_ps(y, b.bias)));
    _mm512_storeu_ps(dst, y);
    if constexpr (M == EpiMode::Dequant) {
      mn = vmin(y, mn);
      mx = vmax(y, mx);
    }
  }
  // A float kernel's sum started at start_f(c0), through the epilogue with block b.
  inline void apply_block(const Block& b, __m512 s, void* dst) {
    if constexpr (M == EpiMode::F32) {
      bias_clamp_store(b, s, dst);
      return;
    }
    if (b.int_path) s = to_float(_mm512_sub_epi32(to_int_trunc(s), b.corr));
    apply_block_exact(b, s, dst);
  }
  // The net integer (corr already off) held exactly in a float, with block b (integer modes).
  inline void apply_block_exact(const Block& b, __m512 v, void* dst) {
    const __m512 y = _mm512_mul_ps(v, b.scale);
    if constexpr (M == EpiMode::Dequant)
      bias_clamp_store(b, y, dst);
    else
      store_requant(y, dst);
  }
  // The starting value of a float-exact integer kernel's sums: -corr_f when the integer modes
  // have it (the chain's bound on |sum| + |corr| keeps every partial sum exact), so the
  // epilogue need not subtract it; else 0.
  inline __m512 start_f(int64_t c0) const {
    if constexpr (M != EpiMode::F32)
      if (corr_f) return _mm512_sub_ps(_mm512_setzero_ps(), _mm512_loadu_ps(corr_f + c0));
    return _mm512_setzero_ps();
  }
  // The starting value of an integer tile's sums: -corr, so the epilogue need not subtract it.
  inline __m512i start(int64_t c0) const {
    return corr ? _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_loadu_si512(corr + c0)) : _mm512_setzero_si512();
  }
  // Requantisation of y = v * scale: saturate, round half to even, add the zero point.
  inline void store_requant(__m512 y, void* dst) {
    y = _mm512_min_ps(_mm512_max_ps(y, qlo), qhi);  // max first: NaN -> the low bound (qmath)
    if constexpr (M == EpiMode::RequantF32) {
      _mm512_storeu_ps(dst, _mm512_roundscale_ps(y, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));  // q - zp
    } else {
      const __m512i q = _mm512_add_epi32(to_int_round(y), zp);  // round half to even
      if constexpr (M == EpiMode::RequantU8)
        _mm_storeu_si128(static_cast<__m128i*>(dst), _mm512_cvtepi32_epi8(q));
      else
        _mm256_storeu_si256(static_cast<__m256i*>(dst), _mm512_cvtepi32_epi16(q));
    }
  }
};

// f(std::integral_constant<int, 0>) ... f(<N - 1>): a loop unrolled for certain, so that a
// tile of sums indexed by it stays in registers.
template <typename F, int... I>
inline void unroll_seq(F&& f, std::integer_sequence<int, I...>) {
  (f(std::integral_constant<int, I>{}), ...);
}
template <int N, typename F>
inline void unroll(F&& f) {
  unroll_seq(f, std::make_integer_sequence<int, N>{});
}

inline size_t store_bytes(ChainStore s) { return s == ChainStore::F32 ? 4 : s == ChainStore::U8 ? 1 : 2; }

// A copy of the epilogue's state for one hot function: a noinline tile that updated the
// caller's running min / max through a reference would store and reload them for every
// vector (a store-forwarding chain); the copy lives in registers and goes back at the end.
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

// Offsets of the R positions of a tile; a short tile repeats its last position (computed, not
// stored) instead of reading past the row.
template <int R>
inline void tile_offsets(int64_t np, int64_t step, int64_t* off) {
  for (int r = 0; r < R; ++r) off[r] = (r < np ? r : np - 1) * step;
}

// The dense tiles, R positions x V 16-channel blocks, each defined by its kernel's file:
// chain_avx512.cpp the fp32 ones (float input and weights), chain_avx512vnni.cpp the uint8 x
// int8 ones. A full tile, and a short one of np < R positions (the last repeats).
template <int R, int V, EpiMode M>
void dense_full(const ChainDense& d, const float* base, const float* wb, Epi<M>& epi, char* dst, int64_t c0, size_t ob);
template <int R, int V, EpiMode M>
void dense_tail(const ChainDense& d, const float* base, int64_t np, const float* wb, Epi<M>& epi, char* dst,
                int64_t c0, size_t ob);
template <int R, int V, EpiMode M>
void dense_full(const ChainDense& d, const uint8_t* base, const int8_t* wb, Epi<M>& epi, char* dst, int64_t c0,
                size_t ob);
template <int R, int V, EpiMode M>
void dense_tail(const ChainDense& d, const uint8_t* base, int64_t np, const int8_t* wb, Epi<M>& epi, char* dst,
                int64_t c0, size_t ob);

// One row of positions for the V channel blocks from vb0: tiles of R positions, then of 3 (a
// short one last). In and W: the kernel's input and weight elements (a k-step of a block is
// 16 lanes of 4 / sizeof(In) weights: one float, or four bytes).
template <typename In, typename W, int R, int V, EpiMode M>
inline void dense_row(const ChainDense& d, int64_t vb0, Epi<M>& epi) {
  const In* src = static_cast<const In*>(d.src);
  const W* wb = static_cast<const W*>(d.w) + vb0 * d.k * 16 * static_cast<int64_t>(4 / sizeof(In));
  const size_t ob = store_bytes(d.epi.store);
  const int64_t c0 = vb0 * 16;
  auto out = [&](int64_t p0) { return static_cast<char*>(d.dst) + (p0 * d.dst_step + c0) * ob; };
  int64_t p0 = 0;
  for (; p0 + R <= d.n; p0 += R) dense_full<R, V, M>(d, src + p0 * d.src_step, wb, epi, out(p0), c0, ob);
  for (; p0 < d.n; p0 += 3) {
    if (d.n - p0 >= 3)
      dense_full<3, V, M>(d, src + p0 * d.src_step, wb, epi, out(p0), c0, ob);
    else
      dense_tail<3, V, M>(d, src + p0 * d.src_step, d.n - p0, wb, epi, out(p0), c0, ob);
  }
}

// Walks the channel blocks in groups of up to 4 vectors (24 sums in registers at most), a
// narrow tile for the rest.
template <typename In, typename W, EpiMode M>
inline void dense_blocks_in(const ChainDense& d) {
  Epi<M> epi(d.epi);
  const int64_t blocks = d.m / 16;
  int64_t vb = 0;
  for (; vb + 4 <= blocks; vb += 4) dense_row<In, W, 6, 4, M>(d, vb, epi);
  if (blocks - vb == 3)
    dense_row<In, W, 9, 3, M>(d, vb, epi);
  else if (blocks - vb == 2)
    dense_row<In, W, 12, 2, M>(d, vb, epi);
  else if (blocks - vb == 1)
    dense_row<In, W, 12, 1, M>(d, vb, epi);
  epi.finish();
}

// The mode the epilogue asks for, then the blocks. Float sums have an F32 mode; the integer
// kernels' sums have none.
template <typename In, typename W>
inline void dense_blocks(const ChainDense& d) {
  switch (epi_mode(d.epi)) {
    case EpiMode::F32:
      if constexpr (std::is_same_v<In, float>) dense_blocks_in<In, W, EpiMode::F32>(d);
      break;
    case EpiMode::Dequant: dense_blocks_in<In, W, EpiMode::Dequant>(d); break;
    case EpiMode::RequantF32: dense_blocks_in<In, W, EpiMode::RequantF32>(d); break;
    case EpiMode::RequantU8: dense_blocks_in<In, W, EpiMode::RequantU8>(d); break;
    case EpiMode::RequantS16: dense_blocks_in<In, W, EpiMode::RequantS16>(d); break;
  }
}

}  // namespace
}  // namespace tinyq::kernels::chain512
