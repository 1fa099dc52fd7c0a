// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// FusedConv and DynQConv (see fused_ops.h): convolutions with their bias, residual Add and
// activation folded into the kernels' epilogue; DynQConv also quantises its input itself, as
// the DynamicQuantizeLinear it replaces did.

#include <cmath>
#include <limits>
#include <vector>

#include "common/qmath.h"
#include "kernels/fast/select.h"
#include "kernels/fast/thread_pool.h"
#include "kernels/ref/conv_ref.h"
#include "kernels/ref/qconv_ref.h"
#include "kernels/ref/qlinear_ref.h"
#include "runtime/ops/nn_common.h"
#include "runtime/ops/op_support.h"
#include "runtime/ops/quant_support.h"
#include "runtime/passes/fused_common.h"
#include "runtime/passes/fused_conv_op.h"

namespace tinyq::rt::passes {

Activation parse_activation(const OpContext& ctx) {
  Activation a;
  const std::string kind = ctx.node.attr_string("activation", "");
  if (kind.empty()) return a;
  a.on = true;
  if (kind == "relu") {
    a.lo = 0.0f;
    a.hi = std::numeric_limits<float>::infinity();
  } else if (kind == "clip") {
    a.lo = ctx.node.attr_float("clip_min", std::numeric_limits<float>::lowest());
    a.hi = ctx.node.attr_float("clip_max", std::numeric_limits<float>::max());
  } else {
    ctx.fail("unknown activation '" + kind + "'");
  }
  return a;
}

namespace {

// DynamicQuantizeLinear's range scan over slices on `threads` threads, merged: min and max are
// exact whatever the order. A slice of NaNs alone reports (0, 0), which changes nothing, since
// the range always takes in 0 (qmath::dynamic_qparams_uint8).
void parallel_minmax(kernels::MinMaxFn fn, const float* x, int64_t n, int threads, float* lo, float* hi) {
  // Below ~256K floats per thread, waking a worker costs about what it saves.
  const int parts = kernels::useful_threads(threads, static_cast<double>(n), 262144.0);
  if (parts <= 1) {
    fn(x, n, lo, hi);
    return;
  }
  std::vector<float> los(static_cast<size_t>(parts)), his(static_cast<size_t>(parts));
  kernels::parallel_for(parts, parts, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t b = n * i / parts, e = n * (i + 1) / parts;
      fn(x + b, e - b, &los[static_cast<size_t>(i)], &his[static_cast<size_t>(i)]);
    }
  });
  *lo = los[0];
  *hi = his[0];
  for (int i = 1; i < parts; ++i) {
    if (los[static_cast<size_t>(i)] < *lo) *lo = los[static_cast<size_t>(i)];
    if (his[static_cast<size_t>(i)] > *hi) *hi = his[static_cast<size_t>(i)];
  }
}

// --------------------------------------------------------------------------------------------

class DynQConvOp final : public Op {
 public:
  explicit DynQConvOp(const OpContext& ctx) : attrs_(quant::read_conv_attrs(ctx)), act_(parse_activation(ctx)) {
    check_arity(ctx, 4, 6, 1, 1);
    w_ = constant_input(ctx, 1, "W");
    if ((w_.dtype() != DType::I8 && w_.dtype() != DType::U8) || w_.rank() < 3 || w_.rank() > 5)
      ctx.fail("W must be an 8-bit [M, C/group, k...] tensor");
    const int64_t m = w_.dim(0);
    if (m % attrs_.group != 0) ctx.fail("output channels do not split into the groups");
    w_zp_.assign(1, 0);
    if (ctx.node.has_input(2)) {
      const Tensor& z = constant_input(ctx, 2, "w_zero_point");
      if (z.dtype() != w_.dtype() || (z.numel() != 1 && z.numel() != m)) ctx.fail("w_zero_point must be W's type, 1 or M values");
      w_zp_.clear();
      dispatch_types<uint8_t, int8_t>(z.dtype(), [&](auto tag) {
        using T = decltype(tag);
        for (int64_t i = 0; i < z.numel(); ++i) w_zp_.push_back(z.data<T>()[i]);
      });
    }
    try {
      w_scale_ = per_axis_values(constant_input(ctx, 3, "w_scale"), m, "w_scale");
      if (ctx.node.has_input(4)) bias_ = per_axis_values(constant_input(ctx, 4, "B"), m, "B");
    } catch (const Error& e) {
      ctx.fail(e.what());
    }
    scale_shape_ = ctx.constant(3)->shape();
    if (ctx.node.has_input(4)) bias_shape_ = ctx.constant(4)->shape();
    has_res_ = ctx.node.has_input(5);
    kernels::QWeights qw;
    qw.data = w_.raw();
    qw.is_u8 = w_.dtype() == DType::U8;
    qw.zero_points = w_zp_.data();
    qw.zp_stride = w_zp_.size() == 1 ? 0 : 1;
    fast_ = kernels::select_qconv(kernels::weight_geometry(w_.shape(), attrs_.group), qw, true);
    minmax_ = kernels::minmax_fn(kernels::elementwise_isa());
  }

  void run(const OpInputs& in, std::vector<Tensor>& out) override { compute(in, out, nullptr); }
  void run_measured(const OpInputs& in, std::vector<Tensor>& out, const RunRanges& ranges) override {
    compute(in, out, &ranges);
  }
  bool hands_minmax() const override { return fast_ != nullptr; }
  bool takes_minmax() const override { return true; }

 private:
  // ranges, or null: x's {min, max} as the op that wrote it measured it, and what to measure.
  void compute(const OpInputs& in, std::vector<Tensor>& out, const RunRanges* ranges) {
    const Tensor& x = *in[0];
    if (x.dtype() != DType::F32) throw Error(std::string("x must be float, is ") + dtype_name(x.dtype()));
    const kernels::ConvParams p = quant::resolve_conv(attrs_, x.shape(), w_.shape());
    // DynamicQuantizeLinear's parameters (its scan of x, or the one x's producer made while
    // writing it), then the scale product the graph's Mul computed.
    float lo = 0.0f, hi = 0.0f;
    if (ranges && ranges->in0_minmax) {
      lo = ranges->in0_minmax[0];
      hi = ranges->in0_minmax[1];
    } else {
      parallel_minmax(minmax_, x.data<float>(), x.numel(), kernels::current_threads(), &lo, &hi);
    }
    float* hand = ranges ? ranges->out0_minmax : nullptr;
    const qmath::QParams q = qmath::dynamic_qparams_uint8(lo, hi);
    std::vector<float> scale(w_scale_.size());
    for (size_t c = 0; c < scale.size(); ++c) scale[c] = q.scale * w_scale_[c];
    const Shape conv_shape = quant::conv_output_shape(p);
    Shape shape = broadcast_shapes(conv_shape, scale_shape_);
    if (!bias_.empty()) shape = broadcast_shapes(shape, bias_shape_);
    // The fast kernels write every element of a convolution-shaped output.
    const bool whole = fast_ && shape == conv_shape;
    Tensor y = whole ? Tensor::uninitialized(DType::F32, shape) : Tensor(DType::F32, shape);
    const Tensor* r = has_res_ ? in[5] : nullptr;
    if (r && r->dtype() != DType::F32) throw Error("the residual must be float");
    const bool res_fused = r && r->shape() == y.shape();
    const bool act_now = act_.on && (!r || res_fused);
    if (fast_) {
      kernels::QInput qi;
      qi.kind = kernels::QInputKind::F32;
      qi.data = x.data<float>();
      qi.scale = q.scale;
      qi.zero_point = q.zero_point;
      kernels::QOutput qo;
      qo.kind = kernels::QEpilogueKind::Dequant;
      qo.dst = y.data<float>();
      qo.scale = scale.data();
      qo.bias = bias_.empty() ? nullptr : bias_.data();
      qo.residual = res_fused ? r->data<float>() : nullptr;
      qo.clamp = act_now;
      qo.lo = act_.lo;
      qo.hi = act_.hi;
      qo.minmax = whole && (!r || res_fused) ? hand : nullptr;
      fast_->run(p, qi, qo, kernels::current_threads());
      if (qo.minmax) hand = nullptr;  // measured while written
    } else {
      run_reference(p, x, q, scale, y, res_fused ? r : nullptr, act_now);
    }
    out[0] = r && !res_fused ? add_broadcast(y, *r, act_) : std::move(y);
    const Tensor& o = out[0];
    if (hand) parallel_minmax(minmax_, o.data<float>(), o.numel(), kernels::current_threads(), &hand[0], &hand[1]);
    if (ranges && ranges->out) ranges->out[0].fold(o.data<float>(), o.numel());
  }

  // The unfused chain with the scalar reference kernels (weights whose w - zw leave int8).
  void run_reference(const kernels::ConvParams& p, const Tensor& x, const qmath::QParams& q,
                     const std::vector<float>& scale, Tensor& y, const Tensor* r, bool act_now) const {
    std::vector<uint8_t> xq(static_cast<size_t>(x.numel()));
    kernels::QAxisLayout l;
    l.inner = x.numel();
    kernels::quantize_f32_u8_ref(x.data<float>(), l, &q.scale, &q.zero_point, xq.data());
    std::vector<int32_t> acc(static_cast<size_t>(y.numel()));
    std::vector<uint8_t> scratch(static_cast<size_t>(kernels::qconv_scratch_size(p)));
    const int64_t zw_stride = w_zp_.size() == 1 ? 0 : 1;
    if (w_.dtype() == DType::I8)
      kernels::qconv_u8s8_ref(p, xq.data(), q.zero_point, w_.data<int8_t>(), w_zp_.data(), zw_stride, acc.data(), scratch.data());
    else
      kernels::qconv_u8u8_ref(p, xq.data(), q.zero_point, w_.data<uint8_t>(), w_zp_.data(), zw_stride, acc.data(), scratch.data());
    const int64_t m = p.out_channels, plane = y.numel() / std::max<int64_t>(1, p.batch * m);
    float* py = y.data<float>();
    for (int64_t i = 0; i < y.numel(); ++i) {
      const size_t c = static_cast<size_t>((i / plane) % m);
      float v = static_cast<float>(acc[static_cast<size_t>(i)]) * scale[c];
      if (!bias_.empty()) v = v + bias_[c];
      if (r) v = v + r->data<float>()[i];
      py[i] = v;
    }
    if (act_now) apply_activation(py, y.numel(), act_);
  }

  kernels::QConvAttrs attrs_;
  Activation act_;
  Tensor w_;
  std::vector<int32_t> w_zp_;
  std::vector<float> w_scale_, bias_;
  Shape scale_shape_, bias_shape_;
  bool has_res_ = false;
  std::shared_ptr<const kernels::QConvKernel> fast_;
  kernels::MinMaxFn minmax_ = nullptr;
};

}  // namespace

std::unique_ptr<Op> make_fused_conv(const OpContext& ctx) { return std::make_unique<FusedConvOp>(ctx); }
std::unique_ptr<Op> make_dynq_conv(const OpContext& ctx) { return std::make_unique<DynQConvOp>(ctx); }

}  // namespace tinyq::rt::passes
