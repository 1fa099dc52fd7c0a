// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// Broadcasting binary ops: Add Sub Mul Div PRelu BitShift Pow.

#include <algorithm>

#include "runtime/broadcast.h"
#include "runtime/ops/binary_common.h"
#include "runtime/ops/op_support.h"

namespace tinyq::rt {

using kernels::BinaryOp;

namespace {

const char* op_name(BinaryOp op) {
  switch (op) {
    case BinaryOp::Add: return "Add";
    case BinaryOp::Sub: return "Sub";
    case BinaryOp::Mul: return "Mul";
    case BinaryOp::Div: return "Div";
    case BinaryOp::Min: return "Min";
    case BinaryOp::Max: return "Max";
    case BinaryOp::PRelu: return "PRelu";
    case BinaryOp::ShiftLeft: return "left shift";
    case BinaryOp::ShiftRight: return "right shift";
  }
  return "?";
}

}  // namespace

Tensor binary_broadcast(BinaryOp op, const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype())
    throw Error(std::string("input element types differ: ") + dtype_name(a.dtype()) + " and " + dtype_name(b.dtype()));
  const Shape shape = broadcast_shapes(a.shape(), b.shape());
  Tensor y = Tensor::uninitialized(a.dtype(), shape);  // every row is written below
  dispatch_types<float, double, int8_t, uint8_t, int16_t, uint16_t, int32_t, uint32_t, int64_t, uint64_t>(
      a.dtype(), [&](auto tag) {
        using T = decltype(tag);
        const T* pa = a.data<T>();
        const T* pb = b.data<T>();
        T* py = y.data<T>();
        BroadcastRows rows(shape, {a.shape(), b.shape()});
        rows.for_each_row([&](int64_t o, const int64_t* off) {
          if (!kernels::binary_ref<T>(op, pa + off[0], rows.row_stride(0), pb + off[1], rows.row_stride(1), py + o,
                                      rows.row_length())) {
            if (op == BinaryOp::Div) throw Error("integer division by zero");
            throw Error(std::string(op_name(op)) + " is not defined for element type " + dtype_name(a.dtype()));
          }
        });
      });
  return y;
}

namespace {

class BinaryNode final : public Op {
 public:
  explicit BinaryNode(BinaryOp op) : op_(op) {}
  void run(const OpInputs& in, std::vector<Tensor>& out) override { out[0] = binary_broadcast(op_, *in[0], *in[1]); }
  // Same-shape floats (a residual Add, as calibration watches it): computed in chunks, each
  // folded into the range right after it is written, while it is in L1.
  void run_measured(const OpInputs& in, std::vector<Tensor>& out, const RunRanges& ranges) override {
    const Tensor& a = *in[0];
    const Tensor& b = *in[1];
    if (!ranges.out || a.dtype() != DType::F32 || b.dtype() != DType::F32 || a.shape() != b.shape()) {
      Op::run_measured(in, out, ranges);
      return;
    }
    Tensor y = Tensor::uninitialized(DType::F32, a.shape());
    constexpr int64_t kChunk = 4096;
    for (int64_t i = 0; i < y.numel(); i += kChunk) {
      const int64_t n = std::min(kChunk, y.numel() - i);
      kernels::binary_ref<float>(op_, a.data<float>() + i, 1, b.data<float>() + i, 1, y.data<float>() + i, n);
      ranges.out[0].fold(y.data<float>() + i, n);
    }
    out[0] = std::move(y);
  }

 private:
  BinaryOp op_;
};

std::unique_ptr<Op> make_binary(const OpContext& ctx, BinaryOp op) {
  check_arity(ctx, 2, 2, 1, 1);
  return std::make_unique<BinaryNode>(op);
}

}  // namespace

std::unique_ptr<Op> make_add(const OpContext& ctx) { check_attrs(ctx, {}); return make_binary(ctx, BinaryOp::Add); }
std::unique_ptr<Op> make_sub(const OpContext& ctx) { check_attrs(ctx, {}); return make_binary(ctx, BinaryOp::Sub); }
std::unique_ptr<Op> make_mul(const OpContext& ctx) { check_attrs(ctx, {}); return make_binary(ctx, BinaryOp::Mul); }
std::unique_ptr<Op> make_div(const OpContext& ctx) { check_attrs(ctx, {}); return make_binary(ctx, BinaryOp::Div); }
// ONNX asks for slope to broadcast to X only (unidirectional); accepting both ways is a superset.
std::unique_ptr<Op> make_prelu(const OpContext& ctx) { check_attrs(ctx, {}); return make_binary(ctx, BinaryOp::PRelu); }

std::unique_ptr<Op> make_bit_shift(const OpContext& ctx) {
  check_attrs(ctx, {"direction"});
  const std::string dir = require_attr(ctx, "direction").s;
  if (dir != "LEFT" && dir != "RIGHT") ctx.fail("attribute 'direction' is '" + dir + "'; expected 'LEFT' or 'RIGHT'");
  const BinaryOp op = dir == "LEFT" ? BinaryOp::ShiftLeft : BinaryOp::ShiftRight;
  check_arity(ctx, 2, 2, 1, 1);
  return make_lambda_op([op](const OpInputs& in, std::vector<Tensor>& out) {
    const DType t = in[0]->dtype();
    if (t != DType::U8 && t != DType::U16 && t != DType::U32 && t != DType::U64)
      throw Error(std::string("BitShift takes unsigned integers, not ") + dtype_name(t));
    out[0] = binary_broadcast(op, *in[0], *in[1]);
  });
}

// Pow: the exponent may have another type than the base (opset 12); the result has the base's.
std::unique_ptr<Op> make_pow(const OpContext& ctx) {
  check_attrs(ctx, {});
  check_arity(ctx, 2, 2, 1, 1);
  return make_lambda_op([](const OpInputs& in, std::vector<Tensor>& out) {
    const Tensor& base = *in[0];
    const Tensor& exponent = *in[1];
    const Shape shape = broadcast_shapes(base.shape(), exponent.shape());
    Tensor y(base.dtype(), shape);
    BroadcastRows rows(shape, {base.shape(), exponent.shape()});
    dispatch_types<TINYQ_ARITH_TYPES>(base.dtype(), [&](auto base_tag) {
      using TB = decltype(base_tag);
      dispatch_types<TINYQ_ARITH_TYPES>(exponent.dtype(), [&](auto exp_tag) {
        using TE = decltype(exp_tag);
        const TB* pb = base.data<TB>();
        const TE* pe = exponent.data<TE>();
        TB* py = y.data<TB>();
        rows.for_each_row([&](int64_t o, const int64_t* off) {
          kernels::pow_ref<TB, TE>(pb + off[0], rows.row_stride(0), pe + off[1], rows.row_stride(1), py + o,
                                   rows.row_length());
        });
      });
    });
    out[0] = std::move(y);
  });
}

}  // namespace tinyq::rt
