// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// The QDQ element-wise ops a static-quantisation graph keeps between its integer
// convolutions, with constant per-tensor parameters, on vector kernels:
//   QAdd        (a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp)   DQ(a) + DQ(b) -> Q
//   QuantizeLinear   (x, y_scale, y_zp)      per tensor, float -> 8-bit
//   DequantizeLinear (x, x_scale, x_zp)      per tensor, 8-bit -> float
// Each computes what its float chain computes, value for value (kernels/fast: qadd_*,
// quantize_*, dequantize_*); operands of different shapes take a broadcasting loop.

#include "common/qmath.h"
#include "kernels/fast/micro_kernels.h"
#include "kernels/fast/select.h"
#include "runtime/broadcast.h"
#include "runtime/ops/op_support.h"
#include "runtime/passes/fused_ops.h"

namespace tinyq::rt::passes {

namespace {

bool is_8bit(DType t) { return t == DType::U8 || t == DType::I8; }

// A constant per-tensor scale and zero point (inputs i, i + 1) as the fused node holds them.
struct ScaleZp {
  float scale = 1.0f;
  int32_t zp = 0;
  DType type = DType::U8;  // the zero point's type (the quantised data's)
};

ScaleZp scale_zp(const OpContext& ctx, size_t i) {
  const Tensor* s = ctx.constant(i);
  const Tensor* z = ctx.constant(i + 1);
  if (!s || s->dtype() != DType::F32 || s->numel() != 1 || !z || !is_8bit(z->dtype()) || z->numel() != 1)
    ctx.fail("needs a constant per-tensor float scale and 8-bit zero point at input " + std::to_string(i));
  ScaleZp q;
  q.scale = s->data<float>()[0];
  q.type = z->dtype();
  q.zp = q.type == DType::U8 ? z->data<uint8_t>()[0] : z->data<int8_t>()[0];
  return q;
}

int32_t load8(const Tensor& t, int64_t i) {
  return t.dtype() == DType::U8 ? t.data<uint8_t>()[i] : t.data<int8_t>()[i];
}

class QAddOp final : public Op {
 public:
  explicit QAddOp(const OpContext& ctx) : a_(scale_zp(ctx, 1)), b_(scale_zp(ctx, 4)), y_(scale_zp(ctx, 6)) {
    check_arity(ctx, 8, 8, 1, 1);
    fn_ = kernels::qadd_fn(kernels::best_isa());
  }

  void run(const OpInputs& in, std::vector<Tensor>& out) override {
    const Tensor& a = *in[0];
    const Tensor& b = *in[3];
    if (a.dtype() != a_.type || b.dtype() != b_.type)
      throw Error(std::string("inputs must have their zero points' types, are ") + dtype_name(a.dtype()) + " and " +
                  dtype_name(b.dtype()));
    const Shape shape = broadcast_shapes(a.shape(), b.shape());
    Tensor y = Tensor::uninitialized(y_.type, shape);  // both paths write every element
    kernels::QAddArgs t;
    t.a_u8 = a_.type == DType::U8;
    t.sa = a_.scale;
    t.za = a_.zp;
    t.b_u8 = b_.type == DType::U8;
    t.sb = b_.scale;
    t.zb = b_.zp;
    t.y_u8 = y_.type == DType::U8;
    t.sy = y_.scale;
    t.zy = y_.zp;
    if (a.shape() == b.shape()) {
      t.a = a.raw();
      t.b = b.raw();
      t.y = y.raw();
      t.n = y.numel();
      fn_(t);
    } else {
      BroadcastRows rows(shape, {a.shape(), b.shape()});
      const int64_t sa = rows.row_stride(0), sb = rows.row_stride(1), len = rows.row_length();
      rows.for_each_row([&](int64_t o, const int64_t* off) {
        for (int64_t i = 0; i < len; ++i) {
          const float f = qmath::dequantize(load8(a, off[0] + i * sa), a_.scale, a_.zp) +
                          qmath::dequantize(load8(b, off[1] + i * sb), b_.scale, b_.zp);
          if (t.y_u8)
            y.data<uint8_t>()[o + i] = static_cast<uint8_t>(qmath::quantize(f, y_.scale, y_.zp, 0, 255));
          else
            y.data<int8_t>()[o + i] = static_cast<int8_t>(qmath::quantize(f, y_.scale, y_.zp, -128, 127));
        }
      });
    }
    out[0] = std::move(y);
  }

 private:
  ScaleZp a_, b_, y_;
  kernels::QAddFn fn_ = nullptr;
};

// The node as the file had it (default domain), for inputs the vector kernels do not take
// (QuantizeLinear of int32 data, say): the fast op hands those to the reference op.
class Fallback {
 public:
  explicit Fallback(const OpContext& ctx) : node_(ctx.node) {
    node_.domain.clear();
    const OpDef* def = find_op(node_.op_type, ctx.opset);
    if (!def) ctx.fail("has no reference op");
    OpContext orig{node_, ctx.opset, ctx.constants};
    op_ = def->make(orig);
  }
  void run(const OpInputs& in, std::vector<Tensor>& out) { op_->run(in, out); }

 private:
  Node node_;  // outlives op_, which may keep a reference
  std::unique_ptr<Op> op_;
};

class QuantizeOp final : public Op {
 public:
  explicit QuantizeOp(const OpContext& ctx) : q_(scale_zp(ctx, 1)), fallback_(ctx) {
    check_arity(ctx, 3, 3, 1, 1);
    u8_ = kernels::quantize_u8_fn(kernels::elementwise_isa());
    s8_ = kernels::quantize_s8_fn(kernels::elementwise_isa());
  }
  void run(const OpInputs& in, std::vector<Tensor>& out) override {
    const Tensor& x = *in[0];
    if (x.dtype() != DType::F32) {
      fallback_.run(in, out);
      return;
    }
    Tensor y = Tensor::uninitialized(q_.type, x.shape());
    if (q_.type == DType::U8)
      u8_(x.data<float>(), x.numel(), q_.scale, q_.zp, y.data<uint8_t>());
    else
      s8_(x.data<float>(), x.numel(), q_.scale, q_.zp, y.data<int8_t>());
    out[0] = std::move(y);
  }

 private:
  ScaleZp q_;
  Fallback fallback_;
  kernels::QuantizeU8Fn u8_ = nullptr;
  kernels::QuantizeS8Fn s8_ = nullptr;
};

class DequantizeOp final : public Op {
 public:
  explicit DequantizeOp(const OpContext& ctx) : q_(scale_zp(ctx, 1)), fallback_(ctx) {
    check_arity(ctx, 3, 3, 1, 1);
    fn_ = kernels::dequantize_fn(kernels::elementwise_isa());
  }
  void run(const OpInputs& in, std::vector<Tensor>& out) override {
    const Tensor& x = *in[0];
    if (x.dtype() != q_.type) {
      fallback_.run(in, out);  // the reference op takes it, or says what is wrong
      return;
    }
    Tensor y = Tensor::uninitialized(DType::F32, x.shape());
    fn_(x.raw(), q_.type == DType::U8, x.numel(), q_.scale, q_.zp, y.data<float>());
    out[0] = std::move(y);
  }

 private:
  ScaleZp q_;
  Fallback fallback_;
  kernels::DequantizeFn fn_ = nullptr;
};

}  // namespace

std::unique_ptr<Op> make_qadd(const OpContext& ctx) { return std::make_unique<QAddOp>(ctx); }
std::unique_ptr<Op> make_quantize(const OpContext& ctx) { return std::make_unique<QuantizeOp>(ctx); }
std::unique_ptr<Op> make_dequantize(const OpContext& ctx) { return std::make_unique<DequantizeOp>(ctx); }

}  // namespace tinyq::rt::passes
