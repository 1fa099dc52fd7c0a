// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// Portable versions of the chain micro-kernels (chain_kernels.h): plain loops, the layouts and
// epilogue arithmetic of the SIMD versions (separate roundings, no FMA contraction: this file
// is built with -ffp-contract=off). The fallback without SIMD and the oracle of their tests.

#include <cmath>
#include <cstring>

#include "common/qmath.h"
#include "kernels/fast/chain_kernels.h"

namespace tinyq::kernels {

namespace {

// The float epilogues' last steps: bias, clamp, store, running range.
inline void finish_float(const ChainEpilogue& e, int64_t c, float y, void* dst, int64_t at) {
  if (e.bias) y = y + e.bias[c];
  if (e.clamp) {  // as clip_ref: NaN passes
    y = y < e.lo ? e.lo : y;
    y = y > e.hi ? e.hi : y;
  }
  static_cast<float*>(dst)[at] = y;
  if (e.kind == ChainEpi::Dequant && e.minmax && !std::isnan(y)) {
    e.minmax[0] = y < e.minmax[0] ? y : e.minmax[0];
    e.minmax[1] = y > e.minmax[1] ? y : e.minmax[1];
  }
}

// The epilogue of one lane's exact integer sum `si` (a float sum of the F32 kernels goes through
// finish_float alone).
inline void epilogue_int_sum(const ChainEpilogue& e, int64_t c, int32_t si, void* dst, int64_t at) {
  const int32_t v = static_cast<int32_t>(static_cast<uint32_t>(si) - static_cast<uint32_t>(e.corr ? e.corr[c] : 0));
  if (e.kind == ChainEpi::Dequant) {
    finish_float(e, c, static_cast<float>(v) * e.scale[c], dst, at);
    return;
  }
  const int32_t q = qmath::requantize(v, e.scale[c], e.zero_point, e.qmin, e.qmax);
  switch (e.store) {
    case ChainStore::F32: static_cast<float*>(dst)[at] = static_cast<float>(q - e.zero_point); break;
    case ChainStore::U8: static_cast<uint8_t*>(dst)[at] = static_cast<uint8_t>(q); break;
    case ChainStore::S16: static_cast<int16_t*>(dst)[at] = static_cast<int16_t>(q); break;
  }
}

// A float sum of a float-exact integer kernel as the integer it is (|s| < 2^24).
inline int32_t exact_int(float s) { return static_cast<int32_t>(s); }

inline void finish_f32(const ChainEpilogue& e, int64_t c, float s, void* dst, int64_t at) {
  if (e.kind == ChainEpi::F32)
    finish_float(e, c, s, dst, at);
  else
    epilogue_int_sum(e, c, exact_int(s), dst, at);
}

}  // namespace

void chain_dense_f32_ref(const ChainDense& d) {
  const float* src = static_cast<const float*>(d.src);
  const float* w = static_cast<const float*>(d.w);
  for (int64_t p = 0; p < d.n; ++p) {
    for (int64_t c = 0; c < d.m; ++c) {
      const float* wc = w + (c / 16) * d.k * 16 + c % 16;
      float s = 0.0f;
      for (int64_t j = 0; j < d.k; ++j) s += wc[j * 16] * src[p * d.src_step + d.k_off[j]];
      finish_f32(d.epi, c, s, d.dst, p * d.dst_step + c);
    }
  }
}

namespace {

template <typename A, typename W, int KG>
void dense_int_ref(const ChainDense& d) {
  const A* src = static_cast<const A*>(d.src);
  const W* w = static_cast<const W*>(d.w);
  for (int64_t p = 0; p < d.n; ++p) {
    for (int64_t c = 0; c < d.m; ++c) {
      const W* wc = w + ((c / 16) * d.k * 16 + c % 16) * KG;
      uint32_t s = 0;  // wraps modulo 2^32, as ONNX allows
      for (int64_t j = 0; j < d.k; ++j) {
        const A* a = src + p * d.src_step + d.k_off[j];
        for (int i = 0; i < KG; ++i)
          s += static_cast<uint32_t>(static_cast<int32_t>(a[i]) * static_cast<int32_t>(wc[j * 16 * KG + i]));
      }
      epilogue_int_sum(d.epi, c, static_cast<int32_t>(s), d.dst, p * d.dst_step + c);
    }
  }
}

}  // namespace

void chain_dense_u8_ref(const ChainDense& d) { dense_int_ref<uint8_t, int8_t, 4>(d); }
void chain_dense_s16_ref(const ChainDense& d) { dense_int_ref<int16_t, int16_t, 2>(d); }

namespace {

template <typename T>
void dw_ref(const ChainDw& d) {
  const T* src = static_cast<const T*>(d.src);
  for (int64_t p = 0; p < d.n; ++p) {
    for (int64_t c = 0; c < d.m; ++c) {
      float s = 0.0f;
      for (int t = 0; t < d.taps; ++t)
        s += d.w[t * d.m + c] * static_cast<float>(src[p * d.src_step + d.tap_off[t] + c]);
      finish_f32(d.epi, c, s, d.dst, p * d.dst_step + c);
    }
  }
}

}  // namespace

void chain_dw_f32_ref(const ChainDw& d) { dw_ref<float>(d); }

void chain_quantize_ref(const float* src, int64_t n, float scale, int32_t zero_point, ChainStore store, void* dst) {
  for (int64_t i = 0; i < n; ++i) {
    const int32_t q = qmath::quantize(src[i], scale, zero_point, 0, 255);
    switch (store) {
      case ChainStore::F32: static_cast<float*>(dst)[i] = static_cast<float>(q - zero_point); break;
      case ChainStore::U8: static_cast<uint8_t*>(dst)[i] = static_cast<uint8_t>(q); break;
      case ChainStore::S16: static_cast<int16_t*>(dst)[i] = static_cast<int16_t>(q); break;
    }
  }
}

void chain_mean_ref(const float* src, int64_t positions, int64_t m, int64_t ms, float scale, float* dst) {
  // Sixteen channels at a time, their sums held in registers over all positions (each channel's
  // sum is one chain of dependent adds: the more channels side by side, the better).
  for (int64_t c0 = 0; c0 < m; c0 += 16) {
    double acc[16] = {};
    for (int64_t p = 0; p < positions; ++p) {
      const float* v = src + p * ms + c0;
      for (int j = 0; j < 16; ++j) acc[j] += static_cast<double>(v[j] * scale);  // v * 1 is v itself
    }
    for (int64_t j = 0; j < 16 && c0 + j < m; ++j) dst[c0 + j] = static_cast<float>(acc[j] / static_cast<double>(positions));
  }
}

}  // namespace tinyq::kernels
