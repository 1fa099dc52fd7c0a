// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// Pad, modes constant / reflect / edge. pads are [x1_begin, x2_begin, ..., x1_end, x2_end, ...]
// (an attribute before opset 11, an input after; `axes` input from opset 18 names which axes
// they are for). Negative pads remove elements.
//
// Each axis gets a source map: output index -> input index, or -1 for "the constant". As ONNX
// Runtime does, negative pads crop first and the positive ones then pad the cropped extent, so
// reflect and edge see the cropped borders.

#include <algorithm>
#include <cstring>

#include "kernels/ref/elementwise_ref.h"
#include "runtime/broadcast.h"
#include "runtime/ops/op_support.h"

namespace tinyq::rt {

namespace {

enum class PadMode { Constant, Reflect, Edge };

std::vector<int64_t> axis_source_map(PadMode mode, int64_t dim, int64_t pad_begin, int64_t pad_end) {
  const int64_t out_dim = dim + pad_begin + pad_end;
  if (out_dim < 0)
    throw Error("pads " + std::to_string(pad_begin) + ", " + std::to_string(pad_end) + " remove more than a dimension of " +
                std::to_string(dim));
  const int64_t lo = std::max<int64_t>(0, -pad_begin);  // first kept input index
  const int64_t n = dim - lo - std::max<int64_t>(0, -pad_end);  // kept length
  const int64_t pre = std::max<int64_t>(0, pad_begin);
  // ONNX Runtime reflects once at most: a pad must leave the border element unrepeated.
  if (mode == PadMode::Reflect && std::max(pad_begin, pad_end) > std::max<int64_t>(0, n - 1))
    throw Error("reflect padding of " + std::to_string(std::max(pad_begin, pad_end)) + " exceeds the largest allowed (" +
                std::to_string(std::max<int64_t>(0, n - 1)) + ") for a dimension of " + std::to_string(n));
  std::vector<int64_t> map(static_cast<size_t>(out_dim));
  for (int64_t o = 0; o < out_dim; ++o) {
    const int64_t t = o - pre;  // index into the kept extent
    int64_t src = -1;
    if (t >= 0 && t < n) {
      src = t;
    } else if (mode == PadMode::Edge) {
      if (n <= 0) throw Error("edge padding needs a non-empty dimension");
      src = std::clamp<int64_t>(t, 0, n - 1);
    } else if (mode == PadMode::Reflect) {
      // Mirror about the border element (checked above: at most n-1 beyond either end).
      src = t < 0 ? -t : 2 * (n - 1) - t;
    }
    map[static_cast<size_t>(o)] = src < 0 ? -1 : lo + src;
  }
  return map;
}

// `fill` holds one element of the constant, in the data's type.
Tensor pad(const Tensor& x, PadMode mode, const std::vector<int64_t>& pads, const std::vector<int64_t>& axes_in,
           const std::vector<uint8_t>& fill) {
  const int64_t rank = static_cast<int64_t>(x.rank());
  std::vector<int64_t> axes = axes_in;
  if (axes.empty())
    for (int64_t d = 0; d < rank; ++d) axes.push_back(d);
  if (pads.size() != 2 * axes.size())
    throw Error("pads has " + std::to_string(pads.size()) + " values; expected " + std::to_string(2 * axes.size()));
  std::vector<int64_t> begin(static_cast<size_t>(rank), 0), end(static_cast<size_t>(rank), 0);
  std::vector<bool> seen(static_cast<size_t>(rank), false);
  for (size_t i = 0; i < axes.size(); ++i) {
    const size_t a = static_cast<size_t>(normalize_axis(axes[i], rank));
    if (seen[a]) throw Error("axes has a repeated value");
    seen[a] = true;
    begin[a] = pads[i];
    end[a] = pads[i + axes.size()];
  }
  std::vector<std::vector<int64_t>> maps;
  Shape shape;
  for (size_t a = 0; a < static_cast<size_t>(rank); ++a) {
    maps.push_back(axis_source_map(mode, x.dim(a), begin[a], end[a]));
    shape.push_back(static_cast<int64_t>(maps.back().size()));
  }
  Tensor y(x.dtype(), shape);
  const size_t esize = dtype_size(x.dtype());
  const auto* src = static_cast<const uint8_t*>(x.raw());
  auto* dst = static_cast<uint8_t*>(y.raw());
  const int64_t total = y.numel();
  if (rank == 0) {
    if (total) std::memcpy(dst, src, esize);
    return y;
  }
  const std::vector<int64_t> strides = contiguous_strides(x.shape());
  const std::vector<int64_t>& inner_map = maps.back();
  const int64_t row = shape.back();
  // Walk output rows; `base` is the source offset of the row's outer index, -1 if any outer
  // coordinate falls in the constant padding.
  std::vector<int64_t> index(static_cast<size_t>(rank) - 1, 0);
  for (int64_t start = 0; start < total; start += row) {
    int64_t base = 0;
    for (size_t d = 0; d + 1 < static_cast<size_t>(rank); ++d) {
      const int64_t s = maps[d][static_cast<size_t>(index[d])];
      if (s < 0) {
        base = -1;
        break;
      }
      base += s * strides[d];
    }
    uint8_t* out_row = dst + static_cast<size_t>(start) * esize;
    for (int64_t j = 0; j < row; ++j) {
      const int64_t s = inner_map[static_cast<size_t>(j)];
      const uint8_t* from = (base < 0 || s < 0) ? fill.data() : src + static_cast<size_t>(base + s) * esize;
      std::memcpy(out_row + static_cast<size_t>(j) * esize, from, esize);
    }
    for (size_t d = static_cast<size_t>(rank) - 1; d-- > 0;) {
      if (++index[d] < shape[d]) break;
      index[d] = 0;
    }
  }
  return y;
}

// The constant as one element of `dtype`, from opset 10's float attribute.
std::vector<uint8_t> fill_from_float(float value, DType dtype) {
  std::vector<uint8_t> fill(dtype_size(dtype), 0);
  dispatch_types<float, double, int8_t, uint8_t, int16_t, uint16_t, int32_t, uint32_t, int64_t, uint64_t, bool>(
      dtype, [&](auto tag) {
        using T = decltype(tag);
        T v = kernels::convert_ref<T>(value);
        std::memcpy(fill.data(), &v, sizeof(T));
      });
  return fill;
}

}  // namespace

std::unique_ptr<Op> make_pad(const OpContext& ctx) {
  const bool attr_form = ctx.opset < 11;
  if (attr_form) {
    check_attrs(ctx, {"mode", "pads", "value"});
    check_arity(ctx, 1, 1, 1, 1);
    require_attr(ctx, "pads");
  } else {
    check_attrs(ctx, {"mode"});
    check_arity(ctx, 2, ctx.opset >= 18 ? 4 : 3, 1, 1);
  }
  const std::string mode_name = ctx.node.attr_string("mode", "constant");
  PadMode mode;
  if (mode_name == "constant") mode = PadMode::Constant;
  else if (mode_name == "reflect") mode = PadMode::Reflect;
  else if (mode_name == "edge") mode = PadMode::Edge;
  else ctx.fail("attribute 'mode' is '" + mode_name + "'; expected 'constant', 'reflect' or 'edge'");

  if (attr_form) {
    const std::vector<int64_t> pads = ctx.node.attr_ints("pads");
    const float value = ctx.node.attr_float("value", 0.0f);
    if (pads.size() % 2) ctx.fail("pads has an odd number of values (" + std::to_string(pads.size()) + ")");
    return make_lambda_op([mode, pads, value](const OpInputs& in, std::vector<Tensor>& out) {
      out[0] = pad(*in[0], mode, pads, {}, fill_from_float(value, in[0]->dtype()));
    });
  }
  if (const Tensor* pads = ctx.constant(1)) {
    if (pads->dtype() != DType::I64) ctx.fail(std::string("pads must be int64, is ") + dtype_name(pads->dtype()));
    if (pads->rank() != 1 || pads->numel() % 2)
      ctx.fail("pads must be 1-D with an even count, has shape " + shape_to_string(pads->shape()));
  }
  if (const Tensor* value = ctx.constant(2); value && value->numel() != 1)
    ctx.fail("constant_value must be a scalar, has shape " + shape_to_string(value->shape()));
  return make_lambda_op([mode](const OpInputs& in, std::vector<Tensor>& out) {
    const Tensor& x = *in[0];
    std::vector<uint8_t> fill(dtype_size(x.dtype()), 0);
    if (in.size() > 2 && in[2]) {
      const Tensor& v = *in[2];
      if (v.dtype() != x.dtype())
        throw Error(std::string("constant_value is ") + dtype_name(v.dtype()) + ", data " + dtype_name(x.dtype()));
      // An empty constant_value means the default 0, as in ONNX Runtime.
      if (v.numel() > 1) throw Error("constant_value must be a scalar, has shape " + shape_to_string(v.shape()));
      if (v.numel() == 1) std::memcpy(fill.data(), v.raw(), fill.size());
    }
    std::vector<int64_t> axes;
    if (in.size() > 3 && in[3]) axes = int_values(*in[3], "axes");
    out[0] = pad(x, mode, int_values(*in[1], "pads"), axes, fill);
  });
}

}  // namespace tinyq::rt
