// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// The u8 x s8 dense chain kernel for AVX-512 VNNI (kernels/fast/chain_kernels.h). Compiled with
// -mavx512f -mavx512bw -mavx512vl -mavx512vnni (kernels_x86.cmake); called only on CPUs with
// VNNI. vpdpbusd multiplies 4 unsigned bytes by 4 signed bytes per 32-bit lane and adds the
// products into the lane in int32 without intermediate saturation: exact (each product is at
// most 255 * 128). A tile is R positions x V 16-channel vectors of sums in registers; per
// k-step (4 channels of one tap) each position's 4 bytes are broadcast once.

#include <immintrin.h>

#include <cstring>

#include "kernels/x86/chain_avx512_common.h"

namespace tinyq::kernels {

// ---------------------------------------------------------------------------------------------
// u8 x s8 dense (VNNI): chain512's dense tiles for this kernel (declared in chain_avx512_common.h)

namespace chain512 {
namespace {

inline __m512i bcast_dword(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof v);
  return _mm512_set1_epi32(v);
}

// A full tile (R positions, R a multiple of 3) straight into the epilogue; positions in
// threes through one pointer each (see chain_avx512.cpp).
template <int R, int V, EpiMode M>
__attribute__((noinline)) void dense_full(const ChainDense& d, const uint8_t* base, const int8_t* wb, Epi<M>& epi_io,
                                          char* dst, int64_t c0, size_t ob) {
  static_assert(R % 3 == 0, "positions come in threes");
  __m512i acc[R][V];
  unroll<V>([&](auto v) {
    const __m512i s0 = epi_io.start(c0 + 16 * v);  // the correction rides in the sums
    unroll<R>([&](auto r) { acc[r][v] = s0; });
  });
  const int64_t s = d.src_step, wstride = d.k * 64;
  const uint8_t* rows[R / 3];
#pragma GCC unroll 8
  for (int g = 0; g < R / 3; ++g) rows[g] = base + 3 * g * s;
  for (int64_t j = 0; j < d.k; ++j) {
    __m512i wv[V];
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) wv[v] = _mm512_loadu_si512(wb + v * wstride + j * 64);
    const int64_t off = d.k_off[j];
#pragma GCC unroll 8
    for (int g = 0; g < R / 3; ++g) {
      const uint8_t* q = rows[g] + off;
      const __m512i x0 = bcast_dword(q), x1 = bcast_dword(q + s), x2 = bcast_dword(q + 2 * s);
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) {
        acc[3 * g][v] = _mm512_dpbusd_epi32(acc[3 * g][v], x0, wv[v]);
        acc[3 * g + 1][v] = _mm512_dpbusd_epi32(acc[3 * g + 1][v], x1, wv[v]);
        acc[3 * g + 2][v] = _mm512_dpbusd_epi32(acc[3 * g + 2][v], x2, wv[v]);
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
    unroll<R>([&](auto r) { epi.apply_block_exact(blk, to_float(acc[r][v]), out + r * step); });
  });
}

template <int R, int V, EpiMode M>
__attribute__((noinline)) void dense_tail(const ChainDense& d, const uint8_t* base, int64_t np, const int8_t* wb,
                                          Epi<M>& epi_io, char* dst, int64_t c0, size_t ob) {
  __m512i acc[R][V];
  for (int v = 0; v < V; ++v) {
    const __m512i s0 = epi_io.start(c0 + 16 * v);
    for (int r = 0; r < R; ++r) acc[r][v] = s0;
  }
  int64_t off[R];
  tile_offsets<R>(np, d.src_step, off);
  const int64_t wstride = d.k * 64;
  for (int64_t j = 0; j < d.k; ++j) {
    __m512i wv[V];
    for (int v = 0; v < V; ++v) wv[v] = _mm512_loadu_si512(wb + v * wstride + j * 64);
    const uint8_t* a = base + d.k_off[j];
    for (int r = 0; r < R; ++r) {
      const __m512i x = bcast_dword(a + off[r]);
      for (int v = 0; v < V; ++v) acc[r][v] = _mm512_dpbusd_epi32(acc[r][v], x, wv[v]);
    }
  }
  alignas(64) __m512i sums[R * V];  // as in the full tile
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) _mm512_store_si512(sums + (r * V + v), acc[r][v]);
  EpiLocal<M> local(epi_io);
  Epi<M>& epi = local.e;
  for (int v = 0; v < V; ++v) {
    const typename Epi<M>::Block blk = epi.block(c0 + 16 * v);
    for (int64_t r = 0; r < np; ++r)
      epi.apply_block_exact(blk, to_float(sums[r * V + v]), dst + (r * d.dst_step + 16 * v) * ob);
  }
}

}  // namespace
}  // namespace chain512

void chain_dense_u8_avx512vnni(const ChainDense& d) { chain512::dense_blocks<uint8_t, int8_t>(d); }

}  // namespace tinyq::kernels
