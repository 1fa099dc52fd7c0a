// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// Pure reshapes: Reshape Flatten Squeeze Unsqueeze. Each output is a view of its input's buffer
// with a new shape (never written, so sharing is safe).

#include <algorithm>

#include "runtime/broadcast.h"
#include "runtime/ops/op_support.h"

namespace tinyq::rt {

namespace {

// Checks a Reshape target that does not depend on the input: at most one -1, nothing below -1,
// and (allowzero) no 0 beside a -1.
void check_reshape_target(const std::vector<int64_t>& target, bool allowzero) {
  int inferred = 0;
  bool has_zero = false;
  for (int64_t v : target) {
    if (v < -1) throw Error("shape value " + std::to_string(v) + " is invalid (below -1)");
    inferred += v == -1;
    has_zero |= v == 0;
  }
  if (inferred > 1) throw Error("shape " + shape_to_string(target) + " has more than one -1");
  if (allowzero && has_zero && inferred)
    throw Error("shape " + shape_to_string(target) + " has both 0 and -1 while allowzero is set");
}

Shape reshape_target(const Shape& in, const std::vector<int64_t>& target, bool allowzero) {
  check_reshape_target(target, allowzero);
  Shape out(target.size());
  int64_t known = 1;
  int64_t infer_at = -1;
  for (size_t i = 0; i < target.size(); ++i) {
    int64_t v = target[i];
    if (v == 0 && !allowzero) {
      // 0 copies the input's dimension at the same index.
      if (i >= in.size())
        throw Error("shape " + shape_to_string(target) + " copies dimension " + std::to_string(i) +
                    " of an input of shape " + shape_to_string(in));
      v = in[i];
    }
    if (v == -1) {
      infer_at = static_cast<int64_t>(i);
      continue;
    }
    out[i] = v;
    known *= v;
  }
  const int64_t numel = shape_numel(in);
  if (infer_at >= 0) {
    if (known == 0 || numel % known != 0)
      throw Error("cannot reshape " + shape_to_string(in) + " to " + shape_to_string(target));
    out[static_cast<size_t>(infer_at)] = numel / known;
  } else if (shape_numel(out) != numel) {
    throw Error("cannot reshape " + shape_to_string(in) + " to " + shape_to_string(target));
  }
  return out;
}

// Axes from an attribute (`attr_form`) or from optional input 1, read at build time when known.
struct AxesSource {
  bool known = false;  // axes holds them for every run (the attribute, or a constant input)
  std::vector<int64_t> axes;
};

AxesSource axes_source(const OpContext& ctx, bool attr_form) {
  AxesSource src;
  if (attr_form) {
    src.axes = ctx.node.attr_ints("axes");
    src.known = true;
  } else if (const Tensor* t = ctx.constant(1)) {
    if (t->rank() > 1) ctx.fail("axes must be 1-D, has shape " + shape_to_string(t->shape()));
    if (t->dtype() != DType::I64) ctx.fail(std::string("axes must be int64, is ") + dtype_name(t->dtype()));
    src.axes = tensor_to_int64s(*t);
    src.known = true;
  }
  std::vector<int64_t> sorted = src.axes;
  std::sort(sorted.begin(), sorted.end());
  if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) ctx.fail("axes has a repeated value");
  return src;
}

// The axes in effect for one run: the attribute or constant input read at build time, else
// input 1 when it is fed (read into `fed`). A tiny MLP's closing Squeeze runs per inference, so
// known axes are not read or copied again.
const std::vector<int64_t>& run_axes(const AxesSource& src, const OpInputs& in, std::vector<int64_t>& fed) {
  if (src.known) return src.axes;
  fed = in.size() > 1 && in[1] ? int_values(*in[1], "axes") : std::vector<int64_t>{};
  return fed;
}

}  // namespace

std::unique_ptr<Op> make_reshape(const OpContext& ctx) {
  const bool allowzero_known = ctx.opset >= 14;
  if (allowzero_known) check_attrs(ctx, {"allowzero"});
  else check_attrs(ctx, {});
  check_arity(ctx, 2, 2, 1, 1);
  const bool allowzero = ctx.node.attr_int("allowzero", 0) != 0;
  if (const Tensor* target = ctx.constant(1)) {
    if (target->dtype() != DType::I64) ctx.fail(std::string("shape must be int64, is ") + dtype_name(target->dtype()));
    if (target->rank() != 1) ctx.fail("shape must be 1-D, has shape " + shape_to_string(target->shape()));
    try {
      check_reshape_target(tensor_to_int64s(*target), allowzero);
    } catch (const Error& e) {
      ctx.fail(e.what());
    }
  }
  return make_lambda_op([allowzero](const OpInputs& in, std::vector<Tensor>& out) {
    const Tensor& target = *in[1];
    if (target.rank() != 1) throw Error("shape must be 1-D, has shape " + shape_to_string(target.shape()));
    out[0] = in[0]->reshaped(reshape_target(in[0]->shape(), int_values(target, "shape"), allowzero));
  });
}

std::unique_ptr<Op> make_flatten(const OpContext& ctx) {
  check_attrs(ctx, {"axis"});
  check_arity(ctx, 1, 1, 1, 1);
  const int64_t axis = ctx.node.attr_int("axis", 1);
  return make_lambda_op([axis](const OpInputs& in, std::vector<Tensor>& out) {
    const Tensor& x = *in[0];
    const int64_t rank = static_cast<int64_t>(x.rank());
    // axis may equal rank here (everything in the outer dimension).
    if (axis < -rank || axis > rank)
      throw Error("axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
    const int64_t a = axis < 0 ? axis + rank : axis;
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < rank; ++d) (d < a ? outer : inner) *= x.dim(static_cast<size_t>(d));
    out[0] = x.reshaped({outer, inner});
  });
}

std::unique_ptr<Op> make_squeeze(const OpContext& ctx) {
  const bool attr_form = ctx.opset < 13;
  if (attr_form) {
    check_attrs(ctx, {"axes"});
    check_arity(ctx, 1, 1, 1, 1);
  } else {
    check_attrs(ctx, {});
    check_arity(ctx, 1, 2, 1, 1);
  }
  AxesSource src = axes_source(ctx, attr_form);
  return make_lambda_op([src](const OpInputs& in, std::vector<Tensor>& out) {
    const Tensor& x = *in[0];
    std::vector<int64_t> fed;
    const std::vector<int64_t>& axes = run_axes(src, in, fed);
    const int64_t rank = static_cast<int64_t>(x.rank());
    for (int64_t a : axes) {
      const int64_t d = normalize_axis(a, rank);
      if (x.dim(static_cast<size_t>(d)) != 1)
        throw Error("cannot squeeze axis " + std::to_string(a) + " of shape " + shape_to_string(x.shape()) +
                    " (its size is not 1)");
    }
    // Without axes every dimension of size 1 goes.
    auto dropped = [&](int64_t d) {
      if (axes.empty()) return x.dim(static_cast<size_t>(d)) == 1;
      for (int64_t a : axes)
        if (normalize_axis(a, rank) == d) return true;
      return false;
    };
    Shape shape;
    shape.reserve(static_cast<size_t>(rank));
    for (int64_t d = 0; d < rank; ++d)
      if (!dropped(d)) shape.push_back(x.dim(static_cast<size_t>(d)));
    out[0] = x.reshaped(std::move(shape));
  });
}

std::unique_ptr<Op> make_unsqueeze(const OpContext& ctx) {
  const bool attr_form = ctx.opset < 13;
  if (attr_form) {
    check_attrs(ctx, {"axes"});
    check_arity(ctx, 1, 1, 1, 1);
    require_attr(ctx, "axes");
  } else {
    check_attrs(ctx, {});
    check_arity(ctx, 2, 2, 1, 1);
  }
  AxesSource src = axes_source(ctx, attr_form);
  return make_lambda_op([src](const OpInputs& in, std::vector<Tensor>& out) {
    const Tensor& x = *in[0];
    std::vector<int64_t> fed;
    const std::vector<int64_t>& axes = run_axes(src, in, fed);
    // Axes index the output, whose rank is the input's plus one per axis.
    const int64_t rank = static_cast<int64_t>(x.rank() + axes.size());
    std::vector<bool> inserted(static_cast<size_t>(rank), false);
    for (int64_t a : axes) {
      const int64_t d = normalize_axis(a, rank);
      if (inserted[static_cast<size_t>(d)]) throw Error("axes has a repeated value");
      inserted[static_cast<size_t>(d)] = true;
    }
    Shape shape;
    size_t next = 0;
    for (int64_t d = 0; d < rank; ++d) shape.push_back(inserted[static_cast<size_t>(d)] ? 1 : x.dim(next++));
    out[0] = x.reshaped(shape);
  });
}

}  // namespace tinyq::rt
