// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include "kernels/onednn/onednn_conv.h"

#if defined(TINYQ_HAVE_ONEDNN)

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <oneapi/dnnl/dnnl.hpp>
#include <vector>

#include "common/qmath.h"
#include "kernels/fast/micro_kernels.h"
#include "kernels/fast/select.h"

namespace tinyq::kernels {

namespace {

using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

dnnl::engine& engine() {
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}

// oneDNN's OpenMP runtime takes the calling thread's thread count.
void set_threads(int threads) { omp_set_num_threads(std::max(1, threads)); }

dnnl::memory::dims weight_dims(const ConvParams& wg) {
  const int64_t mg = wg.out_channels / wg.group, cg = wg.in_channels / wg.group;
  if (wg.group == 1) return {wg.out_channels, cg, wg.kernel[0], wg.kernel[1]};
  return {wg.group, mg, cg, wg.kernel[0], wg.kernel[1]};
}

tag weight_tag(const ConvParams& wg) { return wg.group == 1 ? tag::oihw : tag::goihw; }

// The convolution descriptor's geometry for an input shape.
struct Geometry {
  dnnl::memory::dims src, dst, strides, dilates, pad_l, pad_r;
};

Geometry geometry(const ConvParams& p) {
  Geometry g;
  g.src = {p.batch, p.in_channels, p.in_size[0], p.in_size[1]};
  g.dst = {p.batch, p.out_channels, p.out_size[0], p.out_size[1]};
  for (int a = 0; a < 2; ++a) {
    g.strides.push_back(p.stride[a]);
    g.dilates.push_back(p.dilation[a] - 1);  // oneDNN counts the gaps
    g.pad_l.push_back(p.pad_begin[a]);
    // The end padding that makes oneDNN's output size equal ours.
    const int64_t ext = (p.kernel[a] - 1) * p.dilation[a] + 1;
    g.pad_r.push_back((p.out_size[a] - 1) * p.stride[a] + ext - p.in_size[a] - p.pad_begin[a]);
  }
  return g;
}

bool same_shape(const ConvParams& a, const ConvParams& b) {
  return a.batch == b.batch && a.in_size[0] == b.in_size[0] && a.in_size[1] == b.in_size[1] &&
         a.out_size[0] == b.out_size[0] && a.out_size[1] == b.out_size[1] && a.pad_begin[0] == b.pad_begin[0] &&
         a.pad_begin[1] == b.pad_begin[1];
}

std::string common_declines(const ConvParams& wg) {
  if (!onednn_available()) return "oneDNN is not available";
  if (wg.spatial_rank != 2) return "the adapter takes 2-D convolutions only";
  return "";
}

}  // namespace

bool onednn_available() {
  static const bool ok = [] {
    try {
      engine();
      return true;
    } catch (const std::exception&) {
      return false;
    }
  }();
  return ok;
}

std::string onednn_version() {
  const dnnl_version_t* v = dnnl_version();
  return "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch) +
         " (OpenMP)";
}

// ---------------------------------------------------------------------------------------------
// fp32

struct ConvF32OneDnn::Impl {
  ConvParams wg;
  std::vector<float> weights, zero_bias;
  struct Entry {
    ConvParams p;
    bool clamp = false;
    float lo = 0, hi = 0;
    dnnl::convolution_forward::primitive_desc pd;
    dnnl::convolution_forward conv;
    dnnl::memory w_mem, src_mem, dst_mem;  // src / dst: oneDNN's layout, when not NCHW
    bool src_plain = false, dst_plain = false;
  };
  std::mutex mu;  // entries hold scratch memory: one run at a time
  std::vector<std::unique_ptr<Entry>> cache;
  std::string last_impl;

  Entry& entry(const ConvParams& p, const ConvF32Epilogue& ep) {
    for (auto& e : cache)
      if (same_shape(e->p, p) && e->clamp == ep.clamp && e->lo == ep.lo && e->hi == ep.hi) return *e;
    auto e = std::make_unique<Entry>();
    e->p = p;
    e->clamp = ep.clamp;
    e->lo = ep.lo;
    e->hi = ep.hi;
    const Geometry g = geometry(p);
    dnnl::memory::desc src_md(g.src, dt::f32, tag::any), dst_md(g.dst, dt::f32, tag::any);
    dnnl::memory::desc w_md(weight_dims(wg), dt::f32, tag::any), b_md({wg.out_channels}, dt::f32, tag::x);
    dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src_md,
                                      w_md, b_md, dst_md, g.strides, g.dilates, g.pad_l, g.pad_r);
    dnnl::primitive_attr attr;
    if (ep.clamp) {
      dnnl::post_ops po;
      po.append_eltwise(1.0f, dnnl::algorithm::eltwise_clip, ep.lo, ep.hi);
      attr.set_post_ops(po);
    }
    e->pd = dnnl::convolution_forward::primitive_desc(d, attr, engine());
    e->conv = dnnl::convolution_forward(e->pd);
    dnnl::stream s(engine());
    dnnl::memory user_w({weight_dims(wg), dt::f32, weight_tag(wg)}, engine(), weights.data());
    e->w_mem = dnnl::memory(e->pd.weights_desc(), engine());
    dnnl::reorder(user_w, e->w_mem).execute(s, user_w, e->w_mem);
    const dnnl::memory::desc src_plain(g.src, dt::f32, tag::nchw), dst_plain(g.dst, dt::f32, tag::nchw);
    e->src_plain = e->pd.src_desc() == src_plain;
    e->dst_plain = e->pd.dst_desc() == dst_plain;
    if (!e->src_plain) e->src_mem = dnnl::memory(e->pd.src_desc(), engine());
    if (!e->dst_plain) e->dst_mem = dnnl::memory(e->pd.dst_desc(), engine());
    s.wait();
    cache.push_back(std::move(e));
    return *cache.back();
  }
};

std::string ConvF32OneDnn::declines(const ConvParams& wg, bool has_residual) {
  std::string why = common_declines(wg);
  if (!why.empty()) return why;
  if (has_residual) return "the adapter does not fuse a residual add";
  return "";
}

ConvF32OneDnn::ConvF32OneDnn(const ConvParams& wg, const float* weights) : impl_(std::make_unique<Impl>()) {
  impl_->wg = wg;
  const int64_t n = wg.out_channels * (wg.in_channels / wg.group) * wg.kernel[0] * wg.kernel[1];
  impl_->weights.assign(weights, weights + n);
  impl_->zero_bias.assign(static_cast<size_t>(wg.out_channels), 0.0f);
}

ConvF32OneDnn::~ConvF32OneDnn() = default;

void ConvF32OneDnn::run(const ConvParams& p, const float* src, const ConvF32Epilogue& ep, float* dst, int threads) const {
  const int64_t total = p.batch * p.out_channels * p.out_size[0] * p.out_size[1] * p.out_size[2];
  if (ep.also_pre() || ep.range) {
    // oneDNN writes the whole output at once: the rest of the epilogue follows over all of it.
    ConvF32Epilogue k = kernel_epilogue(ep);
    k.range = nullptr;
    k.pre = nullptr;
    k.pre_range = nullptr;
    std::vector<float> pre(ep.also_pre() ? static_cast<size_t>(total) : 0);
    run(p, src, k, ep.also_pre() ? pre.data() : dst, threads);
    FiniteRange mine, mine_pre;
    finish_block(ep, dst, BlockRows{0, 1, 0, 1, 0, total}, RowSet{pre.data(), 1, 0, 1, 0, total}, &mine, &mine_pre);
    RangeSink(ep).merge(mine, mine_pre);
    return;
  }
  std::lock_guard<std::mutex> lock(impl_->mu);
  set_threads(threads);
  Impl::Entry& e = impl_->entry(p, ep);
  const Geometry g = geometry(p);
  dnnl::stream s(engine());
  dnnl::memory user_src({g.src, dt::f32, tag::nchw}, engine(), const_cast<float*>(src));
  dnnl::memory user_dst({g.dst, dt::f32, tag::nchw}, engine(), dst);
  dnnl::memory src_m = e.src_plain ? user_src : e.src_mem;
  dnnl::memory dst_m = e.dst_plain ? user_dst : e.dst_mem;
  if (!e.src_plain) dnnl::reorder(user_src, src_m).execute(s, user_src, src_m);
  const float* bias = ep.bias ? ep.bias : impl_->zero_bias.data();
  dnnl::memory b_mem(e.pd.bias_desc(), engine(), const_cast<float*>(bias));
  e.conv.execute(s, {{DNNL_ARG_SRC, src_m}, {DNNL_ARG_WEIGHTS, e.w_mem}, {DNNL_ARG_BIAS, b_mem}, {DNNL_ARG_DST, dst_m}});
  if (!e.dst_plain) dnnl::reorder(dst_m, user_dst).execute(s, dst_m, user_dst);
  s.wait();
  impl_->last_impl = e.pd.impl_info_str();
}

std::string ConvF32OneDnn::impl_name() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->last_impl;
}

// ---------------------------------------------------------------------------------------------
// int8: u8 NHWC input (tinyq quantises / shifts it), s8 weights, int32 NHWC output; tinyq's
// pass then applies the epilogue (QEpilogueKind, the same arithmetic as its own kernels) while
// transposing to NCHW. oneDNN subtracts the input zero point exactly (integer compensation),
// and a padded position contributes nothing (ONNX ConvInteger's semantics). oneDNN 2.6's
// brgconv refuses run-time output scales, which the dynamic path needs (x_scale changes every
// run), so scaling stays on tinyq's side.

struct QConvOneDnn::Impl {
  ConvParams wg;
  std::vector<int8_t> weights;
  struct Entry {
    ConvParams p;
    dnnl::convolution_forward::primitive_desc pd;
    dnnl::convolution_forward conv;
    dnnl::memory w_mem, src_mem, dst_mem;
  };
  std::mutex mu;
  std::vector<std::unique_ptr<Entry>> cache;
  std::string last_impl;

  Entry& entry(const ConvParams& p) {
    for (auto& e : cache)
      if (same_shape(e->p, p)) return *e;
    auto e = std::make_unique<Entry>();
    e->p = p;
    const Geometry g = geometry(p);
    dnnl::memory::desc src_md(g.src, dt::u8, tag::nhwc), dst_md(g.dst, dt::s32, tag::nhwc);
    dnnl::memory::desc w_md(weight_dims(wg), dt::s8, tag::any);
    dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src_md,
                                      w_md, dst_md, g.strides, g.dilates, g.pad_l, g.pad_r);
    dnnl::primitive_attr attr;
    attr.set_zero_points(DNNL_ARG_SRC, 0, {DNNL_RUNTIME_S32_VAL});
    e->pd = dnnl::convolution_forward::primitive_desc(d, attr, engine());
    e->conv = dnnl::convolution_forward(e->pd);
    dnnl::stream s(engine());
    dnnl::memory user_w({weight_dims(wg), dt::s8, weight_tag(wg)}, engine(), weights.data());
    e->w_mem = dnnl::memory(e->pd.weights_desc(), engine());
    dnnl::reorder(user_w, e->w_mem).execute(s, user_w, e->w_mem);
    e->src_mem = dnnl::memory(e->pd.src_desc(), engine());
    e->dst_mem = dnnl::memory(e->pd.dst_desc(), engine());
    s.wait();
    cache.push_back(std::move(e));
    return *cache.back();
  }
};

std::string QConvOneDnn::declines(const ConvParams& wg, const QWeights& w) {
  std::string why = common_declines(wg);
  if (!why.empty()) return why;
  if (w.is_u8) return "oneDNN takes int8 weights only";
  if (w.zero_points) {
    const int64_t count = w.zp_stride ? wg.out_channels : 1;
    for (int64_t i = 0; i < count; ++i)
      if (w.zero_points[i] != 0) return "oneDNN takes weight zero points of 0 only";
  }
  return "";
}

QConvOneDnn::QConvOneDnn(const ConvParams& wg, const QWeights& w) : impl_(std::make_unique<Impl>()) {
  impl_->wg = wg;
  const int64_t n = wg.out_channels * (wg.in_channels / wg.group) * wg.kernel[0] * wg.kernel[1];
  const int8_t* data = static_cast<const int8_t*>(w.data);
  impl_->weights.assign(data, data + n);
}

QConvOneDnn::~QConvOneDnn() = default;

void QConvOneDnn::run(const ConvParams& p, const QInput& x, const QOutput& y, int threads) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  set_threads(threads);
  Impl::Entry& e = impl_->entry(p);
  const int64_t C = p.in_channels, M = p.out_channels, HW = p.in_size[0] * p.in_size[1];
  const int64_t OHW = p.out_size[0] * p.out_size[1];
  // Input: uint8 NHWC (int8 data shifted by 128, so its zero point shifts too).
  const int32_t zp = x.kind == QInputKind::S8 ? x.zero_point + 128 : x.zero_point;
  uint8_t* src = static_cast<uint8_t*>(e.src_mem.get_data_handle());
  std::vector<uint8_t> rows(static_cast<size_t>(C * HW));
  const Isa isa = isa_usable(Isa::Avx2) ? Isa::Avx2 : Isa::Ref;
  const QuantizeU8Fn quantize = quantize_u8_fn(isa);
  const PackNhwcU8Fn pack = kernel_at(isa, pack_nhwc_u8_ref, TINYQ_X86_KERNEL(pack_nhwc_u8_avx2));
  for (int64_t n = 0; n < p.batch; ++n) {
    if (x.kind == QInputKind::F32) {
      quantize(static_cast<const float*>(x.data) + n * C * HW, C * HW, x.scale, x.zero_point, rows.data());
    } else {
      std::memcpy(rows.data(), static_cast<const uint8_t*>(x.data) + n * C * HW, static_cast<size_t>(C * HW));
    }
    const uint8_t flip = x.kind == QInputKind::S8 ? 0x80 : 0;
    pack(rows.data(), HW, C, C, HW, flip, src + n * HW * C, C);
  }
  dnnl::stream s(engine());
  int32_t zp_value = zp;
  dnnl::memory zp_mem({{1}, dt::s32, tag::x}, engine(), &zp_value);
  e.conv.execute(s, {{DNNL_ARG_SRC, e.src_mem},
                     {DNNL_ARG_WEIGHTS, e.w_mem},
                     {DNNL_ARG_DST, e.dst_mem},
                     {DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_SRC, zp_mem}});
  s.wait();
  // NHWC int32 -> NCHW through the epilogue, each step rounded as tinyq's kernels round it.
  const int32_t* out = static_cast<const int32_t*>(e.dst_mem.get_data_handle());
  const bool u8 = y.kind == QEpilogueKind::RequantU8;
  for (int64_t n = 0; n < p.batch; ++n) {
    for (int64_t c = 0; c < M; ++c) {
      const int64_t base = (n * M + c) * OHW;
      const int32_t* a = out + n * OHW * M + c;
      switch (y.kind) {
        case QEpilogueKind::Int32: {
          int32_t* d = static_cast<int32_t*>(y.dst) + base;
          for (int64_t i = 0; i < OHW; ++i) d[i] = a[i * M];
          break;
        }
        case QEpilogueKind::Dequant: {
          float* d = static_cast<float*>(y.dst) + base;
          const float* res = y.residual ? y.residual + base : nullptr;
          for (int64_t i = 0; i < OHW; ++i) {
            float v = static_cast<float>(a[i * M]) * y.scale[c];
            if (y.bias) v = v + y.bias[c];
            if (res) v = v + res[i];
            if (y.clamp) {
              v = v < y.lo ? y.lo : v;
              v = v > y.hi ? y.hi : v;
            }
            d[i] = v;
          }
          break;
        }
        case QEpilogueKind::RequantU8:
        case QEpilogueKind::RequantS8: {
          const uint32_t bias = y.bias_i32 ? static_cast<uint32_t>(y.bias_i32[c]) : 0u;
          for (int64_t i = 0; i < OHW; ++i) {
            const int32_t v = static_cast<int32_t>(static_cast<uint32_t>(a[i * M]) + bias);
            const int32_t q = qmath::requantize(v, y.scale[c], y.zero_point, u8 ? 0 : -128, u8 ? 255 : 127);
            if (u8)
              static_cast<uint8_t*>(y.dst)[base + i] = static_cast<uint8_t>(q);
            else
              static_cast<int8_t*>(y.dst)[base + i] = static_cast<int8_t>(q);
          }
          break;
        }
      }
    }
  }
  impl_->last_impl = e.pd.impl_info_str();
  if (y.minmax && y.kind == QEpilogueKind::Dequant)
    minmax_fn(elementwise_isa())(static_cast<const float*>(y.dst),
                                 p.batch * p.out_channels * p.out_size[0] * p.out_size[1] * p.out_size[2], &y.minmax[0],
                                 &y.minmax[1]);
}

std::string QConvOneDnn::impl_name() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->last_impl;
}

}  // namespace tinyq::kernels

#else  // no oneDNN: the adapter exists, says so, and is never chosen.

#include <stdexcept>

namespace tinyq::kernels {

bool onednn_available() { return false; }
std::string onednn_version() { return "not built"; }

struct ConvF32OneDnn::Impl {};
std::string ConvF32OneDnn::declines(const ConvParams&, bool) { return "tinyq was built without oneDNN"; }
ConvF32OneDnn::ConvF32OneDnn(const ConvParams&, const float*) {
  throw std::logic_error("tinyq was built without oneDNN");
}
ConvF32OneDnn::~ConvF32OneDnn() = default;
void ConvF32OneDnn::run(const ConvParams&, const float*, const ConvF32Epilogue&, float*, int) const {}
std::string ConvF32OneDnn::impl_name() const { return ""; }

struct QConvOneDnn::Impl {};
std::string QConvOneDnn::declines(const ConvParams&, const QWeights&) { return "tinyq was built without oneDNN"; }
QConvOneDnn::QConvOneDnn(const ConvParams&, const QWeights&) { throw std::logic_error("tinyq was built without oneDNN"); }
QConvOneDnn::~QConvOneDnn() = default;
void QConvOneDnn::run(const ConvParams&, const QInput&, const QOutput&, int) const {}
std::string QConvOneDnn::impl_name() const { return ""; }

}  // namespace tinyq::kernels

#endif
