// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// Slice. starts/ends/axes are attributes before opset 10, inputs (with optional steps) after.
// Per sliced axis of size d, ONNX's rules: negative starts/ends count from the end (+d); then
// with step > 0 both clamp to [0, d]; with step < 0 start clamps to [0, d-1] and end to
// [-1, d-1] (so end = -1 after clamping means "through index 0"). The result is a strided view
// of the input, copied out.

#include <algorithm>
#include <limits>

#include "runtime/broadcast.h"
#include "runtime/ops/op_support.h"

namespace tinyq::rt {

namespace {

struct SliceArgs {
  std::vector<int64_t> starts, ends, axes, steps;  // axes/steps empty: all axes / all 1
};

void check_args(const SliceArgs& s) {
  if (s.starts.size() != s.ends.size())
    throw Error("starts has " + std::to_string(s.starts.size()) + " values and ends " + std::to_string(s.ends.size()));
  if (!s.axes.empty() && s.axes.size() != s.starts.size())
    throw Error("axes has " + std::to_string(s.axes.size()) + " values, starts " + std::to_string(s.starts.size()));
  if (!s.steps.empty() && s.steps.size() != s.starts.size())
    throw Error("steps has " + std::to_string(s.steps.size()) + " values, starts " + std::to_string(s.starts.size()));
  for (int64_t st : s.steps)
    if (st == 0) throw Error("steps must not be 0");
}

Tensor slice(const Tensor& x, const SliceArgs& args) {
  check_args(args);
  const int64_t rank = static_cast<int64_t>(x.rank());
  if (args.axes.empty() && static_cast<int64_t>(args.starts.size()) > rank)
    throw Error("starts has " + std::to_string(args.starts.size()) + " values for an input of rank " + std::to_string(rank));
  Shape shape = x.shape();
  const std::vector<int64_t> in_strides = contiguous_strides(x.shape());
  std::vector<int64_t> strides = in_strides;
  std::vector<bool> seen(static_cast<size_t>(rank), false);
  int64_t offset = 0;
  for (size_t i = 0; i < args.starts.size(); ++i) {
    const size_t a = static_cast<size_t>(args.axes.empty() ? static_cast<int64_t>(i) : normalize_axis(args.axes[i], rank));
    if (seen[a]) throw Error("axis " + std::to_string(a) + " is sliced twice");
    seen[a] = true;
    // A step beyond +-INT64_MAX behaves as INT64_MAX: either way at most one element is taken.
    const int64_t step = std::max(args.steps.empty() ? 1 : args.steps[i], -std::numeric_limits<int64_t>::max());
    const int64_t d = x.dim(a);
    int64_t start = args.starts[i], end = args.ends[i];
    if (start < 0) start += d;
    if (end < 0) end += d;
    int64_t len = 0;
    if (step > 0) {
      start = std::clamp<int64_t>(start, 0, d);
      end = std::clamp<int64_t>(end, 0, d);
      len = end > start ? (end - start - 1) / step + 1 : 0;
    } else if (d > 0) {
      start = std::clamp<int64_t>(start, 0, d - 1);
      end = std::clamp<int64_t>(end, -1, d - 1);
      len = start > end ? (start - end - 1) / -step + 1 : 0;
    }
    shape[a] = len;
    if (len > 0) offset += start * in_strides[a];
    // With one element or none the stride is never stepped along; 0 avoids overflow.
    strides[a] = len > 1 ? in_strides[a] * step : 0;
  }
  Tensor y(x.dtype(), shape);
  strided_copy(y.raw(), x.raw(), dtype_size(x.dtype()), shape, strides, offset);
  return y;
}

std::vector<int64_t> optional_ints(const OpInputs& in, size_t i, const char* what) {
  return i < in.size() && in[i] ? int_values(*in[i], what) : std::vector<int64_t>{};
}

}  // namespace

std::unique_ptr<Op> make_slice(const OpContext& ctx) {
  if (ctx.opset < 10) {
    check_attrs(ctx, {"starts", "ends", "axes"});
    check_arity(ctx, 1, 1, 1, 1);
    require_attr(ctx, "starts");
    require_attr(ctx, "ends");
    SliceArgs args;
    args.starts = ctx.node.attr_ints("starts");
    args.ends = ctx.node.attr_ints("ends");
    args.axes = ctx.node.attr_ints("axes");
    try {
      check_args(args);
    } catch (const Error& e) {
      ctx.fail(e.what());
    }
    return make_lambda_op([args](const OpInputs& in, std::vector<Tensor>& out) { out[0] = slice(*in[0], args); });
  }
  check_attrs(ctx, {});
  check_arity(ctx, 3, 5, 1, 1);
  // Check what is already known: the lengths agree and no step is 0.
  SliceArgs known;
  const char* names[] = {"starts", "ends", "axes", "steps"};
  std::vector<int64_t>* fields[] = {&known.starts, &known.ends, &known.axes, &known.steps};
  bool all_known = true;
  for (size_t i = 0; i < 4; ++i) {
    const Tensor* t = ctx.constant(i + 1);
    if (!t) {
      all_known &= !ctx.node.has_input(i + 1);
      continue;
    }
    if (t->rank() != 1) ctx.fail(std::string(names[i]) + " must be 1-D, has shape " + shape_to_string(t->shape()));
    if (t->dtype() != DType::I64 && t->dtype() != DType::I32)
      ctx.fail(std::string(names[i]) + " must be int64 or int32, is " + dtype_name(t->dtype()));
    *fields[i] = tensor_to_int64s(*t);
  }
  for (int64_t st : known.steps)
    if (st == 0) ctx.fail("steps must not be 0");
  if (all_known) {
    try {
      check_args(known);
    } catch (const Error& e) {
      ctx.fail(e.what());
    }
  }
  return make_lambda_op([](const OpInputs& in, std::vector<Tensor>& out) {
    SliceArgs args;
    args.starts = int_values(*in[1], "starts");
    args.ends = int_values(*in[2], "ends");
    args.axes = optional_ints(in, 3, "axes");
    args.steps = optional_ints(in, 4, "steps");
    out[0] = slice(*in[0], args);
  });
}

}  // namespace tinyq::rt
