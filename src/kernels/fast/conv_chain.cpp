// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// ConvChain (conv_chain.h): weight packing, the per-size plan (buffer geometry and tap offsets),
// and the run: the input into the first layer's buffer, each layer's rows through its
// micro-kernel straight into the next layer's buffer (the dynamic chains through a float buffer,
// its range and the quantisation DynamicQuantizeLinear would do), and the output.
//
// Buffers: layer i reads buffer i % 2, [n][hp][wp][cs] in its input format, hp x wp the input
// with the layer's pads around it (the halo, holding 0 or the zero point). Integer sums and the
// zero points: with kernel values x (uint8, or int8 + 128) and zero point z of the input,
//     sum_k w_k (x_k - z) = sum_k w_k x_k - z * sum_k w_k
// so the integer dense kernels subtract corr = z * wsum (less QLinearConv's B, which adds);
// the halo holds z, whose terms cancel. The float-exact kernels read x - z directly (halo 0).

#include "kernels/fast/conv_chain.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>

#include "common/qmath.h"
#include "kernels/fast/thread_pool.h"

namespace tinyq::kernels {

namespace {

inline int64_t round_up(int64_t v, int64_t to) { return (v + to - 1) / to * to; }

size_t store_size(ChainStore s) { return s == ChainStore::F32 ? 4 : s == ChainStore::U8 ? 1 : 2; }

bool is_depthwise(const ChainLayerDesc& l) {
  return l.group > 1 && l.group == l.in_channels && l.group == l.out_channels;
}

int64_t taps_of(const ChainLayerDesc& l) { return l.kernel[0] * l.kernel[1]; }

// Integer layers accumulate in fp32 when depthwise or narrow (fewer than 4 input channels: no
// 4-byte k-step to fill); the integer kernels take the rest.
bool float_exact(const ChainLayerDesc& l) { return is_depthwise(l) || l.in_channels < 4; }

bool fits_int8(const ChainLayerDesc& l) {
  const int64_t count = l.out_channels * taps_of(l) * (is_depthwise(l) ? 1 : l.in_channels);
  for (int64_t k = 0; k < count; ++k)
    if (l.w_int[k] < -128 || l.w_int[k] > 127) return false;
  return true;
}

// The narrow entry layer of an integer chain (fewer than 4 input channels: an image) reads a
// planar input ([c][h][w] per image, kernel values) through the integer kernels: a k-step is
// kg consecutive columns of one kernel row (weights past the kernel's width are 0), so the
// entry convolution runs on vpdpbusd / vpmaddwd like the rest. Needs an undilated row.
bool planar_entry(const ChainLayerDesc& l, size_t index, bool integer) {
  return integer && index == 0 && !is_depthwise(l) && l.in_channels < 4 && l.dilation[1] == 1 && fits_int8(l);
}

// The first layer's input channel stride: the real count for a narrow dense layer (the fp32
// kernels read any stride), else padded to the 16 lanes of a vector.
int64_t first_stride(const ChainLayerDesc& l) {
  return !is_depthwise(l) && l.in_channels < 4 ? l.in_channels : round_up(l.in_channels, 16);
}

// Fills `count` elements of a buffer of format `store` with the "nothing" value: 0.0f, or the
// zero point z for kernel values.
void fill_value(void* dst, ChainStore store, int32_t z, int64_t count) {
  if (count <= 0) return;
  switch (store) {
    case ChainStore::F32: std::fill_n(static_cast<float*>(dst), count, 0.0f); break;
    case ChainStore::U8: std::memset(dst, z, static_cast<size_t>(count)); break;
    case ChainStore::S16: std::fill_n(static_cast<int16_t*>(dst), count, static_cast<int16_t>(z)); break;
  }
}

// The halo of a [n][hp][wp][cs] buffer whose interior is h x w at (pt, pl).
void fill_halo(uint8_t* buf, ChainStore store, int32_t z, int64_t n, int64_t hp, int64_t wp, int64_t cs, int64_t pt,
               int64_t pl, int64_t h, int64_t w) {
  if (hp == h && wp == w) return;
  const size_t es = store_size(store);
  const int64_t row = wp * cs;
  // The halo is h + 1 contiguous runs: the top rows with the first row's left pad, then from
  // each row's right pad through the next row's left pad (the last: through the bottom rows).
  // One fill each, not two per row (small fills are mostly call overhead).
  for (int64_t img = 0; img < n; ++img) {
    uint8_t* b = buf + static_cast<size_t>(img * hp * row) * es;
    fill_value(b, store, z, pt * row + pl * cs);
    for (int64_t r = 0; r < h; ++r) {
      const int64_t start = ((pt + r) * wp + pl + w) * cs;
      const int64_t end = r + 1 < h ? ((pt + r + 1) * wp + pl) * cs : hp * row;
      fill_value(b + static_cast<size_t>(start) * es, store, z, end - start);
    }
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------

std::string ConvChain::declines(const ChainDesc& d) {
  if (d.layers.empty()) return "no layers";
  // A leading QuantizeLinear must quantise to the zero point the first layer reads with (its
  // padding and the centred values of the float-exact kernels use that one).
  if (d.kind == ChainKind::Static && d.quantize_input && d.in_zero_point != d.layers.front().x_zero_point)
    return "the input quantisation's zero point differs from the first layer's";
  for (size_t i = 0; i < d.layers.size(); ++i) {
    const ChainLayerDesc& l = d.layers[i];
    const std::string at = "layer " + std::to_string(i) + ": ";
    if (l.in_channels < 1 || l.out_channels < 1) return at + "no channels";
    if (l.group != 1 && !is_depthwise(l)) return at + "grouped, not depthwise";
    for (int a = 0; a < 2; ++a)
      if (l.kernel[a] < 1 || l.stride[a] < 1 || l.dilation[a] < 1 || l.pad_begin[a] < 0 || l.pad_end[a] < 0)
        return at + "bad window";
    if (is_depthwise(l) && taps_of(l) > kChainDwMaxTaps) return at + "depthwise kernel too large";
    if (i > 0 && l.in_channels != d.layers[i - 1].out_channels) return at + "channels do not chain";
    if (d.kind == ChainKind::F32) {
      if (!l.w_f32) return at + "no weights";
      continue;
    }
    if (!l.w_int || !l.scale) return at + "no integer weights or scales";
    const int64_t per_out = is_depthwise(l) ? taps_of(l) : taps_of(l) * l.in_channels;
    const int64_t count = l.out_channels * per_out;
    int64_t max_abs = 0;
    for (int64_t k = 0; k < count; ++k)
      max_abs = std::max<int64_t>(max_abs, std::abs(static_cast<int64_t>(l.w_int[k])));
    if (planar_entry(l, i, true)) {
      // integer kernels, checked above
    } else if (float_exact(l)) {
      // Every partial sum of (x - zx)(w - zw) must stay an exact float: |x - zx| <= 255.
      if (per_out * 255 * max_abs >= (int64_t{1} << 24)) return at + "sums too large for exact fp32 accumulation";
    } else if (!fits_int8(l)) {
      return at + "w - w_zero_point leaves the int8 range";
    }
    if (d.kind == ChainKind::Static) {
      for (int32_t z : {l.x_zero_point, l.y_zero_point})
        if (z < 0 || z > 255) return at + "zero point out of range";
      if (i > 0 && l.x_zero_point != d.layers[i - 1].y_zero_point) return at + "zero points do not chain";
    }
  }
  return "";
}

ConvChain::ConvChain(Isa isa, const ChainDesc& d)
    : kind_(d.kind),
      data_u8_(d.data_u8),
      mean_(d.mean),
      mean_scale_(d.mean_scale),
      quantize_input_(d.kind == ChainKind::Static && d.quantize_input) {
  in_q_.scale = d.in_scale;
  in_q_.zero_point = d.in_zero_point;
  name_ = std::string("conv_chain_") + isa_name(isa);
  dense_f32_ = kernel_at(isa, chain_dense_f32_ref, TINYQ_X86_KERNEL(chain_dense_f32_avx2),
                         TINYQ_X86_KERNEL(chain_dense_f32_avx512));
  dw_ = kernel_at(isa, chain_dw_f32_ref, TINYQ_X86_KERNEL(chain_dw_f32_avx2), TINYQ_X86_KERNEL(chain_dw_f32_avx512));
  dense_int_ = kernel_at(isa, chain_dense_u8_ref, TINYQ_X86_KERNEL(chain_dense_s16_avx2), nullptr,
                         TINYQ_X86_KERNEL(chain_dense_u8_avx512vnni));
  // The AVX2 integer kernel (AVX-512 without VNNI too) pairs int16 values; the others read bytes.
  int_store_ = dense_int_ == TINYQ_X86_KERNEL(chain_dense_s16_avx2) ? ChainStore::S16 : ChainStore::U8;
  quantize_ = chain_quantize_fn(isa);
  minmax_ = minmax_fn(isa);
  mean_fn_ = kernel_at(isa, chain_mean_ref, nullptr, TINYQ_X86_KERNEL(chain_mean_avx512));

  const bool integer = kind_ != ChainKind::F32;
  for (size_t i = 0; i < d.layers.size(); ++i) {
    const ChainLayerDesc& s = d.layers[i];
    Layer l;
    l.c = s.in_channels;
    l.m = s.out_channels;
    l.ms = round_up(l.m, 16);
    l.cs = i == 0 ? first_stride(s) : layers_.back().ms;
    l.kh = s.kernel[0];
    l.kw = s.kernel[1];
    l.sh = s.stride[0];
    l.sw = s.stride[1];
    l.dh = s.dilation[0];
    l.dw = s.dilation[1];
    l.pt = s.pad_begin[0];
    l.pl = s.pad_begin[1];
    l.pb = s.pad_end[0];
    l.pr = s.pad_end[1];
    l.clamp = s.clamp;
    l.lo = s.lo;
    l.hi = s.hi;
    l.x_zp = s.x_zero_point;
    l.y_zp = s.y_zero_point;
    const int64_t taps = l.kh * l.kw;
    auto wval = [&](int64_t m, int64_t c, int64_t t) -> float {  // dense: [M][C][taps]; depthwise: c = 0
      const int64_t cg = is_depthwise(s) ? 1 : l.c;
      const int64_t at = (m * cg + c) * taps + t;
      return integer ? static_cast<float>(s.w_int[at]) : s.w_f32[at];
    };
    // The integer kernels' weights, packed per 16-channel block as [block][k-step][16][kg]
    // (int8 for U8 input, int16 for S16), with each channel's weight sum. place(c, t) gives the
    // (k-step, lane) of input channel c, tap t.
    const int64_t kg = int_store_ == ChainStore::U8 ? 4 : 2;
    auto pack_int = [&](int64_t ksteps, auto place) {
      const size_t total = static_cast<size_t>(l.ms * ksteps * kg);
      if (kg == 4)
        l.w8.assign(total, 0);
      else
        l.w16.assign(total, 0);
      l.wsum.assign(static_cast<size_t>(l.ms), 0);
      for (int64_t m = 0; m < l.m; ++m) {
        uint32_t sum = 0;
        for (int64_t c = 0; c < l.c; ++c)
          for (int64_t t = 0; t < taps; ++t) {
            const int32_t v = s.w_int[(m * l.c + c) * taps + t];
            sum += static_cast<uint32_t>(v);
            const auto [j, lane] = place(c, t);
            const size_t at = static_cast<size_t>((((m / 16) * ksteps + j) * 16 + m % 16) * kg + lane);
            if (kg == 4)
              l.w8[at] = static_cast<int8_t>(v);
            else
              l.w16[at] = static_cast<int16_t>(v);
          }
        l.wsum[static_cast<size_t>(m)] = static_cast<int32_t>(sum);
      }
    };
    if (is_depthwise(s)) {
      // Centred floats in for the integer chains too: a depthwise layer is bound by its
      // multiply-adds, and widening 8-bit input at every load would add to them.
      l.kernel = Kernel::DwF32;
      l.in_store = ChainStore::F32;
      l.wf.assign(static_cast<size_t>(taps * l.ms), 0.0f);
      for (int64_t t = 0; t < taps; ++t)
        for (int64_t m = 0; m < l.m; ++m) l.wf[static_cast<size_t>(t * l.ms + m)] = wval(m, 0, t);
    } else if (planar_entry(s, i, integer)) {
      l.kernel = Kernel::DenseInt;
      l.planar = true;
      l.in_store = int_store_;
      l.cs = 1;
      // A k-step: kg consecutive columns of one kernel row of one channel (the planar rows).
      const int64_t groups = (l.kw + kg - 1) / kg;
      pack_int(l.c * l.kh * groups, [&](int64_t c, int64_t t) {
        return std::make_pair((c * l.kh + t / l.kw) * groups + t % l.kw / kg, t % l.kw % kg);
      });
    } else if (!integer || float_exact(s)) {
      l.kernel = Kernel::DenseF32;
      l.in_store = ChainStore::F32;
      const int64_t k = taps * l.c;  // k-step order: tap-major, channel-minor (the plan's k_off)
      l.wf.assign(static_cast<size_t>(l.ms * k), 0.0f);
      for (int64_t m = 0; m < l.m; ++m)
        for (int64_t t = 0; t < taps; ++t)
          for (int64_t c = 0; c < l.c; ++c)
            l.wf[static_cast<size_t>(((m / 16) * k + t * l.c + c) * 16 + m % 16)] = wval(m, c, t);
    } else {
      l.kernel = Kernel::DenseInt;
      l.in_store = int_store_;
      // A k-step: kg consecutive channels of one tap (channels-last input).
      const int64_t groups = (l.c + kg - 1) / kg;
      pack_int(taps * groups, [&](int64_t c, int64_t t) { return std::make_pair(t * groups + c / kg, c % kg); });
    }
    if (s.bias) {
      l.bias.assign(static_cast<size_t>(l.ms), 0.0f);
      std::copy(s.bias, s.bias + l.m, l.bias.begin());
    }
    if (integer) {
      l.scale.assign(static_cast<size_t>(l.ms), 0.0f);
      std::copy(s.scale, s.scale + l.m, l.scale.begin());
    }
    if (kind_ == ChainKind::Static) {
      // corr = z * wsum - B for the integer kernels, -B for the float-exact ones (int32, wrapping).
      l.bias_i32.assign(static_cast<size_t>(l.ms), 0);
      for (int64_t m = 0; m < l.m; ++m) {
        uint32_t c = l.kernel == Kernel::DenseInt
                         ? static_cast<uint32_t>(l.x_zp) * static_cast<uint32_t>(l.wsum[static_cast<size_t>(m)])
                         : 0u;
        if (s.bias_i32) c -= static_cast<uint32_t>(s.bias_i32[m]);
        l.bias_i32[static_cast<size_t>(m)] = static_cast<int32_t>(c);
      }
    }
    if (kind_ == ChainKind::Static && l.kernel != Kernel::DenseInt) {
      // The fp32 kernels' exact sums can take corr as a float when no sum less corr can leave
      // the exact range: |sum| <= taps * channels * 255 * max|w|.
      const int64_t per_out = (is_depthwise(s) ? 1 : l.c) * taps;
      int64_t max_w = 0, max_corr = 0;
      for (int64_t k = 0; k < l.m * per_out; ++k) max_w = std::max<int64_t>(max_w, std::abs(int64_t{s.w_int[k]}));
      for (int32_t c : l.bias_i32) max_corr = std::max<int64_t>(max_corr, std::abs(int64_t{c}));
      if (per_out * 255 * max_w + max_corr < (int64_t{1} << 24)) l.corr_f.assign(l.bias_i32.begin(), l.bias_i32.end());
    }
    layers_.push_back(std::move(l));
  }
  if (profile_enabled()) part_ns_.reset(new std::atomic<int64_t>[2 * layers_.size()]());
}

std::vector<std::pair<std::string, double>> ConvChain::profile() const {
  std::vector<std::pair<std::string, double>> parts;
  if (!part_ns_) return parts;
  for (size_t i = 0; i < layers_.size(); ++i) {
    const Layer& l = layers_[i];
    const std::string at = "layer " + std::to_string(i) + ": ";
    std::string what = l.kernel == Kernel::DwF32 ? "depthwise " : "";
    what += std::to_string(l.kh) + "x" + std::to_string(l.kw) + " conv";
    if (l.sh != 1 || l.sw != 1) what += ", stride " + std::to_string(l.sh) + "x" + std::to_string(l.sw);
    what += ", " + std::to_string(l.c) + " -> " + std::to_string(l.m) + " channels";
    parts.emplace_back(at + what, static_cast<double>(part_ns_[2 * i].load()));
    if (kind_ == ChainKind::Dynamic && i + 1 < layers_.size()) {
      parts.emplace_back(at + "its output quantised (DynamicQuantizeLinear)",
                         static_cast<double>(part_ns_[2 * i + 1].load()));
    }
  }
  return parts;
}

bool ConvChain::out_size(int64_t h, int64_t w, int64_t* oh, int64_t* ow, std::string* why) const {
  for (size_t i = 0; i < layers_.size(); ++i) {
    const Layer& l = layers_[i];
    const int64_t eh = (l.kh - 1) * l.dh + 1, ew = (l.kw - 1) * l.dw + 1;
    const int64_t ph = h + l.pt + l.pb, pw = w + l.pl + l.pr;
    if (h < 1 || w < 1 || ph < eh || pw < ew) {
      if (why)
        *why = "layer " + std::to_string(i) + " has no output position for a " + std::to_string(h) + "x" +
               std::to_string(w) + " input";
      return false;
    }
    h = (ph - eh) / l.sh + 1;
    w = (pw - ew) / l.sw + 1;
  }
  *oh = h;
  *ow = w;
  return true;
}

size_t ConvChain::buffer_bytes(size_t layer, const Geometry& g, int64_t n) const {
  const Layer& l = layers_[layer];
  return static_cast<size_t>(n * (l.planar ? l.c : 1) * g.hp * g.wp * l.cs) * store_size(l.in_store) + 64;
}

std::shared_ptr<const ConvChain::Plan> ConvChain::plan_for(int64_t n, int64_t h, int64_t w) const {
  {
    std::lock_guard<std::mutex> lock(plan_mu_);
    if (plan_ && plan_->n == n && plan_->h == h && plan_->w == w) return plan_;
  }
  auto plan = std::make_shared<Plan>();
  plan->n = n;
  plan->h = h;
  plan->w = w;
  for (size_t i = 0; i < layers_.size(); ++i) {
    const Layer& l = layers_[i];
    Geometry g;
    g.h = h;
    g.w = w;
    g.hp = h + l.pt + l.pb;
    g.wp = w + l.pl + l.pr;
    g.oh = (g.hp - ((l.kh - 1) * l.dh + 1)) / l.sh + 1;
    g.ow = (g.wp - ((l.kw - 1) * l.dw + 1)) / l.sw + 1;
    const int64_t row = g.wp * l.cs;
    if (l.planar) {
      const int64_t kg = l.in_store == ChainStore::U8 ? 4 : 2;
      for (int64_t c = 0; c < l.c; ++c)
        for (int64_t a = 0; a < l.kh; ++a)
          for (int64_t b = 0; b < l.kw; b += kg) g.k_off.push_back(c * g.hp * g.wp + a * l.dh * g.wp + b);
    }
    for (int64_t a = 0; a < (l.planar ? 0 : l.kh); ++a)
      for (int64_t b = 0; b < l.kw; ++b) {
        const int64_t tap = a * l.dh * row + b * l.dw * l.cs;
        if (l.kernel == Kernel::DwF32) {
          g.k_off.push_back(tap);
        } else if (l.kernel == Kernel::DenseF32) {
          for (int64_t c = 0; c < l.c; ++c) g.k_off.push_back(tap + c);
        } else {
          const int64_t kg = l.in_store == ChainStore::U8 ? 4 : 2;
          for (int64_t c = 0; c < l.c; c += kg) g.k_off.push_back(tap + c);
        }
      }
    plan->buf_bytes = std::max(plan->buf_bytes, buffer_bytes(i, g, n));
    const size_t out_elems = static_cast<size_t>(n * g.oh * g.ow * l.ms);
    if (i + 1 < layers_.size() && kind_ == ChainKind::Dynamic)
      plan->raw_bytes = std::max(plan->raw_bytes, out_elems * 4 + 64);
    if (i + 1 == layers_.size()) plan->out_bytes = out_elems * 4 + 64;
    h = g.oh;
    w = g.ow;
    plan->g.push_back(std::move(g));
  }
  std::lock_guard<std::mutex> lock(plan_mu_);
  plan_ = plan;
  return plan;
}

void ConvChain::fill_input(const void* x, int64_t n, int64_t h, int64_t w, const Geometry& g0, const qmath::QParams& q,
                           int32_t zk, uint8_t* buf) const {
  const Layer& l0 = layers_.front();
  const int32_t halo = l0.in_store == ChainStore::F32 ? 0 : zk;
  const size_t es = store_size(l0.in_store);
  const int64_t planes = l0.planar ? n * l0.c : n;
  if (!l0.planar && l0.cs > l0.c)
    fill_value(buf, l0.in_store, halo, n * g0.hp * g0.wp * l0.cs);
  else
    fill_halo(buf, l0.in_store, halo, planes, g0.hp, g0.wp, l0.cs, l0.pt, l0.pl, h, w);
  const bool contiguous = l0.planar || l0.cs == 1;
  std::vector<uint8_t> tmp(contiguous ? 0 : static_cast<size_t>(w) * es);
  const uint8_t flip = data_u8_ ? 0 : 0x80;
  for (int64_t img = 0; img < n; ++img)
    for (int64_t c = 0; c < l0.c; ++c)
      for (int64_t r = 0; r < h; ++r) {
        const int64_t src_at = ((img * l0.c + c) * h + r) * w;
        const int64_t dst_at = l0.planar ? ((img * l0.c + c) * g0.hp + r + l0.pt) * g0.wp + l0.pl
                                         : ((img * g0.hp + r + l0.pt) * g0.wp + l0.pl) * l0.cs + c;
        uint8_t* dst = buf + static_cast<size_t>(dst_at) * es;
        uint8_t* row = contiguous ? dst : tmp.data();
        if (kind_ == ChainKind::F32) {
          std::memcpy(row, static_cast<const float*>(x) + src_at, static_cast<size_t>(w) * 4);
        } else if (kind_ == ChainKind::Dynamic || quantize_input_) {
          quantize_(static_cast<const float*>(x) + src_at, w, q.scale, q.zero_point, l0.in_store, row);
        } else {
          const uint8_t* sx = static_cast<const uint8_t*>(x) + src_at;
          if (l0.in_store == ChainStore::U8) {
            for (int64_t i = 0; i < w; ++i) row[i] = static_cast<uint8_t>(sx[i] ^ flip);
          } else if (l0.in_store == ChainStore::S16) {
            int16_t* d = reinterpret_cast<int16_t*>(row);
            for (int64_t i = 0; i < w; ++i) d[i] = static_cast<int16_t>(sx[i] ^ flip);
          } else {
            float* d = reinterpret_cast<float*>(row);
            for (int64_t i = 0; i < w; ++i) d[i] = static_cast<float>(static_cast<int32_t>(sx[i] ^ flip) - zk);
          }
        }
        if (!contiguous)
          for (int64_t i = 0; i < w; ++i) std::memcpy(dst + static_cast<size_t>(i * l0.cs) * es, row + i * es, es);
      }
}

void ConvChain::run(const void* x, int64_t n, int64_t h, int64_t w, void* y, int threads) const {
  const std::shared_ptr<const Plan> plan = plan_for(n, h, w);
  const size_t nl = layers_.size();
  int64_t widest = 0;
  for (const Layer& l : layers_) widest = std::max(widest, l.ms);
  auto align = [](size_t b) { return (b + 63) / 64 * 64; };
  const size_t buf = align(plan->buf_bytes), raw = align(plan->raw_bytes), outb = align(plan->out_bytes);
  const size_t small = align(static_cast<size_t>(widest) * 8);
  ScratchCache::Lease lease(scratch_, 2 * buf + raw + outb + small);
  uint8_t* base = lease.as<uint8_t>();
  uint8_t* slot[2] = {base, base + buf};
  float* rawbuf = reinterpret_cast<float*>(base + 2 * buf);
  uint8_t* outbuf = base + 2 * buf + raw;
  float* run_scale = reinterpret_cast<float*>(base + 2 * buf + raw + outb);
  int32_t* run_corr = reinterpret_cast<int32_t*>(run_scale + widest);

  // ---- the input into layer 0's buffer
  const Layer& l0 = layers_.front();
  const Geometry& g0 = plan->g.front();
  qmath::QParams q;  // Dynamic: the current layer's input quantisation
  int32_t zk = 0;    // the current layer's input zero point in kernel values
  if (kind_ == ChainKind::Dynamic) {
    float lo = 0.0f, hi = 0.0f;
    minmax_(static_cast<const float*>(x), n * l0.c * h * w, &lo, &hi);
    q = qmath::dynamic_qparams_uint8(lo, hi);
    zk = q.zero_point;
  } else if (kind_ == ChainKind::Static) {
    zk = l0.x_zp;
    q = in_q_;  // quantize_input: QuantizeLinear's parameters
  }
  fill_input(x, n, h, w, g0, q, zk, slot[0]);

  // ---- the layers (TINYQ_PROFILE: each timed into part_ns_)
  using Clock = std::chrono::steady_clock;
  Clock::time_point t0 = part_ns_ ? Clock::now() : Clock::time_point();
  auto lap = [&](size_t part) {
    if (!part_ns_) return;
    const Clock::time_point t1 = Clock::now();
    part_ns_[part].fetch_add(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count(),
                             std::memory_order_relaxed);
    t0 = t1;
  };
  for (size_t i = 0; i < nl; ++i) {
    const Layer& l = layers_[i];
    const Geometry& g = plan->g[i];
    const bool last = i + 1 == nl;
    const uint8_t* in = slot[i % 2];
    const size_t in_es = store_size(l.in_store);

    ChainEpilogue e;
    e.bias = l.bias.empty() ? nullptr : l.bias.data();
    e.clamp = l.clamp;
    e.lo = l.lo;
    e.hi = l.hi;
    if (kind_ == ChainKind::F32) {
      e.kind = ChainEpi::F32;
    } else if (kind_ == ChainKind::Dynamic) {
      e.kind = ChainEpi::Dequant;
      // The graph's Mul: x_scale * w_scale, in float; corr = z * wsum for the integer kernels.
      for (int64_t c = 0; c < l.ms; ++c) run_scale[c] = q.scale * l.scale[static_cast<size_t>(c)];
      e.scale = run_scale;
      if (l.kernel == Kernel::DenseInt) {
        for (int64_t c = 0; c < l.ms; ++c)
          run_corr[c] =
              static_cast<int32_t>(static_cast<uint32_t>(zk) * static_cast<uint32_t>(l.wsum[static_cast<size_t>(c)]));
        e.corr = run_corr;
      }
    } else {
      e.kind = ChainEpi::Requant;
      e.scale = l.scale.data();
      e.corr = l.bias_i32.data();
      e.corr_f = l.corr_f.empty() ? nullptr : l.corr_f.data();
      e.zero_point = l.y_zp;
      e.qmin = 0;
      e.qmax = 255;
    }
    // Where the rows go.
    uint8_t* dst_base;
    int64_t dst_hp, dst_wp, dst_pt, dst_pl;
    if (last || kind_ == ChainKind::Dynamic) {
      dst_base = last ? outbuf : reinterpret_cast<uint8_t*>(rawbuf);
      dst_hp = g.oh;
      dst_wp = g.ow;
      dst_pt = dst_pl = 0;
      e.store = kind_ == ChainKind::Static && !mean_ ? ChainStore::U8 : ChainStore::F32;
    } else {
      const Layer& nx = layers_[i + 1];
      const Geometry& ng = plan->g[i + 1];
      dst_base = slot[(i + 1) % 2];
      dst_hp = ng.hp;
      dst_wp = ng.wp;
      dst_pt = nx.pt;
      dst_pl = nx.pl;
      e.store = nx.in_store;
      fill_halo(dst_base, nx.in_store, nx.in_store == ChainStore::F32 ? 0 : nx.x_zp, n, ng.hp, ng.wp, nx.cs, nx.pt,
                nx.pl, g.oh, g.ow);
    }
    const size_t out_es = store_size(e.store);
    const bool track = kind_ == ChainKind::Dynamic && !last;
    float range[2] = {std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()};
    std::mutex range_mu;
    const double work =
        static_cast<double>(n * g.oh * g.ow) * static_cast<double>(l.ms) * static_cast<double>(g.k_off.size());
    const int eff = useful_threads(threads, work);
    parallel_for(eff, n * g.oh, [&](int64_t begin, int64_t end) {
      float mm[2] = {std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()};
      ChainEpilogue ep = e;
      if (track) ep.minmax = mm;
      for (int64_t u = begin; u < end; ++u) {
        const int64_t img = u / g.oh, r = u % g.oh;
        const int64_t plane0 = l.planar ? img * l.c * g.hp : img * g.hp;  // rows before this image
        const uint8_t* src = in + static_cast<size_t>((plane0 + r * l.sh) * g.wp * l.cs) * in_es;
        uint8_t* dst = dst_base + static_cast<size_t>(((img * dst_hp + r + dst_pt) * dst_wp + dst_pl) * l.ms) * out_es;
        if (l.kernel == Kernel::DwF32) {
          ChainDw d;
          d.src = src;
          d.src_step = l.sw * l.cs;
          d.tap_off = g.k_off.data();
          d.taps = static_cast<int>(g.k_off.size());
          d.n = g.ow;
          d.w = l.wf.data();
          d.m = l.ms;
          d.epi = ep;
          d.dst = dst;
          d.dst_step = l.ms;
          dw_(d);
        } else {
          ChainDense d;
          d.src = src;
          d.src_step = l.sw * l.cs;
          d.k_off = g.k_off.data();
          d.k = static_cast<int64_t>(g.k_off.size());
          d.n = g.ow;
          d.m = l.ms;
          d.epi = ep;
          d.dst = dst;
          d.dst_step = l.ms;
          if (l.kernel == Kernel::DenseF32) {
            d.w = l.wf.data();
            dense_f32_(d);
          } else {
            d.w = l.in_store == ChainStore::U8 ? static_cast<const void*>(l.w8.data())
                                               : static_cast<const void*>(l.w16.data());
            dense_int_(d);
          }
        }
      }
      if (track) {
        std::lock_guard<std::mutex> lock(range_mu);
        range[0] = std::min(range[0], mm[0]);
        range[1] = std::max(range[1], mm[1]);
      }
    });
    lap(2 * i);
    if (!track) continue;
    // DynamicQuantizeLinear of this layer's output (padded lanes hold the activation of 0,
    // which lies inside the range widened to 0 and the clip bounds: they change nothing).
    q = qmath::dynamic_qparams_uint8(range[0] > range[1] ? 0.0f : range[0], range[0] > range[1] ? 0.0f : range[1]);
    zk = q.zero_point;
    const Layer& nx = layers_[i + 1];
    const Geometry& ng = plan->g[i + 1];
    uint8_t* nb = slot[(i + 1) % 2];
    const size_t nes = store_size(nx.in_store);
    fill_halo(nb, nx.in_store, nx.in_store == ChainStore::F32 ? 0 : zk, n, ng.hp, ng.wp, nx.cs, nx.pt, nx.pl, g.oh,
              g.ow);
    const int eff_q = useful_threads(threads, static_cast<double>(n * g.oh * g.ow * l.ms) * 4.0);
    parallel_for(eff_q, n * g.oh, [&](int64_t begin, int64_t end) {
      for (int64_t u = begin; u < end; ++u) {
        const int64_t img = u / g.oh, r = u % g.oh;
        const float* src = rawbuf + u * g.ow * l.ms;
        uint8_t* dst = nb + static_cast<size_t>(((img * ng.hp + r + nx.pt) * ng.wp + nx.pl) * nx.cs) * nes;
        quantize_(src, g.ow * l.ms, q.scale, q.zero_point, nx.in_store, dst);
      }
    });
    lap(2 * i + 1);
  }

  // ---- the output
  const Layer& ll = layers_.back();
  const Geometry& gl = plan->g.back();
  const int64_t positions = gl.oh * gl.ow;
  if (mean_) {
    // As ReduceMean computes it: a double sum per channel in position order, divided, rounded
    // to float; the static chains first dequantise each value as DequantizeLinear does.
    const float* o = reinterpret_cast<const float*>(outbuf);
    const float s = kind_ == ChainKind::Static ? mean_scale_ : 1.0f;
    for (int64_t img = 0; img < n; ++img)
      mean_fn_(o + img * positions * ll.ms, positions, ll.m, ll.ms, s, static_cast<float*>(y) + img * ll.m);
    return;
  }
  for (int64_t img = 0; img < n; ++img)
    for (int64_t c = 0; c < ll.m; ++c)
      for (int64_t p = 0; p < positions; ++p) {
        const int64_t from = (img * positions + p) * ll.ms + c, to = (img * ll.m + c) * positions + p;
        if (kind_ == ChainKind::Static)
          static_cast<uint8_t*>(y)[to] = static_cast<uint8_t>(outbuf[from] ^ (data_u8_ ? 0 : 0x80));
        else
          static_cast<float*>(y)[to] = reinterpret_cast<const float*>(outbuf)[from];
      }
}

std::shared_ptr<const ConvChain> select_conv_chain(const ChainDesc& d) {
  using C = Candidate<ChainDesc, Isa>;
  static const std::vector<C> list = {
      {"conv_chain_avx512vnni", Isa::Avx512Vnni, nullptr, Isa::Avx512Vnni},
      {"conv_chain_avx512", Isa::Avx512, nullptr, Isa::Avx512},
      {"conv_chain_avx2", Isa::Avx2, nullptr, Isa::Avx2},
      {"conv_chain_ref", Isa::Ref, nullptr, Isa::Ref},
  };
  const std::string why = ConvChain::declines(d);
  if (!why.empty()) {
    if (dispatch_verbose()) report_choice("conv_chain", std::to_string(d.layers.size()) + " layers", "none", {why});
    return nullptr;
  }
  const char* kinds[] = {"fp32", "dynamic int8", "static int8"};
  const C& c =
      choose("conv_chain", list, d, std::to_string(d.layers.size()) + " layers, " + kinds[static_cast<int>(d.kind)]);
  return std::make_shared<ConvChain>(c.impl, d);
}

}  // namespace tinyq::kernels
