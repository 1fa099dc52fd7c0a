// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include "kernels/fast/conv_fast.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>

#include "common/qmath.h"
#include "kernels/fast/thread_pool.h"
#include "kernels/ref/qlinear_ref.h"

namespace tinyq::kernels {

namespace {

inline uint8_t* align64(uint8_t* p) {
  return reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(p) + 63) & ~static_cast<uintptr_t>(63));
}

inline int64_t round_up(int64_t v, int64_t to) { return (v + to - 1) / to * to; }

int isa_level(Isa isa) {
  switch (isa) {
    case Isa::Ref: return 0;
    case Isa::Avx2: return 1;
    default: return 2;
  }
}

size_t out_bytes(QEpilogueKind k) {
  return k == QEpilogueKind::RequantU8 || k == QEpilogueKind::RequantS8 ? 1 : 4;
}

// The integer tile kernel and its layout for an ISA level: VNNI where the CPU has it, the
// widening AVX2 kernel on AVX2 / AVX-512 without VNNI, the portable kernel otherwise.
void q_kernel_for(Isa isa, QTileRowsFn* fn, QKernelLayout* layout, const char** name) {
#if defined(TINYQ_X86_KERNELS)
  if (isa == Isa::Avx512Vnni) {
    *fn = qtile_rows_u8s8_avx512vnni;
    *layout = kQLayoutVnni;
    *name = "qgemm_u8s8_avx512vnni";
    return;
  }
  if (isa == Isa::Avx2 || isa == Isa::Avx512) {
    *fn = qtile_rows_u8s8_avx2;
    *layout = kQLayoutAvx2;
    *name = "qgemm_u8s8_avx2";
    return;
  }
#else
  (void)isa;
#endif
  *fn = qtile_rows_u8s8_ref;
  *layout = kQLayoutRef;
  *name = "qgemm_u8s8_ref";
}

PackNhwcU8Fn pack_u8_fn(Isa isa) { return kernel_at(isa, pack_nhwc_u8_ref, TINYQ_X86_KERNEL(pack_nhwc_u8_avx2)); }

PackNhwcS16Fn pack_s16_fn(Isa isa) { return kernel_at(isa, pack_nhwc_s16_ref, TINYQ_X86_KERNEL(pack_nhwc_s16_avx2)); }

// Stores packed integer weights (int8 or int16 per the layout) at element index i.
inline void put_weight(std::vector<uint8_t>& packed, const QKernelLayout& l, size_t i, int32_t v) {
  if (l.w_bytes == 1) {
    packed[i] = static_cast<uint8_t>(static_cast<int8_t>(v));
  } else {
    const int16_t s = static_cast<int16_t>(v);
    std::memcpy(packed.data() + 2 * i, &s, 2);
  }
}

// w - zw for every weight, as int32, [M][K]; the largest magnitude, and whether every value
// fits int8 (what the packed kernels hold).
std::vector<int32_t> effective_weights(const QWeights& w, int64_t rows, int64_t cols, bool per_row_zp,
                                       int32_t* max_abs, bool* fits_int8 = nullptr) {
  std::vector<int32_t> e(static_cast<size_t>(rows * cols));
  int32_t mx = 0;
  bool fits = true;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      const int64_t i = r * cols + c;
      const int32_t v = w.is_u8 ? static_cast<const uint8_t*>(w.data)[i] : static_cast<const int8_t*>(w.data)[i];
      const int64_t zi = (per_row_zp ? r : c) * w.zp_stride;
      const int32_t z = w.zero_points ? w.zero_points[zi] : 0;
      e[static_cast<size_t>(i)] = v - z;
      mx = std::max(mx, std::abs(v - z));
      fits = fits && v - z >= -128 && v - z <= 127;
    }
  }
  *max_abs = mx;
  if (fits_int8) *fits_int8 = fits;
  return e;
}

// The uint8 zero point of the data the integer kernels see (int8 data is shifted by 128).
int32_t kernel_zero_point(const QInput& x) { return x.kind == QInputKind::S8 ? x.zero_point + 128 : x.zero_point; }

// One row of the input as uint8 kernel values: positions j = 0..len-1 read source element
// j * stride + first (outside [0, size) -> the zero point).
void source_row_u8(const QInput& x, const void* row, int64_t size, int64_t first, int64_t stride, int64_t len,
                   uint8_t zp_u8, QuantizeU8Fn quantize, uint8_t* out) {
  if (stride == 1) {
    const int64_t lo = std::clamp<int64_t>(-first, 0, len), hi = std::clamp<int64_t>(size - first, lo, len);
    if (lo > 0) std::memset(out, zp_u8, static_cast<size_t>(lo));
    if (len > hi) std::memset(out + hi, zp_u8, static_cast<size_t>(len - hi));
    const int64_t n = hi - lo;
    if (n > 0) {
      switch (x.kind) {
        case QInputKind::F32:
          quantize(static_cast<const float*>(row) + first + lo, n, x.scale, x.zero_point, out + lo);
          break;
        case QInputKind::U8:
          std::memcpy(out + lo, static_cast<const uint8_t*>(row) + first + lo, static_cast<size_t>(n));
          break;
        case QInputKind::S8: {
          const uint8_t* s = static_cast<const uint8_t*>(row) + first + lo;
          for (int64_t j = 0; j < n; ++j) out[lo + j] = static_cast<uint8_t>(s[j] ^ 0x80u);
          break;
        }
      }
    }
    return;
  }
  for (int64_t j = 0; j < len; ++j) {
    const int64_t i = j * stride + first;
    if (i < 0 || i >= size) {
      out[j] = zp_u8;
      continue;
    }
    switch (x.kind) {
      case QInputKind::F32:
        out[j] = static_cast<uint8_t>(qmath::quantize(static_cast<const float*>(row)[i], x.scale, x.zero_point, 0, 255));
        break;
      case QInputKind::U8: out[j] = static_cast<const uint8_t*>(row)[i]; break;
      case QInputKind::S8: out[j] = static_cast<uint8_t>(static_cast<const uint8_t*>(row)[i] ^ 0x80u); break;
    }
  }
}

size_t input_elem_bytes(QInputKind k) { return k == QInputKind::F32 ? 4 : 1; }

}  // namespace

// ---------------------------------------------------------------------------------------------

ScratchCache::Lease::Lease(ScratchCache& cache, size_t bytes) : lock_(cache.mu_, std::try_to_lock) {
  const size_t want = bytes + 64;
  if (lock_.owns_lock()) {
    if (cache.size_ < want) {
      cache.buf_.reset(new uint8_t[want]);
      cache.size_ = want;
    }
    ptr_ = align64(cache.buf_.get());
  } else {
    own_.reset(new uint8_t[want]);
    ptr_ = align64(own_.get());
  }
}

ConvF32RowFn conv_f32_row_fn(Isa isa) {
  return kernel_at(isa, conv_f32_row_ref, TINYQ_X86_KERNEL(conv_f32_row_avx2), TINYQ_X86_KERNEL(conv_f32_row_avx512));
}

const char* conv_f32_row_name(Isa isa) {
  switch (isa) {
    case Isa::Ref: return "conv_f32_ref";
    case Isa::Avx2: return "conv_f32_avx2_fma";
    default: return "conv_f32_avx512";
  }
}

MinMaxFn minmax_fn(Isa isa) { return kernel_at(isa, minmax_f32_ref, TINYQ_X86_KERNEL(minmax_f32_avx2)); }

QuantizeU8Fn quantize_u8_fn(Isa isa) {
  return kernel_at(isa, quantize_f32_u8_row_ref, TINYQ_X86_KERNEL(quantize_f32_u8_avx2));
}

QuantizeS8Fn quantize_s8_fn(Isa isa) {
  return kernel_at(isa, quantize_f32_s8_row_ref, TINYQ_X86_KERNEL(quantize_f32_s8_avx2));
}

DequantizeFn dequantize_fn(Isa isa) {
  return kernel_at(isa, dequantize_8_f32_row_ref, TINYQ_X86_KERNEL(dequantize_8_f32_avx2));
}

QAddFn qadd_fn(Isa isa) { return kernel_at(isa, qadd_ref, TINYQ_X86_KERNEL(qadd_avx2), TINYQ_X86_KERNEL(qadd_avx512)); }

ChainQuantizeFn chain_quantize_fn(Isa isa) {
  return kernel_at(isa, chain_quantize_ref, TINYQ_X86_KERNEL(chain_quantize_avx2),
                   TINYQ_X86_KERNEL(chain_quantize_avx512));
}

std::string conv_fast_declines(const ConvParams& p) {
  if (p.spatial_rank < 1 || p.spatial_rank > 2) return "only 1-D and 2-D convolutions";
  if (p.group < 1 || p.in_channels % p.group != 0 || p.out_channels % p.group != 0) return "bad grouping";
  for (int a = 0; a < p.spatial_rank; ++a)
    if (p.out_size[a] < 1 || p.in_size[a] < 1 || p.kernel[a] < 1) return "empty axis";
  return "";
}

ConvLayout conv_layout(const ConvParams& p, bool allow_direct) {
  ConvLayout l;
  bool direct = allow_direct;
  for (int a = 0; a < 2; ++a) {
    const int src = p.spatial_rank == 1 ? (a == 0 ? -1 : 0) : a;
    int64_t dil = 1;
    if (src >= 0) {
      l.in[a] = p.in_size[src];
      l.out[a] = p.out_size[src];
      l.stride[a] = p.stride[src];
      l.pad[a] = p.pad_begin[src];
      l.kernel[a] = p.kernel[src];
      dil = p.dilation[src];
    }
    int64_t max_q = 0;
    for (int64_t t = 0; t < l.kernel[a]; ++t) {
      const int64_t v = t * dil;
      l.tap_plane[a].push_back(v % l.stride[a]);
      l.tap_q[a].push_back(v / l.stride[a]);
      max_q = std::max(max_q, v / l.stride[a]);
    }
    l.J[a] = l.out[a] + max_q;
    if (l.stride[a] != 1 || l.pad[a] != 0 || l.J[a] > l.in[a]) direct = false;
  }
  if (direct) {
    l.direct = true;
    l.J[0] = l.in[0];
    l.J[1] = l.in[1];
  }
  return l;
}

namespace {

using DeinterleaveFn = void (*)(const float*, int64_t, int64_t, float* const*);

DeinterleaveFn deinterleave_fn(Isa isa) {
  return kernel_at(isa, deinterleave_f32_ref, TINYQ_X86_KERNEL(deinterleave_f32_avx2));
}

DwF32PlaneFn dw_fn(Isa isa) {
  return kernel_at(isa, dw_f32_plane_ref, TINYQ_X86_KERNEL(dw_f32_plane_avx2), TINYQ_X86_KERNEL(dw_f32_plane_avx512));
}

// Writes plane rows [jh0, jh1) (all of them by default) of the phase planes of channels
// [c0, c1) of an fp32 input (channel c at x + c * H * W) into dst, which holds just those rows
// ([C][planes][jh1 - jh0][J_w]), padding with 0. A source row goes once through a padded copy
// (the begin padding in front, zeros behind) that is split into the stride's phase rows.
void fill_planes_f32(const ConvLayout& l, const float* x, int64_t c0, int64_t c1, float* dst,
                     DeinterleaveFn deinterleave, int64_t jh0 = 0, int64_t jh1 = -1) {
  if (jh1 < 0) jh1 = l.J[0];
  const int64_t H = l.in[0], W = l.in[1], PS = (jh1 - jh0) * l.J[1], s = l.stride[1];
  std::vector<float> padded(static_cast<size_t>(s * l.J[1]));
  std::vector<float*> phase(static_cast<size_t>(s));
  for (int64_t c = c0; c < c1; ++c) {
    for (int64_t rh = 0; rh < l.stride[0]; ++rh) {
      for (int64_t jh = jh0; jh < jh1; ++jh) {
        const int64_t ih = jh * l.stride[0] + rh - l.pad[0];
        for (int64_t rw = 0; rw < s; ++rw)
          phase[static_cast<size_t>(rw)] = dst + (c * l.planes() + rh * s + rw) * PS + (jh - jh0) * l.J[1];
        if (ih < 0 || ih >= H) {
          for (float* d : phase) std::fill(d, d + l.J[1], 0.0f);
          continue;
        }
        const float* row = x + (c * H + ih) * W;
        // Padded position i' = iw + pad; phase rw holds i' = jw * s + rw.
        const int64_t n = s * l.J[1];
        const int64_t lo = std::min<int64_t>(l.pad[1], n), hi = std::clamp<int64_t>(l.pad[1] + W, lo, n);
        float* d = s == 1 ? phase[0] : padded.data();
        std::fill(d, d + lo, 0.0f);
        std::memcpy(d + lo, row + (lo - l.pad[1]), static_cast<size_t>(hi - lo) * sizeof(float));
        std::fill(d + hi, d + n, 0.0f);
        if (s > 1) deinterleave(padded.data(), n, s, phase.data());
      }
    }
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Output segments: the runs of output positions one kernel call covers. Normally one output
// row (its positions are contiguous in the planes, rows are J_w apart). When the planes are
// exactly as wide as the output (1x1 convolutions, stride 1, no padding) the whole plane is one
// contiguous run, so it is cut into a few long segments instead: full vector tiles instead of
// a masked tail per short row.
struct Segments {
  bool flat = false;
  int64_t count = 0;      // segments per (image, group)
  int64_t length = 0;     // positions per segment (the last flat one may be shorter)
  int64_t total = 0;      // output positions per plane
  int64_t src_pitch = 0;  // plane row pitch (J_w)
  int64_t out_w = 0;

  void locate(int64_t i, int64_t* src_pos, int64_t* dst_pos, int64_t* len) const {
    if (flat) {
      *src_pos = *dst_pos = i * length;
      *len = std::min(length, total - i * length);
    } else {
      *src_pos = i * src_pitch;
      *dst_pos = i * out_w;
      *len = out_w;
    }
  }
};

Segments output_segments(const ConvLayout& l, int threads) {
  Segments s;
  s.total = l.out[0] * l.out[1];
  s.src_pitch = l.J[1];
  s.out_w = l.out[1];
  s.flat = l.J[1] == l.out[1];
  if (!s.flat) {
    s.count = l.out[0];
    s.length = l.out[1];
    return s;
  }
  // A few segments per thread, each a multiple of 64 positions.
  const int64_t parts = threads > 1 ? 4 * threads : 1;
  s.length = std::max<int64_t>(64, round_up((s.total + parts - 1) / parts, 64));
  s.count = (s.total + s.length - 1) / s.length;
  return s;
}

// ---------------------------------------------------------------------------------------------
// fp32 convolution

ConvF32Fast::ConvF32Fast(Isa isa, const ConvParams& p, const float* weights)
    : isa_(isa), name_(conv_f32_row_name(isa)), fn_(conv_f32_row_fn(isa)) {
  m_ = p.out_channels;
  group_ = p.group;
  mg_ = m_ / group_;
  cg_ = p.in_channels / group_;
  kernel_[0] = p.spatial_rank == 1 ? 1 : p.kernel[0];
  kernel_[1] = p.spatial_rank == 1 ? p.kernel[0] : p.kernel[1];
  deinterleave_ = deinterleave_fn(isa);
  // Depthwise: a whole plane per call with the weights in registers (a row call's setup would
  // outweigh its 9 multiply-adds per position).
  if (cg_ == 1 && mg_ == 1 && kernel_[0] * kernel_[1] <= kDwMaxTaps) dw_fn_ = dw_fn(isa);
  mr_ = conv_f32_block_rows(isa_level(isa), mg_);
  const int64_t k = cg_ * kernel_[0] * kernel_[1];
  const int64_t blocks = (mg_ + mr_ - 1) / mr_;
  packed_.assign(static_cast<size_t>(group_ * blocks * k * mr_), 0.0f);
  for (int64_t g = 0; g < group_; ++g)
    for (int64_t b = 0; b < blocks; ++b)
      for (int64_t kk = 0; kk < k; ++kk)
        for (int i = 0; i < mr_; ++i) {
          const int64_t m = b * mr_ + i;
          if (m >= mg_) continue;
          packed_[static_cast<size_t>(((g * blocks + b) * k + kk) * mr_ + i)] = weights[(g * mg_ + m) * k + kk];
        }
}

void ConvF32Fast::run(const ConvParams& p, const float* src, const ConvF32Epilogue& ep, float* dst, int threads,
                      const float* scale) const {
  const ConvLayout l = conv_layout(p, true);
  const int64_t in_image = p.in_channels * l.in[0] * l.in[1];
  if (l.direct) {
    run_planes(p, l, src, in_image, ep, dst, threads, scale);
    return;
  }
  if (banded(l)) {
    run_banded(p, l, src, ep, dst, threads, scale, 0, l.out[0]);
    return;
  }
  const int64_t out_image = p.out_channels * l.out[0] * l.out[1];
  const int64_t plane_elems = p.in_channels * l.planes() * l.plane_size();
  ScratchCache::Lease lease(scratch_, static_cast<size_t>(plane_elems) * sizeof(float));
  float* planes = lease.as<float>();
  ConvParams one = p;
  one.batch = 1;
  const int threads_fill = useful_threads(threads, static_cast<double>(plane_elems) * 4.0);
  for (int64_t n = 0; n < p.batch; ++n) {
    parallel_for(threads_fill, p.in_channels, [&](int64_t c0, int64_t c1) {
      fill_planes_f32(l, src + n * in_image, c0, c1, planes, deinterleave_);
    });
    ConvF32Epilogue e = ep;
    if (e.residual) e.residual += n * out_image;
    if (e.pre) e.pre += n * out_image;
    run_planes(one, l, planes, plane_elems, e, dst + n * out_image, threads, scale);
  }
}

void ConvF32Kernel::run_rows(const ConvParams& p, const float* src, const ConvF32Epilogue& ep, float* dst, int threads,
                             int64_t row0, int64_t row1, RowRings rings) const {
  (void)p, (void)src, (void)ep, (void)dst, (void)threads, (void)row0, (void)row1, (void)rings;
  throw std::logic_error(name() + " cannot run part of its output rows");
}

int64_t ConvF32Fast::row_step(const ConvParams& p) const {
  return p.spatial_rank == 2 && banded(conv_layout(p, true)) ? 1 : 0;
}

void ConvF32Fast::run_rows(const ConvParams& p, const float* src, const ConvF32Epilogue& ep, float* dst, int threads,
                           int64_t row0, int64_t row1, RowRings rings) const {
  const ConvLayout l = conv_layout(p, true);
  if (!banded(l) || rings.src || rings.dst)
    throw std::logic_error(name() + " cannot run part of its output rows for this geometry");
  run_banded(p, l, src, ep, dst, threads, nullptr, row0, row1);
}

// Stride 1 with padding: each thread builds the padded rows a band of output rows reads in a
// buffer of its own, sized to stay in L2, right before its kernels read them, instead of
// padded planes of the whole image first. learned_filter's 16 -> 1 exit convolution wrote and
// re-read 3.3 MB of planes that way: in the model it went from 676-751 to 561-673 us
// (TINYQ_PROFILE, 3 interleaved runs).
void ConvF32Fast::run_banded(const ConvParams& p, const ConvLayout& l, const float* src, const ConvF32Epilogue& ep,
                             float* dst, int threads, const float* scale, int64_t row0, int64_t row1) const {
  constexpr int64_t kBandBytes = 128 * 1024;
  const int64_t OH = l.out[0], OW = l.out[1];
  const int64_t halo = *std::max_element(l.tap_q[0].begin(), l.tap_q[0].end());  // plane rows below a band's last
  const int64_t in_image = p.in_channels * l.in[0] * l.in[1], out_image = p.out_channels * OH * OW;
  const int64_t row_floats = p.in_channels * l.J[1];
  const int64_t band =
      std::clamp<int64_t>(kBandBytes / (row_floats * static_cast<int64_t>(sizeof(float))) - halo, 1, OH);
  const int64_t bands = (row1 - row0 + band - 1) / band, buf_floats = (band + halo) * row_floats;
  const double macs = static_cast<double>(p.batch) * m_ * (row1 - row0) * OW * cg_ * kernel_[0] * kernel_[1];
  const int parts = static_cast<int>(std::min<int64_t>(useful_threads(threads, macs), p.batch * bands));
  ScratchCache::Lease lease(scratch_, static_cast<size_t>(parts * buf_floats) * sizeof(float));
  ConvParams one = p;
  one.batch = 1;
  std::mutex range_mu;
  parallel_for(parts, parts, [&](int64_t part0, int64_t part1) {
    for (int64_t part = part0; part < part1; ++part) {
      float* buf = lease.as<float>() + part * buf_floats;
      // Each part measures into ranges of its own (run_planes' merge is per call), merged once.
      FiniteRange range, pre_range;
      const int64_t u0 = p.batch * bands * part / parts, u1 = p.batch * bands * (part + 1) / parts;
      for (int64_t u = u0; u < u1; ++u) {
        const int64_t n = u / bands, r0 = row0 + u % bands * band, r1 = std::min(row1, r0 + band);
        ConvLayout lb = l;
        lb.J[0] = r1 - r0 + halo;
        lb.out[0] = r1 - r0;
        fill_planes_f32(l, src + n * in_image, 0, p.in_channels, buf, deinterleave_, r0, r0 + lb.J[0]);
        ConvF32Epilogue e = ep;
        const int64_t at = n * out_image + r0 * OW;
        if (e.residual) e.residual += at;
        if (e.pre) e.pre += at;
        e.range = ep.range ? &range : nullptr;
        e.pre_range = ep.pre_range ? &pre_range : nullptr;
        run_planes(one, lb, buf, 0, e, dst + at, 1, scale, OH * OW);
      }
      if (ep.range || ep.pre_range) {
        std::lock_guard<std::mutex> lock(range_mu);
        if (ep.range) ep.range->merge(range);
        if (ep.pre_range) ep.pre_range->merge(pre_range);
      }
    }
  });
}

ConvF32Epilogue kernel_epilogue(const ConvF32Epilogue& ep) {
  if (!ep.also_pre()) return ep;
  ConvF32Epilogue k = ep;
  k.residual = nullptr;
  k.clamp = false;
  return k;
}

void finish_block(const ConvF32Epilogue& ep, float* dst, const BlockRows& b, const RowSet& kpre, FiniteRange* mine,
                  FiniteRange* mine_pre) {
  if (ep.also_pre()) {
    if (ep.pre_range) mine_pre->fold(kpre);
    for (int64_t i = 0; i < b.outer; ++i)
      for (int64_t j = 0; j < b.rows; ++j) {
        const int64_t at = b.offset + i * b.outer_stride + j * b.stride;
        const float* pre = kpre.src + i * kpre.outer_stride + j * kpre.stride;
        if (ep.pre) std::memcpy(ep.pre + at, pre, static_cast<size_t>(b.len) * sizeof(float));
        const float* res = ep.residual + at;
        float* y = dst + at;
        // The Add, then the activation; comparisons that pass NaN through, as Relu and Clip do.
        for (int64_t k = 0; k < b.len; ++k) {
          float v = pre[k] + res[k];
          if (ep.clamp) {
            v = v < ep.lo ? ep.lo : v;
            v = v > ep.hi ? ep.hi : v;
          }
          y[k] = v;
        }
      }
  }
  if (ep.range) mine->fold(b.at(dst));
}

void ConvF32Fast::run_planes(const ConvParams& p, const ConvLayout& l, const float* planes, int64_t image_stride,
                             const ConvF32Epilogue& ep, float* dst, int threads, const float* scale,
                             int64_t out_plane) const {
  const int64_t PS = l.plane_size(), OH = l.out[0], OW = l.out[1];
  const int64_t ostride = out_plane ? out_plane : OH * OW;  // output channel stride
  const int64_t k = cg_ * kernel_[0] * kernel_[1];
  std::vector<int64_t> k_off(static_cast<size_t>(k));
  for (int64_t c = 0, i = 0; c < cg_; ++c)
    for (int64_t kh = 0; kh < kernel_[0]; ++kh)
      for (int64_t kw = 0; kw < kernel_[1]; ++kw) k_off[static_cast<size_t>(i++)] = c * l.planes() * PS + l.tap_offset(kh, kw);
  const double macs = static_cast<double>(p.batch) * m_ * OH * OW * k;
  // Each worker finishes what its kernel wrote right after writing it (finish_block), then
  // merges its ranges once. With ep.also_pre() the kernels write conv + bias to a compact block
  // of the worker's own instead of dst.
  const ConvF32Epilogue ke = kernel_epilogue(ep);
  const bool blocked = ep.also_pre();
  RangeSink sink(ep);
  if (dw_fn_) {
    parallel_for(useful_threads(threads, macs), p.batch * group_, [&](int64_t begin, int64_t end) {
      FiniteRange mine, mine_pre;
      std::vector<float> block(blocked ? static_cast<size_t>(OH * OW) : 0);
      for (int64_t u = begin; u < end; ++u) {
        const int64_t n = u / group_, g = u % group_;
        DwF32Plane d;
        d.src = planes + n * image_stride + g * l.planes() * PS;
        d.tap_off = k_off.data();
        d.taps = static_cast<int>(k);
        d.src_pitch = l.J[1];
        d.rows = OH;
        d.cols = OW;
        d.w = packed_.data() + g * k;
        d.has_scale = scale != nullptr;
        d.scale = scale ? scale[g] : 1.0f;
        d.has_bias = ke.bias != nullptr;
        d.bias = ke.bias ? ke.bias[g] : 0.0f;
        const int64_t out_off = (n * m_ + g) * OH * OW;
        d.dst = blocked ? block.data() : dst + out_off;
        d.res = ke.residual ? ke.residual + out_off : nullptr;
        d.clamp = ke.clamp;
        d.lo = ke.lo;
        d.hi = ke.hi;
        dw_fn_(d);
        finish_block(ep, dst, BlockRows{out_off, 1, 0, 1, 0, OH * OW}, RowSet{block.data(), 1, 0, 1, 0, OH * OW}, &mine,
                     &mine_pre);
      }
      sink.merge(mine, mine_pre);
    });
    return;
  }
  const int64_t blocks = (mg_ + mr_ - 1) / mr_;
  const int eff = useful_threads(threads, macs);
  const Segments seg = output_segments(l, eff);
  const int64_t units = p.batch * group_ * seg.count;
  parallel_for(eff, units, [&](int64_t begin, int64_t end) {
    FiniteRange mine, mine_pre;
    std::vector<float> block;
    for (int64_t u = begin; u < end; ++u) {
      const int64_t n = u / (group_ * seg.count), g = (u / seg.count) % group_;
      int64_t src_pos = 0, dst_pos = 0, len = 0;
      seg.locate(u % seg.count, &src_pos, &dst_pos, &len);
      ConvF32Row r;
      r.src = planes + n * image_stride + g * cg_ * l.planes() * PS + src_pos;
      r.k_off = k_off.data();
      r.k = k;
      r.n = len;
      r.w = packed_.data() + g * blocks * k * mr_;
      r.mr = mr_;
      r.m = mg_;
      r.scale = scale ? scale + g * mg_ : nullptr;
      r.bias = ke.bias ? ke.bias + g * mg_ : nullptr;
      const int64_t out_off = (n * m_ + g * mg_) * ostride + dst_pos;
      if (blocked) block.resize(static_cast<size_t>(mg_ * len));
      r.dst = blocked ? block.data() : dst + out_off;
      r.ld_dst = blocked ? len : ostride;
      r.res = ke.residual ? ke.residual + out_off : nullptr;
      r.ld_res = ostride;
      r.clamp = ke.clamp;
      r.lo = ke.lo;
      r.hi = ke.hi;
      fn_(r);
      finish_block(ep, dst, BlockRows{out_off, mg_, ostride, 1, 0, len}, RowSet{block.data(), mg_, len, 1, 0, len},
                   &mine, &mine_pre);
    }
    sink.merge(mine, mine_pre);
  });
}

// ---------------------------------------------------------------------------------------------
// Integer convolution

std::string QConvFast::declines(const ConvParams& p, const QWeights& w) {
  std::string why = conv_fast_declines(p);
  if (!why.empty()) return why;
  const int64_t mg = p.out_channels / p.group, k = p.in_channels / p.group * p.kernel[0] *
                                                        (p.spatial_rank == 2 ? p.kernel[1] : 1);
  int32_t max_abs = 0;
  bool fits = true;
  effective_weights(w, p.out_channels, k, true, &max_abs, &fits);
  (void)mg;
  if (!fits) return "w - w_zero_point leaves the int8 range";
  return "";
}

QConvFast::QConvFast(Isa isa, const ConvParams& p, const QWeights& w) : isa_(isa), name_("") {
  m_ = p.out_channels;
  group_ = p.group;
  mg_ = m_ / group_;
  cg_ = p.in_channels / group_;
  kernel_[0] = p.spatial_rank == 1 ? 1 : p.kernel[0];
  kernel_[1] = p.spatial_rank == 1 ? p.kernel[0] : p.kernel[1];
  const int64_t taps = kernel_[0] * kernel_[1], k = cg_ * taps;
  int32_t max_abs = 0;
  const std::vector<int32_t> e = effective_weights(w, m_, k, true, &max_abs);
  wsum_.assign(static_cast<size_t>(m_), 0);
  for (int64_t m = 0; m < m_; ++m) {
    uint32_t s = 0;
    for (int64_t i = 0; i < k; ++i) s += static_cast<uint32_t>(e[static_cast<size_t>(m * k + i)]);
    wsum_[static_cast<size_t>(m)] = static_cast<int32_t>(s);
  }
  q_kernel_for(isa, &tile_fn_, &layout_, &name_);
  // How much of a tile does useful work: channels fill lanes in blocks of nb, input channels
  // fill k-steps in groups of kg. Depthwise convolutions (one channel in and out per group)
  // would use 1/64 of a VNNI tile; they, and other thin shapes, accumulate in fp32 instead,
  // which is exact while every partial sum stays below 2^24 (each product is at most
  // 255 * max|w - zw|).
  // The c4 tiles (VNNI, one group) take channels in blocks of 16, 8 or 4 (or 1 alone), so a
  // layer with few channels wastes at most 3 of them, not up to 15.
  const bool c4 = isa == Isa::Avx512Vnni && group_ == 1;
  // One input channel (an image model's first layer): the c4 tiles take a kernel row's taps as
  // a k-step's 4 bytes instead of 4 channels, 3 of 4 of them useful for a 3x3 kernel where
  // channels left 1 (learned_filter's entry layer: 673 us through fp32 before).
  taps_packed_ = c4 && cg_ == 1 && kernel_[1] > 1 && kernel_[1] <= 4 && p.spatial_rank == 2;
  const int64_t lane_block = c4 ? 4 : layout_.lane_block;
  const double k_fill = taps_packed_ ? static_cast<double>(kernel_[1]) / 4.0
                                     : static_cast<double>(cg_) / static_cast<double>(round_up(cg_, layout_.kg));
  const double occupancy = static_cast<double>(mg_) / static_cast<double>(round_up(mg_, lane_block)) * k_fill;
  const double exact_bound = static_cast<double>(k) * 255.0 * static_cast<double>(std::max(max_abs, 1));
  const double vnni_gain = isa == Isa::Avx512Vnni ? 4.0 : 2.0;
  // At the break-even point, starved input channels (an image's 1 to 3) still favour fp32: the
  // tiles' k-steps would carry mostly padding (measured on learned_filter's entry layer).
  const double use = occupancy * vnni_gain;
  via_f32_ = exact_bound < 16777216.0 && (use < 1.0 || (use <= 1.0 && cg_ < layout_.kg && !taps_packed_));
  if (via_f32_) {
    requant_ = kernel_at(isa, requant_f32acc_ref, TINYQ_X86_KERNEL(requant_f32acc_avx2));
    std::vector<float> wf(e.begin(), e.end());
    f32_ = std::make_unique<ConvF32Fast>(isa, p, wf.data());
    name_ = isa == Isa::Ref ? "qconv_exact_f32_ref" : isa == Isa::Avx2 ? "qconv_exact_f32_avx2_fma" : "qconv_exact_f32_avx512";
    return;
  }
  if (c4) {
    c4_fn_ = TINYQ_X86_KERNEL(qtile_c4_u8s8_avx512vnni);
    pack_c4_ = TINYQ_X86_KERNEL(pack_c4_avx2);
  }
  if (c4_fn_) {
    // Weights as the c4 tiles read them: k-step j = tap * groups + q covers input channels
    // 4q .. 4q + 3 of one tap; taps packed, k-step j is kernel row j, byte i its tap i.
    c4_groups_ = (cg_ + 3) / 4;
    const int64_t steps = taps_packed_ ? kernel_[0] : taps * c4_groups_, blocks16 = (mg_ + 15) / 16;
    packed_c4_.assign(static_cast<size_t>(blocks16 * steps * 64), 0);
    for (int64_t m = 0; m < mg_; ++m)
      for (int64_t t = 0; t < taps; ++t)
        for (int64_t c = 0; c < cg_; ++c) {
          const size_t at = taps_packed_ ? c4_weight_index(steps, m, t / kernel_[1], t % kernel_[1])
                                         : c4_weight_index(steps, m, t * c4_groups_ + c / 4, c % 4);
          packed_c4_[at] = static_cast<int8_t>(e[static_cast<size_t>(m * k + c * taps + t)]);
        }
  }
  cgp_ = round_up(cg_, layout_.kg);
  ksteps_ = taps * cgp_ / layout_.kg;
  const int64_t nb = layout_.nb, kg = layout_.kg;
  const int64_t blocks = (mg_ + nb - 1) / nb;
  packed_.assign(static_cast<size_t>(group_ * blocks * ksteps_ * nb * kg * layout_.w_bytes), 0);
  for (int64_t g = 0; g < group_; ++g)
    for (int64_t b = 0; b < blocks; ++b)
      for (int64_t t = 0; t < taps; ++t)
        for (int64_t qd = 0; qd < cgp_ / kg; ++qd) {
          const int64_t j = t * (cgp_ / kg) + qd;
          for (int64_t i = 0; i < nb; ++i) {
            const int64_t m = b * nb + i;
            if (m >= mg_) continue;
            for (int64_t u = 0; u < kg; ++u) {
              const int64_t c = qd * kg + u;
              if (c >= cg_) continue;
              const int32_t v = e[static_cast<size_t>((g * mg_ + m) * k + c * taps + t)];
              put_weight(packed_, layout_, static_cast<size_t>((((g * blocks + b) * ksteps_ + j) * nb + i) * kg + u), v);
            }
          }
        }
}

namespace {

// A tile's epilogue fields from the run's QOutput: channels from c0 on, the output (and residual)
// channel planes `plane` apart from element offset out_off.
void set_epilogue(const QOutput& y, const int32_t* corr, int64_t c0, int64_t out_off, int64_t plane, QTileRows& e) {
  e.kind = y.kind;
  e.corr = corr + c0;
  e.scale = y.scale ? y.scale + c0 : nullptr;
  e.bias = y.bias ? y.bias + c0 : nullptr;
  e.res = y.residual ? y.residual + out_off : nullptr;
  e.ld_res = plane;
  e.clamp = y.clamp;
  e.lo = y.lo;
  e.hi = y.hi;
  e.zero_point = y.zero_point;
  e.dst = static_cast<uint8_t*>(y.dst) + static_cast<size_t>(out_off) * out_bytes(y.kind);
  e.ld_dst = plane;
}

}  // namespace

void QConvFast::run(const ConvParams& p, const QInput& x, const QOutput& y, int threads) const {
  const bool c4 = c4_fn_ && p.spatial_rank == 2 && p.stride[0] == 1 && p.stride[1] == 1 && p.dilation[0] == 1 &&
                  p.dilation[1] == 1;
  if (c4 && !via_f32_) {
    run_c4(p, x, y, threads);
    return;
  }
  if (via_f32_)
    run_via_f32(p, x, y, threads);
  else
    run_tiles(p, x, y, threads);
  if (y.minmax && y.kind == QEpilogueKind::Dequant)
    minmax_fn(isa_)(static_cast<const float*>(y.dst), p.batch * m_ * p.out_size[0] * p.out_size[1] * p.out_size[2],
                    &y.minmax[0], &y.minmax[1]);
}

void QConvFast::pack_taps_row(const QInput& x, int64_t n, int64_t channels, int64_t ih, int64_t H, int64_t W,
                              int64_t pl, int64_t wp, int64_t KW, uint8_t zk, QuantizeU8Fn quantize, uint8_t* tmp,
                              uint8_t* d) const {
  // tmp: the padded row as kernel values (position j holds column j - pl), then byte k of
  // position i is tmp[i + k]: tap k of its kernel row. int8 input is flipped by pack_c4_, so
  // the padding goes in pre-flipped.
  const size_t in_bytes = input_elem_bytes(x.kind);
  const uint8_t flip = x.kind == QInputKind::S8 ? 0x80 : 0;
  const void* row = static_cast<const uint8_t*>(x.data) + static_cast<size_t>((n * channels * H + ih) * W) * in_bytes;
  const int64_t lo = std::min(pl, wp + 3), hi = std::min(pl + W, wp + 3);
  std::memset(tmp, zk ^ flip, static_cast<size_t>(wp + 4));
  if (hi > lo) {
    if (x.kind == QInputKind::F32)
      quantize(static_cast<const float*>(row) + (lo - pl), hi - lo, x.scale, x.zero_point, tmp + lo);
    else
      std::memcpy(tmp + lo, static_cast<const uint8_t*>(row) + (lo - pl), static_cast<size_t>(hi - lo));
  }
  const uint8_t* taps[4] = {nullptr, nullptr, nullptr, nullptr};
  for (int64_t k = 0; k < KW; ++k) taps[k] = tmp + k;
  pack_c4_(taps, wp, flip, zk, d);
}

void QConvFast::run_c4(const ConvParams& p, const QInput& x, const QOutput& y, int threads) const {
  const int64_t H = p.in_size[0], W = p.in_size[1], OH = p.out_size[0], OW = p.out_size[1];
  const int64_t KH = kernel_[0], KW = kernel_[1], pt = p.pad_begin[0], pl = p.pad_begin[1];
  const uint8_t zk = static_cast<uint8_t>(kernel_zero_point(x));
  const QuantizeU8Fn quantize = quantize_u8_fn(isa_);
  const size_t in_bytes = input_elem_bytes(x.kind);
  const bool requant = y.kind == QEpilogueKind::RequantU8 || y.kind == QEpilogueKind::RequantS8;
  std::vector<int32_t> corr(static_cast<size_t>(m_));  // zx * sum(w - zw), less B when requantising
  for (int64_t m = 0; m < m_; ++m) {
    uint32_t c = static_cast<uint32_t>(zk) * static_cast<uint32_t>(wsum_[static_cast<size_t>(m)]);
    if (requant && y.bias_i32) c -= static_cast<uint32_t>(y.bias_i32[m]);
    corr[static_cast<size_t>(m)] = static_cast<int32_t>(c);
  }
  // The work is counted in groups of 4 channels, the tiles' block for layers of 2 to 4 (a
  // 1-channel layer counts as 4, though its tiles do a quarter of that).
  const int eff = useful_threads(threads, static_cast<double>(round_up(m_, 4)) * OH * OW * cg_ * KH * KW / 4.0);
  // Each thread takes a band of output rows and builds the plane rows that band reads (its
  // rows plus KH - 1 shared with the next band, built twice) in a plane of its own: one
  // fork-join per image instead of two, and each band's plane stays in its core's cache.
  // c4 planes with the padding around: wide enough for the last group of 4 positions.
  const int64_t parts = std::max<int64_t>(1, std::min<int64_t>(eff, OH));
  const int64_t band = (OH + parts - 1) / parts;
  const int64_t hp = band + KH - 1, wp = round_up(OW, 4) + KW - 1;
  const int64_t Q = c4_groups_, plane = hp * wp * 4, part_bytes = Q * plane + 64;
  std::vector<int64_t> k_off;
  for (int64_t kh = 0; kh < KH; ++kh)
    for (int64_t kw = 0; kw < (taps_packed_ ? 1 : KW); ++kw)  // packed: a row's taps in one k-step
      for (int64_t q = 0; q < Q; ++q) k_off.push_back(q * plane + (kh * wp + kw) * 4);
  ScratchCache::Lease lease(scratch_, static_cast<size_t>(parts * part_bytes));
  uint8_t* const bufs = lease.as<uint8_t>();
  // y.minmax: each worker's tiles keep a running range of what they write, merged at the end.
  const bool track = y.minmax && y.kind == QEpilogueKind::Dequant;
  const float inf = std::numeric_limits<float>::infinity();
  float range[2] = {inf, -inf};
  std::mutex range_mu;
  for (int64_t n = 0; n < p.batch; ++n) {
    parallel_for(static_cast<int>(parts), parts, [&](int64_t part_begin, int64_t part_end) {
      std::vector<uint8_t> rows_buf(static_cast<size_t>(std::max(4 * W, wp + 4)));
      float mine[2] = {inf, -inf};
      for (int64_t part = part_begin; part < part_end; ++part) {
        const int64_t oh0 = OH * part / parts, oh1 = OH * (part + 1) / parts;
        if (oh0 >= oh1) continue;
        uint8_t* buf = bufs + part * part_bytes;
        // 1. The band's planes: each source row converted to kernel values once (quantised,
        // or int8 flipped), four channels interleaved per position, the zero point around.
        for (int64_t q = 0; q < Q; ++q)
          for (int64_t r = 0; r < oh1 - oh0 + KH - 1; ++r) {
            const int64_t ih = oh0 + r - pt;
            uint8_t* d = buf + q * plane + r * wp * 4;
            if (ih < 0 || ih >= H) {
              std::memset(d, zk, static_cast<size_t>(wp * 4));
              continue;
            }
            if (taps_packed_) {
              pack_taps_row(x, n, p.in_channels, ih, H, W, pl, wp, KW, zk, quantize, rows_buf.data(), d);
              continue;
            }
            const uint8_t* rows[4] = {nullptr, nullptr, nullptr, nullptr};
            uint8_t flip = 0;
            for (int64_t k = 0; k < 4 && 4 * q + k < cg_; ++k) {
              const void* row = static_cast<const uint8_t*>(x.data) +
                                static_cast<size_t>(((n * p.in_channels + 4 * q + k) * H + ih) * W) * in_bytes;
              if (x.kind == QInputKind::F32) {
                quantize(static_cast<const float*>(row), W, x.scale, x.zero_point, rows_buf.data() + k * W);
                rows[k] = rows_buf.data() + k * W;
              } else {
                rows[k] = static_cast<const uint8_t*>(row);
                flip = x.kind == QInputKind::S8 ? 0x80 : 0;
              }
            }
            const int64_t lo = std::min(pl, wp), hi = std::min(pl + W, wp);
            std::memset(d, zk, static_cast<size_t>(lo * 4));
            if (hi > lo) {
              const uint8_t* shifted[4];
              for (int k = 0; k < 4; ++k) shifted[k] = rows[k] ? rows[k] + (lo - pl) : nullptr;
              pack_c4_(shifted, hi - lo, flip, zk, d + lo * 4);
            }
            std::memset(d + hi * 4, zk, static_cast<size_t>((wp - hi) * 4));
          }
        // 2. The band's output rows.
        for (int64_t oh = oh0; oh < oh1; ++oh) {
          QTileC4 t;
          t.src = buf + (oh - oh0) * wp * 4;
          t.k_off = k_off.data();
          t.ksteps = static_cast<int64_t>(k_off.size());
          t.n = OW;
          t.w = packed_c4_.data();
          t.m = m_;
          set_epilogue(y, corr.data(), 0, n * m_ * OH * OW + oh * OW, OH * OW, t.epi);
          t.epi.minmax = track ? mine : nullptr;
          c4_fn_(t);
        }
      }
      if (track) {
        std::lock_guard<std::mutex> lock(range_mu);
        range[0] = std::min(range[0], mine[0]);
        range[1] = std::max(range[1], mine[1]);
      }
    });
  }
  if (track) {  // as minmax_f32: {0, 0} when nothing was a number
    const bool none = range[0] > range[1];
    y.minmax[0] = none ? 0.0f : range[0];
    y.minmax[1] = none ? 0.0f : range[1];
  }
}

void QConvFast::run_tiles(const ConvParams& p, const QInput& x, const QOutput& y, int threads) const {
  const ConvLayout l = conv_layout(p, false);
  const int64_t H = l.in[0], W = l.in[1], OH = l.out[0], OW = l.out[1], PS = l.plane_size();
  const int64_t planes = l.planes();
  const int64_t ab = layout_.act_bytes;
  const int64_t group_elems = planes * PS * cgp_;  // activation elements per group and image
  const uint8_t zp_u8 = static_cast<uint8_t>(kernel_zero_point(x));
  const QuantizeU8Fn quantize = quantize_u8_fn(isa_);
  const PackNhwcU8Fn pack_u8 = pack_u8_fn(isa_);
  const PackNhwcS16Fn pack_s16 = pack_s16_fn(isa_);

  // Per-channel correction: zx * sum(w - zw), less the int32 bias when requantising.
  std::vector<int32_t> corr(static_cast<size_t>(m_));
  const bool requant = y.kind == QEpilogueKind::RequantU8 || y.kind == QEpilogueKind::RequantS8;
  for (int64_t m = 0; m < m_; ++m) {
    uint32_t c = static_cast<uint32_t>(zp_u8) * static_cast<uint32_t>(wsum_[static_cast<size_t>(m)]);
    if (requant && y.bias_i32) c -= static_cast<uint32_t>(y.bias_i32[m]);
    corr[static_cast<size_t>(m)] = static_cast<int32_t>(c);
  }
  std::vector<int64_t> k_off(static_cast<size_t>(ksteps_));
  for (int64_t kh = 0, j = 0; kh < kernel_[0]; ++kh)
    for (int64_t kw = 0; kw < kernel_[1]; ++kw)
      for (int64_t qd = 0; qd < cgp_ / layout_.kg; ++qd)
        k_off[static_cast<size_t>(j++)] = l.tap_offset(kh, kw) * cgp_ + qd * layout_.kg;

  ScratchCache::Lease lease(scratch_, static_cast<size_t>(group_ * group_elems * ab));
  uint8_t* buf = lease.as<uint8_t>();
  const size_t in_bytes = input_elem_bytes(x.kind);
  const int64_t nb = layout_.nb, blocks = (mg_ + nb - 1) / nb;
  const int64_t k = cg_ * kernel_[0] * kernel_[1];
  const int eff_threads = useful_threads(threads, static_cast<double>(m_) * OH * OW * k / 4.0);

  for (int64_t n = 0; n < p.batch; ++n) {
    // 1. Input rows -> position-major planes (quantising fp32 input on the way). Each source
    // row is quantised once, padded with the zero point, then split into the stride's phases.
    const int64_t sw = l.stride[1], padded_len = sw * l.J[1];
    if (l.stride[0] == 1 && sw == 1 && l.pad[0] == 0 && l.pad[1] == 0 && l.J[0] == H && l.J[1] == W) {
      // The planes are the input itself (1x1 convolutions): whole channels at once, not rows.
      parallel_for(eff_threads, group_, [&](int64_t g0, int64_t g1) {
        std::vector<uint8_t> tmp(static_cast<size_t>(cg_ * H * W));
        for (int64_t g = g0; g < g1; ++g) {
          for (int64_t c = 0; c < cg_; ++c) {
            const void* plane = static_cast<const uint8_t*>(x.data) +
                                static_cast<size_t>((n * p.in_channels + g * cg_ + c) * H * W) * in_bytes;
            source_row_u8(x, plane, H * W, 0, 1, H * W, zp_u8, quantize, tmp.data() + c * H * W);
          }
          if (ab == 1)
            pack_u8(tmp.data(), H * W, cg_, cgp_, H * W, 0, buf + g * group_elems, cgp_);
          else
            pack_s16(tmp.data(), H * W, cg_, cgp_, H * W, 0, reinterpret_cast<int16_t*>(buf) + g * group_elems, cgp_);
        }
      });
    } else {
    const int64_t rows = group_ * l.stride[0] * l.J[0];
    parallel_for(eff_threads, rows, [&](int64_t begin, int64_t end) {
      std::vector<uint8_t> tmp(static_cast<size_t>(sw * cg_ * l.J[1])), padded(static_cast<size_t>(padded_len));
      for (int64_t u = begin; u < end; ++u) {
        const int64_t g = u / (l.stride[0] * l.J[0]), rh = (u / l.J[0]) % l.stride[0], jh = u % l.J[0];
        const int64_t ih = jh * l.stride[0] + rh - l.pad[0];
        for (int64_t c = 0; c < cg_; ++c) {
          if (ih < 0 || ih >= H) {
            for (int64_t rw = 0; rw < sw; ++rw)
              std::memset(tmp.data() + (rw * cg_ + c) * l.J[1], zp_u8, static_cast<size_t>(l.J[1]));
            continue;
          }
          const int64_t ch = g * cg_ + c;
          const void* row = static_cast<const uint8_t*>(x.data) +
                            static_cast<size_t>(((n * p.in_channels + ch) * H + ih) * W) * in_bytes;
          uint8_t* dst0 = tmp.data() + c * l.J[1];
          if (sw == 1) {
            source_row_u8(x, row, W, -l.pad[1], 1, l.J[1], zp_u8, quantize, dst0);
            continue;
          }
          source_row_u8(x, row, W, -l.pad[1], 1, padded_len, zp_u8, quantize, padded.data());
          for (int64_t rw = 0; rw < sw; ++rw) {
            uint8_t* d = tmp.data() + (rw * cg_ + c) * l.J[1];
            for (int64_t j = 0; j < l.J[1]; ++j) d[j] = padded[static_cast<size_t>(j * sw + rw)];
          }
        }
        for (int64_t rw = 0; rw < sw; ++rw) {
          const int64_t pos0 = (g * planes + rh * sw + rw) * PS + jh * l.J[1];
          const uint8_t* t = tmp.data() + rw * cg_ * l.J[1];
          if (ab == 1)
            pack_u8(t, l.J[1], cg_, cgp_, l.J[1], 0, buf + pos0 * cgp_, cgp_);
          else
            pack_s16(t, l.J[1], cg_, cgp_, l.J[1], 0, reinterpret_cast<int16_t*>(buf) + pos0 * cgp_, cgp_);
        }
      }
    });
    }
    // 2. Output segments (rows, or runs of a flat plane).
    const Segments seg = output_segments(l, eff_threads);
    parallel_for(eff_threads, group_ * seg.count, [&](int64_t begin, int64_t end) {
      for (int64_t u = begin; u < end; ++u) {
        const int64_t g = u / seg.count;
        int64_t src_pos = 0, dst_pos = 0, len = 0;
        seg.locate(u % seg.count, &src_pos, &dst_pos, &len);
        QTileRows t;
        t.src = buf + (g * group_elems + src_pos * cgp_) * ab;
        t.step = cgp_;
        t.k_off = k_off.data();
        t.ksteps = ksteps_;
        t.n = len;
        t.w = packed_.data() + g * blocks * ksteps_ * nb * layout_.kg * layout_.w_bytes;
        t.m = mg_;
        set_epilogue(y, corr.data(), g * mg_, (n * m_ + g * mg_) * OH * OW + dst_pos, OH * OW, t);
        t.channel_major = true;
        tile_fn_(t);
      }
    });
  }
}

void QConvFast::run_via_f32(const ConvParams& p, const QInput& x, const QOutput& y, int threads) const {
  const ConvLayout l = conv_layout(p, false);
  const int64_t H = l.in[0], W = l.in[1], OH = l.out[0], OW = l.out[1], PS = l.plane_size();
  const int64_t planes = l.planes();
  const int32_t zp = kernel_zero_point(x);
  const uint8_t zp_u8 = static_cast<uint8_t>(zp);
  const QuantizeU8Fn quantize = quantize_u8_fn(isa_);
  const ChainQuantizeFn quantize_centered = chain_quantize_fn(isa_);  // F32 store: q - zp as floats
  const int64_t plane_elems = p.in_channels * planes * PS;
  const int64_t out_image = m_ * OH * OW;
  const size_t in_bytes = input_elem_bytes(x.kind);
  const bool to_float = y.kind == QEpilogueKind::Dequant;
  ScratchCache::Lease lease(scratch_, static_cast<size_t>(plane_elems) * sizeof(float));
  ScratchCache::Lease acc_lease(scratch2_, to_float ? 0 : static_cast<size_t>(out_image) * sizeof(float));
  float* buf = lease.as<float>();
  float* acc = acc_lease.as<float>();
  const int64_t k = cg_ * kernel_[0] * kernel_[1];
  const int eff_threads = useful_threads(threads, static_cast<double>(m_) * OH * OW * k);
  ConvParams one = p;
  one.batch = 1;
  for (int64_t n = 0; n < p.batch; ++n) {
    // Planes of (x - zx) as exact small integers in fp32, padding 0: each source row quantised
    // once, padded with the zero point, then split into the stride's phases.
    const int64_t sw = l.stride[1], padded_len = sw * l.J[1];
    const int64_t rows = p.in_channels * l.stride[0] * l.J[0];
    parallel_for(eff_threads, rows, [&](int64_t begin, int64_t end) {
      std::vector<uint8_t> padded(static_cast<size_t>(padded_len));
      for (int64_t u = begin; u < end; ++u) {
        const int64_t c = u / (l.stride[0] * l.J[0]), rh = (u / l.J[0]) % l.stride[0], jh = u % l.J[0];
        const int64_t ih = jh * l.stride[0] + rh - l.pad[0];
        if (ih < 0 || ih >= H) {
          for (int64_t rw = 0; rw < sw; ++rw) {
            float* d = buf + (c * planes + rh * sw + rw) * PS + jh * l.J[1];
            std::fill(d, d + l.J[1], 0.0f);
          }
          continue;
        }
        const void* row = static_cast<const uint8_t*>(x.data) +
                          static_cast<size_t>(((n * p.in_channels + c) * H + ih) * W) * in_bytes;
        if (sw == 1 && x.kind == QInputKind::F32) {
          // fp32 input quantised straight into the plane row, the padding 0 (the zero point less
          // itself): no byte row and no scalar widening pass (learned_filter's exit conv).
          float* d = buf + (c * planes + rh) * PS + jh * l.J[1];
          const int64_t lo = std::clamp<int64_t>(l.pad[1], 0, l.J[1]);
          const int64_t hi = std::clamp<int64_t>(l.pad[1] + W, lo, l.J[1]);
          std::fill(d, d + lo, 0.0f);
          quantize_centered(static_cast<const float*>(row) + (lo - l.pad[1]), hi - lo, x.scale, x.zero_point,
                            ChainStore::F32, d + lo);
          std::fill(d + hi, d + l.J[1], 0.0f);
          continue;
        }
        source_row_u8(x, row, W, -l.pad[1], 1, padded_len, zp_u8, quantize, padded.data());
        for (int64_t rw = 0; rw < sw; ++rw) {
          float* d = buf + (c * planes + rh * sw + rw) * PS + jh * l.J[1];
          const uint8_t* q = padded.data() + rw;
          for (int64_t j = 0; j < l.J[1]; ++j) d[j] = static_cast<float>(static_cast<int32_t>(q[j * sw]) - zp);
        }
      }
    });
    if (to_float) {
      ConvF32Epilogue ep;
      ep.bias = y.bias;
      ep.residual = y.residual ? y.residual + n * out_image : nullptr;
      ep.clamp = y.clamp;
      ep.lo = y.lo;
      ep.hi = y.hi;
      f32_->run_planes(one, l, buf, plane_elems, ep, static_cast<float*>(y.dst) + n * out_image, eff_threads, y.scale);
      continue;
    }
    f32_->run_planes(one, l, buf, plane_elems, ConvF32Epilogue(), acc, eff_threads, nullptr);
    // The sums are exact integers; finish in int32 (wrapping, like the accumulation).
    const int64_t plane_out = OH * OW;
    const bool u8 = y.kind == QEpilogueKind::RequantU8;
    for (int64_t m = 0; m < m_; ++m) {
      const float* a = acc + m * plane_out;
      const int64_t base = n * out_image + m * plane_out;
      if (y.kind == QEpilogueKind::Int32) {
        int32_t* d = static_cast<int32_t*>(y.dst) + base;
        for (int64_t i = 0; i < plane_out; ++i) d[i] = static_cast<int32_t>(a[i]);
        continue;
      }
      requant_(a, plane_out, y.bias_i32 ? y.bias_i32[m] : 0, y.scale[m], y.zero_point, u8,
               static_cast<uint8_t*>(y.dst) + base);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Integer GEMM

std::string QGemmFast::declines(int64_t k, int64_t n, const QWeights& b, bool b_transposed) {
  if (k < 1 || n < 1) return "empty matrix";
  int32_t max_abs = 0;
  bool fits = true;
  effective_weights(b, b_transposed ? n : k, b_transposed ? k : n, b_transposed, &max_abs, &fits);
  if (!fits) return "b - b_zero_point leaves the int8 range";
  return "";
}

QGemmFast::QGemmFast(Isa isa, int64_t k, int64_t n, const QWeights& b, bool b_transposed)
    : isa_(isa), name_(""), tile_fn_(nullptr), k_(k), n_(n) {
  q_kernel_for(isa, &tile_fn_, &layout_, &name_);
  int32_t max_abs = 0;
  // e[kk][nn]; a transposed B ([N, K]) has its zero points per row of the stored matrix.
  std::vector<int32_t> stored = effective_weights(b, b_transposed ? n : k, b_transposed ? k : n, b_transposed, &max_abs);
  auto e = [&](int64_t kk, int64_t nn) {
    return stored[static_cast<size_t>(b_transposed ? nn * k + kk : kk * n + nn)];
  };
  wsum_.assign(static_cast<size_t>(n), 0);
  for (int64_t nn = 0; nn < n; ++nn) {
    uint32_t s = 0;
    for (int64_t kk = 0; kk < k; ++kk) s += static_cast<uint32_t>(e(kk, nn));
    wsum_[static_cast<size_t>(nn)] = static_cast<int32_t>(s);
  }
  const int64_t nb = layout_.nb, kg = layout_.kg;
  kp_ = round_up(k, kg);
  ksteps_ = kp_ / kg;
  const int64_t blocks = (n + nb - 1) / nb;
  packed_.assign(static_cast<size_t>(blocks * ksteps_ * nb * kg * layout_.w_bytes), 0);
  for (int64_t bl = 0; bl < blocks; ++bl)
    for (int64_t j = 0; j < ksteps_; ++j)
      for (int64_t i = 0; i < nb; ++i) {
        const int64_t nn = bl * nb + i;
        if (nn >= n) continue;
        for (int64_t u = 0; u < kg; ++u) {
          const int64_t kk = j * kg + u;
          if (kk >= k) continue;
          put_weight(packed_, layout_, static_cast<size_t>(((bl * ksteps_ + j) * nb + i) * kg + u), e(kk, nn));
        }
      }
  k_off_.resize(static_cast<size_t>(ksteps_));
  for (int64_t j = 0; j < ksteps_; ++j) k_off_[static_cast<size_t>(j)] = j * kg;
}

void QGemmFast::run(int64_t rows, const QInput& a, const QOutput& y, int64_t ld_y, int threads) const {
  if (rows <= 0) return;
  const int64_t ab = layout_.act_bytes;
  const uint8_t zp_u8 = static_cast<uint8_t>(kernel_zero_point(a));
  const QuantizeU8Fn quantize = quantize_u8_fn(isa_);
  const bool requant = y.kind == QEpilogueKind::RequantU8 || y.kind == QEpilogueKind::RequantS8;
  // One scratch block: the rows as kernel values, then the per-column corrections (a tiny MLP
  // row must not pay for an allocation).
  const size_t act_bytes = static_cast<size_t>(round_up(rows * kp_ * ab, 64));
  const size_t corr_bytes = static_cast<size_t>(round_up(n_ * static_cast<int64_t>(sizeof(int32_t)), 64));
  // fp32 rows that need padding are quantised into a staging area first.
  const bool staged = a.kind == QInputKind::F32 && !(ab == 1 && kp_ == k_);
  ScratchCache::Lease lease(scratch_, act_bytes + corr_bytes + (staged ? static_cast<size_t>(rows * k_) : 0));
  uint8_t* buf = lease.as<uint8_t>();
  int32_t* corr = reinterpret_cast<int32_t*>(buf + act_bytes);
  uint8_t* staging = buf + act_bytes + corr_bytes;
  for (int64_t nn = 0; nn < n_; ++nn) {
    uint32_t c = static_cast<uint32_t>(zp_u8) * static_cast<uint32_t>(wsum_[static_cast<size_t>(nn)]);
    if (requant && y.bias_i32) c -= static_cast<uint32_t>(y.bias_i32[nn]);
    corr[nn] = static_cast<int32_t>(c);
  }
  const size_t in_bytes = input_elem_bytes(a.kind);
  const size_t ob = out_bytes(y.kind);
  const int64_t chunk = layout_.nb;  // rows per tile
  const int64_t chunks = (rows + chunk - 1) / chunk;
  const int eff = useful_threads(threads, static_cast<double>(rows) * k_ * n_ / 4.0);
  parallel_for(eff, chunks, [&](int64_t begin, int64_t end) {
    const int64_t r0 = begin * chunk, r1 = std::min(rows, end * chunk);
    // Rows of A as kernel values, K padded with zeros (their weights are zero too). fp32 rows
    // that need no padding are quantised in one call (a row of 6 features is too short for
    // the vector loop on its own).
    if (a.kind == QInputKind::F32 && ab == 1 && kp_ == k_) {
      quantize(static_cast<const float*>(a.data) + r0 * k_, (r1 - r0) * k_, a.scale, a.zero_point, buf + r0 * kp_);
    } else if (staged) {
      uint8_t* q = staging + r0 * k_;
      quantize(static_cast<const float*>(a.data) + r0 * k_, (r1 - r0) * k_, a.scale, a.zero_point, q);
      for (int64_t r = r0; r < r1; ++r) {
        const uint8_t* s = q + (r - r0) * k_;
        if (ab == 1) {
          uint8_t* d = buf + r * kp_;
          std::memcpy(d, s, static_cast<size_t>(k_));
          std::memset(d + k_, 0, static_cast<size_t>(kp_ - k_));
        } else {
          int16_t* d = reinterpret_cast<int16_t*>(buf) + r * kp_;
          for (int64_t i = 0; i < k_; ++i) d[i] = s[i];
          for (int64_t i = k_; i < kp_; ++i) d[i] = 0;
        }
      }
    } else {
    for (int64_t r = r0; r < r1; ++r) {
      const void* row = static_cast<const uint8_t*>(a.data) + static_cast<size_t>(r * k_) * in_bytes;
      if (ab == 1) {
        uint8_t* d = buf + r * kp_;
        source_row_u8(a, row, k_, 0, 1, k_, zp_u8, quantize, d);
        std::memset(d + k_, 0, static_cast<size_t>(kp_ - k_));
      } else {
        int16_t* d = reinterpret_cast<int16_t*>(buf) + r * kp_;
        uint8_t tmp[256];
        for (int64_t k0 = 0; k0 < k_; k0 += 256) {
          const int64_t len = std::min<int64_t>(256, k_ - k0);
          source_row_u8(a, static_cast<const uint8_t*>(row) + static_cast<size_t>(k0) * in_bytes, len, 0, 1, len, zp_u8,
                        quantize, tmp);
          for (int64_t i = 0; i < len; ++i) d[k0 + i] = tmp[i];
        }
        for (int64_t i = k_; i < kp_; ++i) d[i] = 0;
      }
    }
    }
    QTileRows t;
    t.src = buf + r0 * kp_ * ab;
    t.step = kp_;
    t.k_off = k_off_.data();
    t.ksteps = ksteps_;
    t.n = r1 - r0;
    t.w = packed_.data();
    t.m = n_;
    t.kind = y.kind;
    t.corr = corr;
    t.scale = y.scale;
    t.bias = y.bias;
    t.res = y.residual ? y.residual + r0 * ld_y : nullptr;
    t.ld_res = ld_y;
    t.clamp = y.clamp;
    t.lo = y.lo;
    t.hi = y.hi;
    t.zero_point = y.zero_point;
    t.dst = static_cast<uint8_t*>(y.dst) + static_cast<size_t>(r0 * ld_y) * ob;
    t.ld_dst = ld_y;
    t.channel_major = false;
    tile_fn_(t);
  });
}

// ---------------------------------------------------------------------------------------------
// fp32 GEMM: lanes are B's columns, the row kernel's "channels" are A's rows (packed per call),
// its "positions" B's columns; a row bias rides in the residual slot with stride 0.

GemmF32Fast::GemmF32Fast(Isa isa, int64_t k, int64_t n, const float* b, bool b_transposed)
    : isa_(isa), name_(""), fn_(conv_f32_row_fn(isa)), mr_(1), k_(k), n_(n) {
  name_ = isa == Isa::Ref ? "sgemm_ref" : isa == Isa::Avx2 ? "sgemm_avx2_fma" : "sgemm_avx512";
  packed_.resize(static_cast<size_t>(k * n));
  for (int64_t kk = 0; kk < k; ++kk)
    for (int64_t nn = 0; nn < n; ++nn)
      packed_[static_cast<size_t>(kk * n + nn)] = b_transposed ? b[nn * k + kk] : b[kk * n + nn];
  k_off_.resize(static_cast<size_t>(k));
  for (int64_t kk = 0; kk < k; ++kk) k_off_[static_cast<size_t>(kk)] = kk * n;
}

void GemmF32Fast::run(int64_t rows, const float* a, int64_t lda, const float* bias, bool clamp, float lo, float hi,
                      float* y, int64_t ld_y, int threads) const {
  if (rows <= 0) return;
  const int mr = conv_f32_block_rows(isa_level(isa_), rows);
  const int64_t blocks = (rows + mr - 1) / mr;
  const int eff = useful_threads(threads, static_cast<double>(rows) * k_ * n_);
  parallel_for(eff, blocks, [&](int64_t begin, int64_t end) {
    for (int64_t bl = begin; bl < end; ++bl) {
      // A's rows serve as the "weights" in place: row i of the block at a + i * lda. The last
      // block may be short; its missing rows repeat the last row (computed, not stored).
      const int64_t valid = std::min<int64_t>(mr, rows - bl * mr);
      ConvF32Row r;
      r.src = packed_.data();
      r.k_off = k_off_.data();
      r.k = k_;
      r.n = n_;
      r.w = a + bl * mr * lda;
      r.w_kstride = 1;
      r.w_istride = lda;
      r.w_rows = valid;
      r.mr = mr;
      r.m = valid;
      r.dst = y + bl * mr * ld_y;
      r.ld_dst = ld_y;
      r.res = bias;
      r.ld_res = 0;
      r.clamp = clamp;
      r.lo = lo;
      r.hi = hi;
      fn_(r);
    }
  });
}

}  // namespace tinyq::kernels
