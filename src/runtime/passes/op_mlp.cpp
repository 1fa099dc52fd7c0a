// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// Mlp (X, constants...): a chain on one activation, as fuse_patterns.cpp finds it in the tiny
// MLP regressors (Sub mean -> Div std -> Gemm+Relu -> Gemm+Relu -> Gemm), run as one op whose
// steps work on two reused row buffers. Its attribute "program" holds the chain's nodes as
// they were (element-wise Sub / Add / Mul / Div with a per-column constant, FusedGemm,
// DynQMatMul); their constant inputs are the Mlp node's inputs after X. Each step computes
// what its node computed (the element-wise ops in the same float operation and operand order,
// the dense ones through the same DenseLayer), so the chain's output is unchanged; what goes is
// the per-node cost: a tensor allocated per step, broadcasting set-up, the session's loop.

#include <unordered_map>

#include "kernels/fast/conv_fast.h"
#include "kernels/fast/thread_pool.h"
#include "runtime/ops/op_support.h"
#include "runtime/passes/fused_common.h"
#include "runtime/passes/fused_dense.h"

namespace tinyq::rt::passes {

namespace {

enum class Elementwise { Add, Sub, Mul, Div };

struct Step {
  bool dense = false;
  // element-wise: y = x op c (or c op x), c one value or one per column
  Elementwise op = Elementwise::Add;
  bool const_first = false;
  std::vector<float> c;
  Shape c_shape;
  std::unique_ptr<DenseLayer> layer;
};

template <Elementwise Op>
inline float apply(float a, float b) {
  if constexpr (Op == Elementwise::Add) return a + b;
  if constexpr (Op == Elementwise::Sub) return a - b;
  if constexpr (Op == Elementwise::Mul) return a * b;
  return a / b;
}

// dst[r][j] = x[r][j] op c[j] (or c[j] op x[r][j]); plain loops the compiler vectorises.
// `spread`: x has one column that broadcasts across the row.
template <Elementwise Op>
void elementwise(const Step& s, const float* x, float* dst, int64_t rows, int64_t width, bool spread) {
  const float* c = s.c.data();
  const bool per_column = s.c.size() > 1;
  for (int64_t r = 0; r < rows; ++r) {
    const float* a = spread ? x + r : x + r * width;
    float* d = dst + r * width;
    if (spread) {
      for (int64_t j = 0; j < width; ++j)
        d[j] = s.const_first ? apply<Op>(c[per_column ? j : 0], a[0]) : apply<Op>(a[0], c[per_column ? j : 0]);
    } else if (per_column && s.const_first) {
      for (int64_t j = 0; j < width; ++j) d[j] = apply<Op>(c[j], a[j]);
    } else if (per_column) {
      for (int64_t j = 0; j < width; ++j) d[j] = apply<Op>(a[j], c[j]);
    } else if (s.const_first) {
      for (int64_t j = 0; j < width; ++j) d[j] = apply<Op>(c[0], a[j]);
    } else {
      for (int64_t j = 0; j < width; ++j) d[j] = apply<Op>(a[j], c[0]);
    }
  }
}

class MlpOp final : public Op {
 public:
  explicit MlpOp(const OpContext& ctx) {
    const FusedProgram prog = fused_program(ctx);
    const auto& consts = prog.consts;
    int64_t width = -1;  // row width at this point of the chain, -1 while unknown
    for (const Node& n : prog.graph->nodes) {
      Step s;
      if (n.op_type == "FusedGemm" || n.op_type == "DynQMatMul") {
        OpContext sub{n, ctx.opset, {}};
        for (const auto& in : n.inputs) {
          auto it = consts.find(in);
          sub.constants.push_back(it == consts.end() ? nullptr : it->second);
        }
        s.dense = true;
        s.layer = make_dense_layer(sub);
        if (width >= 0 && width != s.layer->k()) ctx.fail("the chain's widths do not agree");
        needs_matrix_ = needs_matrix_ || s.layer->needs_matrix();
        for (const Shape& p : s.layer->param_shapes()) param_rank_ = std::max(param_rank_, p.size());
        if (in_width_ < 0) in_width_ = s.layer->k();
        width = s.layer->n();
      } else {
        static const std::unordered_map<std::string, Elementwise> ops = {
            {"Add", Elementwise::Add}, {"Sub", Elementwise::Sub}, {"Mul", Elementwise::Mul}, {"Div", Elementwise::Div}};
        auto op = ops.find(n.op_type);
        if (op == ops.end() || n.inputs.size() != 2) ctx.fail("cannot run " + n.label());
        s.op = op->second;
        s.const_first = consts.count(n.inputs[0]) > 0;
        const Tensor* c = consts.at(n.inputs[s.const_first ? 0 : 1]);
        if (c->dtype() != DType::F32) ctx.fail(n.label() + " needs a float constant");
        s.c = c->to_vector<float>();
        s.c_shape = c->shape();
        param_rank_ = std::max(param_rank_, s.c_shape.size());
        if (s.c.size() > 1) {
          if (width >= 0 && width != static_cast<int64_t>(s.c.size())) ctx.fail("the chain's widths do not agree");
          width = static_cast<int64_t>(s.c.size());
          if (in_width_ < 0) in_width_ = width;
        }
      }
      steps_.push_back(std::move(s));
    }
    out_width_ = width;
    if (in_width_ <= 0 || out_width_ <= 0) ctx.fail("the chain has no dense layer with a non-empty weight matrix");
  }

  void run(const OpInputs& in, std::vector<Tensor>& out) override {
    const Tensor& x = *in[0];
    if (x.dtype() != DType::F32) throw Error(std::string("input must be float, is ") + dtype_name(x.dtype()));
    if (needs_matrix_ && x.rank() != 2) throw Error("A must be a matrix, got " + shape_to_string(x.shape()));
    // A last axis of 1 broadcasts against the first step's per-column constant (numpy rules),
    // as the element-wise node would have broadcast it.
    const bool spread = x.rank() >= 1 && x.shape().back() == 1 && in_width_ > 1 && !steps_.front().dense &&
                        steps_.front().c.size() > 1;
    if (x.rank() < 1 || (x.shape().back() != in_width_ && !spread))
      throw Error("input " + shape_to_string(x.shape()) + " does not end in K = " + std::to_string(in_width_));
    Shape shape = x.shape();
    shape.back() = out_width_;
    if (param_rank_ > shape.size()) {  // a constant of higher rank broadcasts a leading 1 in
      for (const Step& s : steps_) {
        if (!s.dense) shape = broadcast_shapes(shape, s.c_shape);
        else
          for (const Shape& p : s.layer->param_shapes()) shape = broadcast_shapes(shape, p);
      }
      shape.back() = out_width_;
    }
    Tensor y = Tensor::uninitialized(DType::F32, shape);  // the last step writes all of it
    const int64_t rows = x.numel() / (spread ? 1 : in_width_);
    int64_t widest = in_width_;
    for (const Step& s : steps_)
      if (s.dense) widest = std::max(widest, s.layer->n());
    kernels::ScratchCache::Lease lease(scratch_, static_cast<size_t>(2 * rows * widest) * sizeof(float));
    float* ping = lease.as<float>();
    float* pong = ping + rows * widest;
    const float* cur = x.data<float>();
    int64_t width = in_width_;
    const int threads = kernels::current_threads();
    for (size_t i = 0; i < steps_.size(); ++i) {
      const Step& s = steps_[i];
      float* dst = i + 1 == steps_.size() ? y.data<float>() : (cur == ping ? pong : ping);
      if (s.dense) {
        s.layer->run(rows, cur, dst, threads);
        width = s.layer->n();
      } else {
        const bool spread_here = i == 0 && spread;
        switch (s.op) {
          case Elementwise::Add: elementwise<Elementwise::Add>(s, cur, dst, rows, width, spread_here); break;
          case Elementwise::Sub: elementwise<Elementwise::Sub>(s, cur, dst, rows, width, spread_here); break;
          case Elementwise::Mul: elementwise<Elementwise::Mul>(s, cur, dst, rows, width, spread_here); break;
          case Elementwise::Div: elementwise<Elementwise::Div>(s, cur, dst, rows, width, spread_here); break;
        }
      }
      cur = dst;
    }
    out[0] = std::move(y);
  }

 private:
  std::vector<Step> steps_;
  int64_t in_width_ = -1, out_width_ = -1;
  bool needs_matrix_ = false;
  size_t param_rank_ = 0;
  kernels::ScratchCache scratch_;
};

}  // namespace

std::unique_ptr<Op> make_mlp(const OpContext& ctx) { return std::make_unique<MlpOp>(ctx); }

}  // namespace tinyq::rt::passes
