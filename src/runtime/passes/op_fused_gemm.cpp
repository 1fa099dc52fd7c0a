// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// FusedGemm and DynQMatMul (see fused_ops.h): matrix products with a constant right-hand side,
// their bias and activation folded into the kernels' epilogue; DynQMatMul also quantises its
// input as the DynamicQuantizeLinear it replaces did. Both are a DenseLayer (fused_dense.h)
// around the shape handling of an op.

#include <cmath>

#include "common/qmath.h"
#include "kernels/fast/select.h"
#include "kernels/fast/thread_pool.h"
#include "kernels/ref/gemm_ref.h"
#include "kernels/ref/qgemm_ref.h"
#include "kernels/ref/qlinear_ref.h"
#include "runtime/ops/op_support.h"
#include "runtime/passes/fused_common.h"
#include "runtime/passes/fused_dense.h"

namespace tinyq::rt::passes {

namespace {

// y = act(alpha * x B + beta * C), fp32.
class GemmLayer final : public DenseLayer {
 public:
  explicit GemmLayer(const OpContext& ctx) : act_(parse_activation(ctx)) {
    check_arity(ctx, 2, 3, 1, 1);
    gemm_ = ctx.node.attr_string("kind", "matmul") == "gemm";
    trans_b_ = ctx.node.attr_int("trans_b", 0) != 0;
    const float alpha = ctx.node.attr_float("alpha", 1.0f), beta = ctx.node.attr_float("beta", 1.0f);
    const Tensor& b = constant_input(ctx, 1, "B");
    if (b.dtype() != DType::F32 || b.rank() != 2) ctx.fail("B must be a float matrix");
    k_ = trans_b_ ? b.dim(1) : b.dim(0);
    n_ = trans_b_ ? b.dim(0) : b.dim(1);
    // alpha folds into B once (fp32 rounding differs from alpha * (A B) by an ulp at most).
    b_ = b.clone();
    if (alpha != 1.0f)
      for (int64_t i = 0; i < b_.numel(); ++i) b_.data<float>()[i] *= alpha;
    if (ctx.node.has_input(2)) {
      const Tensor& c = constant_input(ctx, 2, "C");
      try {
        bias_ = per_axis_values(c, n_, "C");
      } catch (const Error& e) {
        ctx.fail(e.what());
      }
      for (float& v : bias_) v = beta * v;
      param_shapes_.push_back(c.shape());
    }
    fast_ = kernels::select_gemm_f32(k_, n_, b_.data<float>(), trans_b_, true);
  }

  void run(int64_t rows, const float* x, float* y, int threads) const override {
    const float* bias = bias_.empty() ? nullptr : bias_.data();
    if (fast_) {
      fast_->run(rows, x, k_, bias, act_.on, act_.lo, act_.hi, y, n_, threads);
      return;
    }
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
    kernels::gemm_f32_ref(g, x, b_.data<float>(), bias, y);
    apply_activation(y, rows * n_, act_);
  }

 private:
  Activation act_;
  bool trans_b_ = false;
  Tensor b_;
  std::vector<float> bias_;
  std::shared_ptr<const kernels::GemmF32Fast> fast_;
};

// y = act(((float(acc) * (xs * ws)) + b)), acc = MatMulInteger(q(x), W, xz, wz).
class DynQLayer final : public DenseLayer {
 public:
  explicit DynQLayer(const OpContext& ctx) : act_(parse_activation(ctx)) {
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
    param_shapes_.push_back(ctx.constant(3)->shape());
    if (ctx.node.has_input(4)) param_shapes_.push_back(ctx.constant(4)->shape());
    kernels::QWeights qw;
    qw.data = w_.raw();
    qw.is_u8 = w_.dtype() == DType::U8;
    qw.zero_points = w_zp_.data();
    qw.zp_stride = w_zp_.size() == 1 ? 0 : 1;
    fast_ = kernels::select_qgemm(k_, n_, qw, false, true);
    minmax_ = kernels::minmax_fn(kernels::elementwise_isa());
  }

  void run(int64_t rows, const float* x, float* y, int threads) const override {
    // DynamicQuantizeLinear's parameters, then the scale product the graph's Mul computed.
    float lo = 0.0f, hi = 0.0f;
    minmax_(x, rows * k_, &lo, &hi);
    const qmath::QParams q = qmath::dynamic_qparams_uint8(lo, hi);
    constexpr int64_t kStack = 256;
    float stack_scale[kStack];
    std::vector<float> heap_scale;
    float* scale = stack_scale;
    if (n_ > kStack) {
      heap_scale.resize(static_cast<size_t>(n_));
      scale = heap_scale.data();
    }
    for (int64_t c = 0; c < n_; ++c) scale[c] = q.scale * w_scale_[static_cast<size_t>(c)];
    if (fast_) {
      kernels::QInput qi;
      qi.kind = kernels::QInputKind::F32;
      qi.data = x;
      qi.scale = q.scale;
      qi.zero_point = q.zero_point;
      kernels::QOutput qo;
      qo.kind = kernels::QEpilogueKind::Dequant;
      qo.dst = y;
      qo.scale = scale;
      qo.bias = bias_.empty() ? nullptr : bias_.data();
      qo.clamp = act_.on;
      qo.lo = act_.lo;
      qo.hi = act_.hi;
      fast_->run(rows, qi, qo, n_, threads);
      return;
    }
    // The scalar reference chain (weights whose w - zw leave int8).
    std::vector<uint8_t> xq(static_cast<size_t>(rows * k_));
    kernels::QAxisLayout l;
    l.inner = rows * k_;
    kernels::quantize_f32_u8_ref(x, l, &q.scale, &q.zero_point, xq.data());
    std::vector<int32_t> acc(static_cast<size_t>(rows * n_));
    auto gemm = [&](auto* b) {
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
      gemm(w_.data<int8_t>());
    else
      gemm(w_.data<uint8_t>());
    for (int64_t i = 0; i < rows * n_; ++i) {
      const int64_t c = i % n_;
      float v = static_cast<float>(acc[static_cast<size_t>(i)]) * scale[c];
      if (!bias_.empty()) v = v + bias_[static_cast<size_t>(c)];
      y[i] = v;
    }
    apply_activation(y, rows * n_, act_);
  }

 private:
  Activation act_;
  Tensor w_;
  std::vector<int32_t> w_zp_;
  std::vector<float> w_scale_, bias_;
  std::shared_ptr<const kernels::QGemmFast> fast_;
  kernels::MinMaxFn minmax_ = nullptr;
};

class DenseOp final : public Op {
 public:
  explicit DenseOp(const OpContext& ctx) : layer_(make_dense_layer(ctx)) {}

  void run(const OpInputs& in, std::vector<Tensor>& out) override {
    const Tensor& a = *in[0];
    if (a.dtype() != DType::F32) throw Error(std::string("input must be float, is ") + dtype_name(a.dtype()));
    if (layer_->needs_matrix() && a.rank() != 2) throw Error("A must be a matrix, got " + shape_to_string(a.shape()));
    if (a.rank() < 1 || a.shape().back() != layer_->k())
      throw Error("input " + shape_to_string(a.shape()) + " does not end in K = " + std::to_string(layer_->k()));
    Shape shape(a.shape().begin(), a.shape().end() - 1);
    shape.push_back(layer_->n());
    for (const Shape& s : layer_->param_shapes())
      if (s.size() > shape.size()) shape = broadcast_shapes(shape, s);
    Tensor y(DType::F32, shape);
    const int64_t rows = layer_->k() == 0 ? 0 : a.numel() / layer_->k();
    layer_->run(rows, a.data<float>(), y.data<float>(), kernels::current_threads());
    out[0] = std::move(y);
  }

 private:
  std::unique_ptr<DenseLayer> layer_;
};

}  // namespace

std::unique_ptr<DenseLayer> make_dense_layer(const OpContext& ctx) {
  if (ctx.node.op_type == "DynQMatMul") return std::make_unique<DynQLayer>(ctx);
  return std::make_unique<GemmLayer>(ctx);
}

std::unique_ptr<Op> make_fused_gemm(const OpContext& ctx) { return std::make_unique<DenseOp>(ctx); }
std::unique_ptr<Op> make_dynq_matmul(const OpContext& ctx) { return std::make_unique<DenseOp>(ctx); }

}  // namespace tinyq::rt::passes
