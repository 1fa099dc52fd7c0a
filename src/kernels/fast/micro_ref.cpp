// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// Portable versions of the micro-kernels of micro_kernels.h: the fallback on CPUs without the
// SIMD levels (and under TINYQ_MAX_ISA=ref) and the oracle the SIMD versions are tested
// against. Plain loops, same layouts and the same epilogue arithmetic (separate roundings).

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "common/qmath.h"
#include "kernels/fast/micro_kernels.h"

namespace tinyq::kernels {

void conv_f32_row_ref(const ConvF32Row& r) {
  const int64_t blocks = (r.m + r.mr - 1) / r.mr;
  std::vector<float> acc(static_cast<size_t>(r.mr));
  for (int64_t p = 0; p < r.n; ++p) {
    for (int64_t b = 0; b < blocks; ++b) {
      const float* w = r.w + b * r.k * r.mr;
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int64_t k = 0; k < r.k; ++k) {
        const float x = r.src[r.k_off[k] + p];
        for (int i = 0; i < r.mr; ++i) {
          const float wv = r.w_kstride ? r.w[k * r.w_kstride + std::min<int64_t>(i, r.w_rows - 1) * r.w_istride]
                                       : w[k * r.mr + i];
          acc[static_cast<size_t>(i)] += wv * x;
        }
      }
      for (int i = 0; i < r.mr; ++i) {
        const int64_t c = b * r.mr + i;
        if (c >= r.m) break;
        float y = acc[static_cast<size_t>(i)];
        if (r.scale) y = y * r.scale[c];
        if (r.bias) y = y + r.bias[c];
        if (r.res) y = y + r.res[c * r.ld_res + p];
        if (r.clamp) {  // as clip_ref: NaN passes
          y = y < r.lo ? r.lo : y;
          y = y > r.hi ? r.hi : y;
        }
        r.dst[c * r.ld_dst + p] = y;
      }
    }
  }
}

void dw_f32_plane_ref(const DwF32Plane& d) {
  for (int64_t oh = 0; oh < d.rows; ++oh) {
    for (int64_t ow = 0; ow < d.cols; ++ow) {
      float acc = 0.0f;
      for (int t = 0; t < d.taps; ++t) acc += d.w[t] * d.src[d.tap_off[t] + oh * d.src_pitch + ow];
      float y = acc;
      if (d.has_scale) y = y * d.scale;
      if (d.has_bias) y = y + d.bias;
      if (d.res) y = y + d.res[oh * d.cols + ow];
      if (d.clamp) {  // as clip_ref: NaN passes
        y = y < d.lo ? d.lo : y;
        y = y > d.hi ? d.hi : y;
      }
      d.dst[oh * d.cols + ow] = y;
    }
  }
}

void deinterleave_f32_ref(const float* src, int64_t n, int64_t stride, float* const* out) {
  for (int64_t i = 0; i < n; ++i) out[i % stride][i / stride] = src[i];
}

int conv_f32_block_rows(int isa_level, int64_t channels) {
  // isa_level: 0 ref, 1 avx2, 2 avx512 (and up). Larger blocks reuse each input vector for more
  // channels; a block wider than the channel count would only multiply zeros.
  const int widest = isa_level >= 2 ? 8 : 4;
  for (int mr = widest; mr > 1; mr /= 2)
    if (channels >= mr) return mr;
  return 1;
}

namespace {

// The QTileRows epilogue of one value: acc less corr, then Int32 / Dequant / Requant into
// dst[at] (residual at res_at).
void tile_epilogue(const QTileRows& t, int64_t c, uint32_t acc, int64_t at, int64_t res_at) {
  acc -= static_cast<uint32_t>(t.corr ? t.corr[c] : 0);
  const int32_t v = static_cast<int32_t>(acc);
  const bool u8 = t.kind == QEpilogueKind::RequantU8;
  switch (t.kind) {
    case QEpilogueKind::Int32: static_cast<int32_t*>(t.dst)[at] = v; break;
    case QEpilogueKind::Dequant: {
      float y = static_cast<float>(v) * t.scale[c];
      if (t.bias) y = y + t.bias[c];
      if (t.res) y = y + t.res[res_at];
      if (t.clamp) {  // as clip_ref: NaN passes
        y = y < t.lo ? t.lo : y;
        y = y > t.hi ? t.hi : y;
      }
      static_cast<float*>(t.dst)[at] = y;
      if (t.minmax && !std::isnan(y)) {
        t.minmax[0] = y < t.minmax[0] ? y : t.minmax[0];
        t.minmax[1] = y > t.minmax[1] ? y : t.minmax[1];
      }
      break;
    }
    case QEpilogueKind::RequantU8:
    case QEpilogueKind::RequantS8: {
      const int32_t q = qmath::requantize(v, t.scale[c], t.zero_point, u8 ? 0 : -128, u8 ? 255 : 127);
      if (u8)
        static_cast<uint8_t*>(t.dst)[at] = static_cast<uint8_t>(q);
      else
        static_cast<int8_t*>(t.dst)[at] = static_cast<int8_t>(q);
      break;
    }
  }
}

}  // namespace

void qtile_rows_u8s8_ref(const QTileRows& t) {
  const uint8_t* src = static_cast<const uint8_t*>(t.src);
  const int8_t* w = static_cast<const int8_t*>(t.w);
  const int64_t nb = kQLayoutRef.nb, kg = kQLayoutRef.kg;
  for (int64_t p = 0; p < t.n; ++p) {
    for (int64_t c = 0; c < t.m; ++c) {
      const int8_t* wc = w + (c / nb) * t.ksteps * nb * kg + (c % nb) * kg;
      uint32_t acc = 0;  // wraps modulo 2^32, as ONNX allows
      for (int64_t j = 0; j < t.ksteps; ++j) {
        const uint8_t* a = src + p * t.step + t.k_off[j];
        const int8_t* wj = wc + j * nb * kg;
        for (int64_t i = 0; i < kg; ++i)
          acc += static_cast<uint32_t>(static_cast<int32_t>(a[i]) * static_cast<int32_t>(wj[i]));
      }
      const int64_t at = t.channel_major ? c * t.ld_dst + p : p * t.ld_dst + c;
      const int64_t res_at = t.channel_major ? c * t.ld_res + p : p * t.ld_res + c;
      tile_epilogue(t, c, acc, at, res_at);
    }
  }
}

void qtile_c4_u8s8_ref(const QTileC4& t) {
  for (int64_t p = 0; p < t.n; ++p) {
    for (int64_t c = 0; c < t.m; ++c) {
      uint32_t acc = 0;  // wraps modulo 2^32, as ONNX allows
      for (int64_t j = 0; j < t.ksteps; ++j) {
        const int8_t* w = t.w + c4_weight_index(t.ksteps, c, j, 0);
        const uint8_t* a = t.src + p * 4 + t.k_off[j];
        for (int i = 0; i < 4; ++i) acc += static_cast<uint32_t>(static_cast<int32_t>(a[i]) * static_cast<int32_t>(w[i]));
      }
      tile_epilogue(t.epi, c, acc, c * t.epi.ld_dst + p, c * t.epi.ld_res + p);
    }
  }
}

void pack_c4_ref(const uint8_t* const* rows, int64_t n, uint8_t flip, uint8_t fill, uint8_t* dst) {
  for (int64_t i = 0; i < n; ++i)
    for (int k = 0; k < 4; ++k) dst[4 * i + k] = rows[k] ? static_cast<uint8_t>(rows[k][i] ^ flip) : fill;
}

void quantize_f32_u8_row_ref(const float* src, int64_t n, float scale, int32_t zero_point, uint8_t* dst) {
  for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<uint8_t>(qmath::quantize(src[i], scale, zero_point, 0, 255));
}

void quantize_f32_s8_row_ref(const float* src, int64_t n, float scale, int32_t zero_point, int8_t* dst) {
  for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<int8_t>(qmath::quantize(src[i], scale, zero_point, -128, 127));
}

void dequantize_8_f32_row_ref(const void* src, bool is_u8, int64_t n, float scale, int32_t zero_point, float* dst) {
  for (int64_t i = 0; i < n; ++i) {
    const int32_t q = is_u8 ? static_cast<const uint8_t*>(src)[i] : static_cast<const int8_t*>(src)[i];
    dst[i] = qmath::dequantize(q, scale, zero_point);
  }
}

void qadd_ref(const QAddArgs& t) {
  auto load = [](const void* p, bool u8, int64_t i) -> int32_t {
    return u8 ? static_cast<const uint8_t*>(p)[i] : static_cast<const int8_t*>(p)[i];
  };
  for (int64_t i = 0; i < t.n; ++i) {
    const float fa = qmath::dequantize(load(t.a, t.a_u8, i), t.sa, t.za);
    const float fb = qmath::dequantize(load(t.b, t.b_u8, i), t.sb, t.zb);
    const float f = fa + fb;
    if (t.y_u8)
      static_cast<uint8_t*>(t.y)[i] = static_cast<uint8_t>(qmath::quantize(f, t.sy, t.zy, 0, 255));
    else
      static_cast<int8_t*>(t.y)[i] = static_cast<int8_t>(qmath::quantize(f, t.sy, t.zy, -128, 127));
  }
}

void requant_f32acc_ref(const float* acc, int64_t n, int32_t bias, float mult, int32_t zero_point, bool u8, void* dst) {
  for (int64_t i = 0; i < n; ++i) {
    const int32_t v = static_cast<int32_t>(static_cast<uint32_t>(static_cast<int32_t>(acc[i])) + static_cast<uint32_t>(bias));
    const int32_t q = qmath::requantize(v, mult, zero_point, u8 ? 0 : -128, u8 ? 255 : 127);
    if (u8)
      static_cast<uint8_t*>(dst)[i] = static_cast<uint8_t>(q);
    else
      static_cast<int8_t*>(dst)[i] = static_cast<int8_t>(q);
  }
}

namespace {

template <typename T>
void pack_nhwc_impl(const uint8_t* src, int64_t ld_src, int64_t channels, int64_t pad_to, int64_t n, uint8_t flip,
                    T* dst, int64_t step) {
  for (int64_t p = 0; p < n; ++p) {
    T* d = dst + p * step;
    for (int64_t c = 0; c < channels; ++c) d[c] = static_cast<T>(static_cast<uint8_t>(src[c * ld_src + p] ^ flip));
    for (int64_t c = channels; c < pad_to; ++c) d[c] = 0;
  }
}

}  // namespace

void pack_nhwc_u8_ref(const uint8_t* src, int64_t ld_src, int64_t channels, int64_t pad_to, int64_t n, uint8_t flip,
                      uint8_t* dst, int64_t step) {
  pack_nhwc_impl(src, ld_src, channels, pad_to, n, flip, dst, step);
}

void pack_nhwc_s16_ref(const uint8_t* src, int64_t ld_src, int64_t channels, int64_t pad_to, int64_t n, uint8_t flip,
                       int16_t* dst, int64_t step) {
  pack_nhwc_impl(src, ld_src, channels, pad_to, n, flip, dst, step);
}

}  // namespace tinyq::kernels
