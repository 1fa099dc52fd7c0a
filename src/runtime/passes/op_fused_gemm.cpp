// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// FusedGemm and DynQMatMul (see fused_ops.h): matrix products with a constant right-hand side,
// their bias and activation folded into the kernels' epilogue; DynQMatMul also quantises its
// input as the DynamicQuantizeLinear it replaces did.

#include <cmath>

#include "common/qmath.h"
#include "kernels/fast/select.h"
#include "kernels/fast/thread_pool.h"
#include "kernels/ref/gemm_ref.h"
#include "kernels/ref/qgemm_ref.h"
#include "kernels/ref/qlinear_ref.h"
#include "runtime/ops/op_support.h"
#include "runtime/passes/fused_common.h"

namespace tinyq::rt::passes {

namespace {

const Tensor& constant_input(const OpContext& ctx, size_t i, const char* what) {
  const Tensor* t = ctx.constant(i);
  if (!t) ctx.fail(std::string(what) + " must be constant");
  return *t;
}

// Rows of a [..., K] input and the [..., N] output shape (numpy matmul with a 2-D right side).
int64_t matmul_rows(const Tensor& a, int64_t k, int64_t n, Shape* out) {
  if (a.rank() < 1 || a.shape().back() != k)
    throw Error("input " + shape_to_string(a.shape()) + " does not end in K = " + std::to_string(k));
  *out = Shape(a.shape().begin(), a.shape().end() - 1);
  out->push_back(n);
  return k == 0 ? 0 : a.numel() / k;
}

class FusedGemmOp final : public Op {
 public:
  explicit FusedGemmOp(const OpContext& ctx) : act_(parse_activation(ctx)) {
    check_arity(ctx, 2, 3, 1, 1);
    gemm_ = ctx.node.attr_string("kind", "matmul") == "gemm";
    const bool trans_b = ctx.node.attr_int("trans_b", 0) != 0;
    const float alpha = ctx.node.attr_float("alpha", 1.0f), beta = ctx.node.attr_float("beta", 1.0f);
    const Tensor& b = constant_input(ctx, 1, "B");
    if (b.dtype() != DType::F32 || b.rank() != 2) ctx.fail("B must be a float matrix");
    k_ = trans_b ? b.dim(1) : b.dim(0);
    n_ = trans_b ? b.dim(0) : b.dim(1);
    // alpha folds into B once (fp32 rounding differs from alpha * (A B) by an ulp at most).
    b_ = b.clone();
    if (alpha != 1.0f)
      for (int64_t i = 0; i < b_.numel(); ++i) b_.data<float>()[i] *= alpha;
    trans_b_ = trans_b;
    if (ctx.node.has_input(2)) {
      const Tensor& c = constant_input(ctx, 2, "C");
      try {
        bias_ = per_axis_values(c, n_, "C");
      } catch (const Error& e) {
        ctx.fail(e.what());
      }
      for (float& v : bias_) v = beta * v;
      bias_shape_ = c.shape();
    }
    fast_ = kernels::select_gemm_f32(k_, n_, b_.data<float>(), trans_b_, true);
  }

  void run(const OpInputs& in, std::vector<Tensor>& out) override {
    const Tensor& a = *in[0];
    if (a.dtype() != DType::F32) throw Error(std::string("A must be float, is ") + dtype_name(a.dtype()));
    if (gemm_ && a.rank() != 2) throw Error("A must be a matrix, got " + shape_to_string(a.shape()));
    Shape shape;
    const int64_t rows = matmul_rows(a, k_, n_, &shape);
    if (!bias_.empty()) shape = broadcast_shapes(shape, bias_shape_);
    Tensor y(DType::F32, shape);
    const float* bias = bias_.empty() ? nullptr : bias_.data();
    if (fast_) {
      fast_->run(rows, a.data<float>(), k_, bias, act_.on, act_.lo, act_.hi, y.data<float>(), n_,
                 kernels::current_threads());
    } else {
      kernels::GemmParams g;
      g.M = rows;
      g.N = n_;
      g.K = k_;
      g.a_row = k_;
      g.a_col = 1;
      g.b_row = trans_b_ ? 1 : n_;
      g.b_col = trans_b_ ? k_ : 1;
      g.c_row = 0;
      g.c_col = 1;
      g.ldd = n_;
      g.beta = bias ? 1.0f : 0.0f;
      kernels::gemm_f32_ref(g, a.data<float>(), b_.data<float>(), bias, y.data<float>());
      apply_activation(y.data<float>(), y.numel(), act_);
    }
    out[0] = std::move(y);
  }

 private:
  Activation act_;
  bool gemm_ = false, trans_b_ = false;
  int64_t k_ = 0, n_ = 0;
  Tensor b_;
  std::vector<float> bias_;
  Shape bias_shape_;
  std::shared_ptr<const kernels::GemmF32Fast> fast_;
};

class DynQMatMulOp final : public Op {
 public:
  explicit DynQMatMulOp(const OpContext& ctx) : act_(parse_activation(ctx)) {
    check_arity(ctx, 4, 5, 1, 1);
    w_ = constant_input(ctx, 1, "W");
    if ((w_.dtype() != DType::I8 && w_.dtype() != DType::U8) || w_.rank() != 2) ctx.fail("W must be an 8-bit matrix");
    k_ = w_.dim(0);
    n_ = w_.dim(1);
    w_zp_.assign(1, 0);
    if (ctx.node.has_input(2)) {
      const Tensor& z = constant_input(ctx, 2, "w_zero_point");
      if (z.dtype() != w_.dtype() || (z.numel() != 1 && z.numel() != n_)) ctx.fail("w_zero_point must be W's type, 1 or N values");
      w_zp_.clear();
      dispatch_types<uint8_t, int8_t>(z.dtype(), [&](auto tag) {
        using T = decltype(tag);
        for (int64_t i = 0; i < z.numel(); ++i) w_zp_.push_back(z.data<T>()[i]);
      });
    }
    try {
      w_scale_ = per_axis_values(constant_input(ctx, 3, "w_scale"), n_, "w_scale");
      if (ctx.node.has_input(4)) bias_ = per_axis_values(constant_input(ctx, 4, "B"), n_, "B");
    } catch (const Error& e) {
      ctx.fail(e.what());
    }
    scale_shape_ = ctx.constant(3)->shape();
    if (ctx.node.has_input(4)) bias_shape_ = ctx.constant(4)->shape();
    kernels::QWeights qw;
    qw.data = w_.raw();
    qw.is_u8 = w_.dtype() == DType::U8;
    qw.zero_points = w_zp_.data();
    qw.zp_stride = w_zp_.size() == 1 ? 0 : 1;
    fast_ = kernels::select_qgemm(k_, n_, qw, false, true);
    minmax_ = kernels::minmax_fn(kernels::elementwise_isa());
  }

  void run(const OpInputs& in, std::vector<Tensor>& out) override {
    const Tensor& x = *in[0];
    if (x.dtype() != DType::F32) throw Error(std::string("x must be float, is ") + dtype_name(x.dtype()));
    Shape shape;
    const int64_t rows = matmul_rows(x, k_, n_, &shape);
    shape = broadcast_shapes(shape, scale_shape_);
    if (!bias_.empty()) shape = broadcast_shapes(shape, bias_shape_);
    float lo = 0.0f, hi = 0.0f;
    minmax_(x.data<float>(), x.numel(), &lo, &hi);
    const qmath::QParams q = qmath::dynamic_qparams_uint8(lo, hi);
    std::vector<float> scale(w_scale_.size());
    for (size_t c = 0; c < scale.size(); ++c) scale[c] = q.scale * w_scale_[c];
    Tensor y(DType::F32, shape);
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
      qo.clamp = act_.on;
      qo.lo = act_.lo;
      qo.hi = act_.hi;
      fast_->run(rows, qi, qo, n_, kernels::current_threads());
    } else {
      std::vector<uint8_t> xq(static_cast<size_t>(x.numel()));
      kernels::QAxisLayout l;
      l.inner = x.numel();
      kernels::quantize_f32_u8_ref(x.data<float>(), l, &q.scale, &q.zero_point, xq.data());
      std::vector<int32_t> acc(static_cast<size_t>(rows * n_));
      auto fill = [&](auto* b) {
        using TB = std::remove_const_t<std::remove_pointer_t<decltype(b)>>;
        kernels::QGemmArgs<uint8_t, TB> g;
        g.m = rows;
        g.n = n_;
        g.k = k_;
        g.a = xq.data();
        g.lda = k_;
        g.b = b;
        g.ldb = n_;
        g.c = acc.data();
        g.ldc = n_;
        g.a_zero_points = &q.zero_point;
        g.b_zero_points = w_zp_.data();
        g.b_zp_stride = w_zp_.size() == 1 ? 0 : 1;
        kernels::qgemm_ref(g);
      };
      if (w_.dtype() == DType::I8)
        fill(w_.data<int8_t>());
      else
        fill(w_.data<uint8_t>());
      float* py = y.data<float>();
      for (int64_t i = 0; i < rows * n_; ++i) {
        const size_t c = static_cast<size_t>(i % n_);
        float v = static_cast<float>(acc[static_cast<size_t>(i)]) * scale[c];
        if (!bias_.empty()) v = v + bias_[c];
        py[i] = v;
      }
      apply_activation(py, y.numel(), act_);
    }
    out[0] = std::move(y);
  }

 private:
  Activation act_;
  Tensor w_;
  int64_t k_ = 0, n_ = 0;
  std::vector<int32_t> w_zp_;
  std::vector<float> w_scale_, bias_;
  Shape scale_shape_, bias_shape_;
  std::shared_ptr<const kernels::QGemmFast> fast_;
  kernels::MinMaxFn minmax_ = nullptr;
};

}  // namespace

std::unique_ptr<Op> make_fused_gemm(const OpContext& ctx) { return std::make_unique<FusedGemmOp>(ctx); }
std::unique_ptr<Op> make_dynq_matmul(const OpContext& ctx) { return std::make_unique<DynQMatMulOp>(ctx); }

}  // namespace tinyq::rt::passes
