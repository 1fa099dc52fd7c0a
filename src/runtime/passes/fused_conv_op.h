// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// FusedConv's op (see fused_ops.h), shared by the ops that run such layers: its own node
// (op_fused_conv.cpp) and ConvStack (op_conv_stack.cpp), which runs them band by band.

#include <memory>
#include <vector>

#include "kernels/fast/select.h"
#include "kernels/fast/thread_pool.h"
#include "kernels/ref/conv_ref.h"
#include "kernels/ref/qconv_ref.h"
#include "runtime/ops/nn_common.h"
#include "runtime/ops/op_support.h"
#include "runtime/ops/quant_support.h"
#include "runtime/passes/fused_common.h"

namespace tinyq::rt::passes {

class FusedConvOp final : public Op {
 public:
  explicit FusedConvOp(const OpContext& ctx) : attrs_(quant::read_conv_attrs(ctx)), act_(parse_activation(ctx)) {
    check_arity(ctx, 2, 4, 1, 2);
    w_ = constant_input(ctx, 1, "W");
    if (w_.dtype() != DType::F32 || w_.rank() < 3 || w_.rank() > 5) ctx.fail("W must be a float [M, C/group, k...] tensor");
    if (w_.dim(0) % attrs_.group != 0) ctx.fail("output channels do not split into the groups");
    if (ctx.node.has_input(2)) {
      b_ = constant_input(ctx, 2, "B");
      if (b_.dtype() != DType::F32 || b_.numel() != w_.dim(0)) ctx.fail("B must hold one float per output channel");
    }
    has_res_ = ctx.node.has_input(3);
    also_pre_ = ctx.node.outputs.size() == 2;
    if (also_pre_ && !has_res_) ctx.fail("a second output (the convolution before the residual) needs a residual");
    fast_ = kernels::select_conv_f32(kernels::weight_geometry(w_.shape(), attrs_.group, attrs_.strides, attrs_.dilations),
                                     w_.data<float>(), has_res_, true);
  }

  void run(const OpInputs& in, std::vector<Tensor>& out) override { compute(in, out, nullptr, false); }
  void run_measured(const OpInputs& in, std::vector<Tensor>& out, const RunRanges& ranges) override {
    compute(in, out, ranges.out, also_pre_ && ranges.out && ranges.range_only && (*ranges.range_only)[1]);
  }

  // For ConvStack: a layer run band by band.
  bool has_residual() const { return has_res_; }
  bool also_pre() const { return also_pre_; }
  kernels::ConvParams params(const Shape& x) const { return quant::resolve_conv(attrs_, x, w_.shape()); }
  /// The row step of run_rows for geometry p (0: this layer cannot run in bands).
  int64_t row_step(const kernels::ConvParams& p) const { return fast_ ? fast_->row_step(p) : 0; }
  bool takes_rings(const kernels::ConvParams& p) const { return fast_ && fast_->takes_rings(p); }
  /// Output rows below an output row that its input must hold: the kernel's reach past its pad.
  static int64_t halo(const kernels::ConvParams& p) {
    return (p.kernel[0] - 1) * p.dilation[0] - p.pad_begin[0];
  }
  /// Rows [row0, row1) of y (and of pre, or only its range) from x and the residual r, as
  /// compute() writes them; `ranges` (or null): y's and pre's, folded in.
  void run_rows(const kernels::ConvParams& p, const Tensor& x, const Tensor* r, Tensor& y, Tensor* pre,
                kernels::FiniteRange* y_range, kernels::FiniteRange* pre_range, int64_t row0, int64_t row1,
                kernels::RowRings rings) const {
    kernels::ConvF32Epilogue ep;
    ep.bias = b_.empty() ? nullptr : b_.data<float>();
    ep.residual = r ? r->data<float>() : nullptr;
    ep.clamp = act_.on;
    ep.lo = act_.lo;
    ep.hi = act_.hi;
    ep.pre = r && pre ? pre->data<float>() : nullptr;
    ep.range = y_range;
    ep.pre_range = r ? pre_range : nullptr;
    fast_->run_rows(p, x.data<float>(), ep, y.data<float>(), kernels::current_threads(), row0, row1, rings);
  }

 private:
  // ranges (or null): one per output, folded in by the kernel as it writes where it can.
  // pre_range_only: the second output is wanted for its range alone (left empty).
  void compute(const OpInputs& in, std::vector<Tensor>& out, kernels::FiniteRange* ranges, bool pre_range_only) {
    const Tensor& x = nn::f32_input(in[0], "input X");
    const kernels::ConvParams p = quant::resolve_conv(attrs_, x.shape(), w_.shape());
    const Shape shape = quant::conv_output_shape(p);
    const Tensor* r = has_res_ ? in[3] : nullptr;
    if (r && r->dtype() != DType::F32) throw Error("the residual must be float");
    const bool res_fused = r && r->shape() == shape;
    const float* bias = b_.empty() ? nullptr : b_.data<float>();
    const bool act_now = act_.on && (!r || res_fused);
    if (fast_ && (res_fused || !also_pre_)) {
      // The kernels write every output element.
      Tensor y = Tensor::uninitialized(DType::F32, shape);
      Tensor pre = also_pre_ && !pre_range_only ? Tensor::uninitialized(DType::F32, shape) : Tensor();
      kernels::ConvF32Epilogue ep;
      ep.bias = bias;
      ep.residual = res_fused ? r->data<float>() : nullptr;
      ep.clamp = act_now;
      ep.lo = act_.lo;
      ep.hi = act_.hi;
      ep.pre = pre.empty() ? nullptr : pre.data<float>();
      const bool measured = ranges && (!r || res_fused);
      ep.range = measured ? &ranges[0] : nullptr;
      ep.pre_range = measured && also_pre_ ? &ranges[1] : nullptr;
      fast_->run(p, x.data<float>(), ep, y.data<float>(), kernels::current_threads());
      out[0] = r && !res_fused ? add_broadcast(y, *r, act_) : std::move(y);
      if (also_pre_) out[1] = std::move(pre);
      if (ranges && !measured) fold_outputs(out, ranges);
      return;
    }
    // The reference (or a residual to broadcast next to a second output): the convolution, then
    // the residual and the activation as separate steps.
    Tensor c(DType::F32, shape);  // the reference accumulates into zeros
    if (fast_) {
      kernels::ConvF32Epilogue ep;
      ep.bias = bias;
      fast_->run(p, x.data<float>(), ep, c.data<float>(), kernels::current_threads());
    } else {
      kernels::conv_f32_ref(p, x.data<float>(), w_.data<float>(), bias, c.data<float>());
    }
    if (r && !res_fused) {
      out[0] = add_broadcast(c, *r, act_);
    } else {
      // With a residual (and so perhaps a second output) the sum is a tensor of its own; else
      // the activation applies to c in place.
      Tensor y = res_fused ? Tensor(DType::F32, shape) : c;
      float* py = y.data<float>();
      if (res_fused)
        for (int64_t i = 0; i < y.numel(); ++i) py[i] = c.data<float>()[i] + r->data<float>()[i];
      if (act_now) apply_activation(py, y.numel(), act_);
      out[0] = std::move(y);
    }
    if (also_pre_) out[1] = std::move(c);
    if (ranges) fold_outputs(out, ranges);
  }

  static void fold_outputs(const std::vector<Tensor>& out, kernels::FiniteRange* ranges) {
    for (size_t k = 0; k < out.size(); ++k) ranges[k].fold(out[k].data<float>(), out[k].numel());
  }

  kernels::QConvAttrs attrs_;
  Activation act_;
  Tensor w_, b_;
  bool has_res_ = false;
  bool also_pre_ = false;  // outputs: (act(conv + B + R), conv + B)
  std::shared_ptr<const kernels::ConvF32Kernel> fast_;
};

}  // namespace tinyq::rt::passes
