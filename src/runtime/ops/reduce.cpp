// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// ReduceSum ReduceMean ReduceMax ReduceMin ReduceProd.
// `axes` is an attribute until it becomes an optional input: at opset 13 for ReduceSum, at 18
// for the others; `noop_with_empty_axes` arrives with the input form. No axes (and no noop)
// reduces everything.
//
// The reference walk visits every input element once and folds it into the accumulator of its
// output cell: the output with keepdims is the input's shape with reduced dimensions set to 1,
// so its broadcast strides over the input (0 along reduced axes) give each element's cell.

#include <cmath>
#include <limits>

#include "runtime/broadcast.h"
#include "runtime/ops/op_support.h"

namespace tinyq::rt {

namespace {

enum class ReduceKind { Sum, Mean, Max, Min, Prod };

template <typename T>
struct Accum {
  // Floats accumulate in double; integers wrap in 64 bits (uint64 keeps overflow defined).
  using type = typename std::conditional<std::is_floating_point<T>::value, double, uint64_t>::type;
};

template <typename T>
void reduce_ref(ReduceKind kind, const Tensor& x, const Shape& keep_shape, Tensor& y) {
  using A = typename Accum<T>::type;
  const int64_t cells = shape_numel(keep_shape);
  const T* src = x.data<T>();
  T* dst = y.data<T>();
  if (kind == ReduceKind::Max || kind == ReduceKind::Min) {
    const bool is_max = kind == ReduceKind::Max;
    // An empty reduction gives the identity: -inf for Max and +inf for Min over floats.
    T start = is_max ? std::numeric_limits<T>::lowest() : std::numeric_limits<T>::max();
    if constexpr (std::is_floating_point<T>::value)
      start = is_max ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::infinity();
    for (int64_t c = 0; c < cells; ++c) dst[c] = start;
    BroadcastRows rows(x.shape(), {keep_shape});
    const int64_t stride = rows.row_stride(0);
    rows.for_each_row([&](int64_t o, const int64_t* off) {
      for (int64_t j = 0; j < rows.row_length(); ++j) {
        T v = src[o + j];
        T& acc = dst[off[0] + j * stride];
        if constexpr (std::is_floating_point<T>::value) {
          if (std::isnan(v) || std::isnan(acc)) {
            acc = std::numeric_limits<T>::quiet_NaN();
            continue;
          }
        }
        if (is_max ? v > acc : v < acc) acc = v;
      }
    });
    return;
  }
  std::vector<A> acc(static_cast<size_t>(cells), kind == ReduceKind::Prod ? A(1) : A(0));
  BroadcastRows rows(x.shape(), {keep_shape});
  const int64_t stride = rows.row_stride(0);
  rows.for_each_row([&](int64_t o, const int64_t* off) {
    for (int64_t j = 0; j < rows.row_length(); ++j) {
      A& a = acc[static_cast<size_t>(off[0] + j * stride)];
      if (kind == ReduceKind::Prod) a = a * static_cast<A>(src[o + j]);
      else a = a + static_cast<A>(src[o + j]);
    }
  });
  const int64_t count = cells == 0 ? 0 : x.numel() / cells;
  for (int64_t c = 0; c < cells; ++c) {
    A v = acc[static_cast<size_t>(c)];
    if constexpr (std::is_floating_point<T>::value) {
      // The mean of nothing is 0 in ONNX Runtime (numpy would say NaN).
      if (kind == ReduceKind::Mean) v = count == 0 ? 0.0 : v / static_cast<double>(count);
      dst[c] = static_cast<T>(v);
    } else {
      int64_t s = static_cast<int64_t>(v);
      if (kind == ReduceKind::Mean) s = count == 0 ? 0 : s / count;
      dst[c] = static_cast<T>(static_cast<uint64_t>(s));
    }
  }
}

std::unique_ptr<Op> make_reduce(const OpContext& ctx, ReduceKind kind) {
  const bool axes_input = kind == ReduceKind::Sum ? ctx.opset >= 13 : ctx.opset >= 18;
  std::vector<int64_t> attr_axes;
  int64_t noop_with_empty_axes = 0;
  if (axes_input) {
    check_attrs(ctx, {"keepdims", "noop_with_empty_axes"});
    check_arity(ctx, 1, 2, 1, 1);
    noop_with_empty_axes = ctx.node.attr_int("noop_with_empty_axes", 0);
    if (const Tensor* axes = ctx.constant(1)) {
      if (axes->rank() > 1) ctx.fail("axes must be 1-D, has shape " + shape_to_string(axes->shape()));
      if (axes->dtype() != DType::I64) ctx.fail(std::string("axes must be int64, is ") + dtype_name(axes->dtype()));
    }
  } else {
    check_attrs(ctx, {"keepdims", "axes"});
    check_arity(ctx, 1, 1, 1, 1);
    attr_axes = ctx.node.attr_ints("axes");
  }
  const bool keepdims = ctx.node.attr_int("keepdims", 1) != 0;
  return make_lambda_op([=](const OpInputs& in, std::vector<Tensor>& out) {
    const Tensor& x = *in[0];
    std::vector<int64_t> axes = attr_axes;
    if (axes_input && in.size() > 1 && in[1]) axes = int_values(*in[1], "axes");
    if (axes.empty() && noop_with_empty_axes) {
      out[0] = x;
      return;
    }
    const int64_t rank = static_cast<int64_t>(x.rank());
    std::vector<bool> reduced(static_cast<size_t>(rank), axes.empty());
    for (int64_t a : axes) reduced[static_cast<size_t>(normalize_axis(a, rank))] = true;
    Shape keep_shape = x.shape(), out_shape;
    for (int64_t d = 0; d < rank; ++d) {
      if (reduced[static_cast<size_t>(d)]) keep_shape[static_cast<size_t>(d)] = 1;
      else out_shape.push_back(x.dim(static_cast<size_t>(d)));
    }
    Tensor y(x.dtype(), keep_shape);
    dispatch_types<float, double, int32_t, int64_t, int8_t, uint8_t>(x.dtype(), [&](auto tag) {
      reduce_ref<decltype(tag)>(kind, x, keep_shape, y);
    });
    out[0] = keepdims ? y : y.reshaped(out_shape);
  });
}

}  // namespace

std::unique_ptr<Op> make_reduce_sum(const OpContext& ctx) { return make_reduce(ctx, ReduceKind::Sum); }
std::unique_ptr<Op> make_reduce_mean(const OpContext& ctx) { return make_reduce(ctx, ReduceKind::Mean); }
std::unique_ptr<Op> make_reduce_max(const OpContext& ctx) { return make_reduce(ctx, ReduceKind::Max); }
std::unique_ptr<Op> make_reduce_min(const OpContext& ctx) { return make_reduce(ctx, ReduceKind::Min); }
std::unique_ptr<Op> make_reduce_prod(const OpContext& ctx) { return make_reduce(ctx, ReduceKind::Prod); }

}  // namespace tinyq::rt
