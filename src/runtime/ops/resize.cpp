// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// Resize (opsets 11..18): inputs X, roi, scales, sizes (roi and scales may be omitted or empty
// from 13; one of scales and sizes must be non-empty). Modes nearest / linear / cubic on any
// rank; coordinate_transformation_mode half_pixel, pytorch_half_pixel, align_corners,
// asymmetric, tf_crop_and_resize (and opset 11's tf_half_pixel_for_nn); from opset 18 antialias,
// axes and keep_aspect_ratio_policy. Output sizes follow ONNX Runtime: floor(scale * in) computed
// in float for scales; for sizes, scale = out / in in float.

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "kernels/ref/resize_ref.h"
#include "runtime/ops/nn_common.h"

namespace tinyq::rt {

namespace {

using kernels::ResizeCoordMode;
using kernels::ResizeMode;
using kernels::ResizeNearestMode;

enum class AspectPolicy { Stretch, NotLarger, NotSmaller };

struct ResizeAttrs {
  kernels::ResizeParams params;
  std::vector<int64_t> axes;  ///< opset 18; empty: every axis
  AspectPolicy policy = AspectPolicy::Stretch;
};

ResizeAttrs parse_resize_attrs(const OpContext& ctx) {
  const Node& n = ctx.node;
  ResizeAttrs a;
  kernels::ResizeParams& p = a.params;
  const std::string mode = n.attr_string("mode", "nearest");
  if (mode == "nearest") p.mode = ResizeMode::Nearest;
  else if (mode == "linear") p.mode = ResizeMode::Linear;
  else if (mode == "cubic") p.mode = ResizeMode::Cubic;
  else ctx.fail("mode '" + mode + "' is not one of nearest, linear, cubic");

  const std::string coord = n.attr_string("coordinate_transformation_mode", "half_pixel");
  if (coord == "half_pixel") p.coord = ResizeCoordMode::HalfPixel;
  else if (coord == "pytorch_half_pixel") p.coord = ResizeCoordMode::PytorchHalfPixel;
  else if (coord == "align_corners") p.coord = ResizeCoordMode::AlignCorners;
  else if (coord == "asymmetric") p.coord = ResizeCoordMode::Asymmetric;
  else if (coord == "tf_crop_and_resize") p.coord = ResizeCoordMode::TfCropAndResize;
  else if (coord == "tf_half_pixel_for_nn") p.coord = ResizeCoordMode::TfHalfPixelForNn;  // opset 11 (ORT accepts later)
  else ctx.fail("coordinate_transformation_mode '" + coord + "' is not supported at opset " + std::to_string(ctx.opset));

  const std::string nearest = n.attr_string("nearest_mode", "round_prefer_floor");
  if (nearest == "round_prefer_floor") p.nearest = ResizeNearestMode::RoundPreferFloor;
  else if (nearest == "round_prefer_ceil") p.nearest = ResizeNearestMode::RoundPreferCeil;
  else if (nearest == "floor") p.nearest = ResizeNearestMode::Floor;
  else if (nearest == "ceil") p.nearest = ResizeNearestMode::Ceil;
  else ctx.fail("nearest_mode '" + nearest + "' is not one of round_prefer_floor, round_prefer_ceil, floor, ceil");

  p.cubic_coeff_a = n.attr_float("cubic_coeff_a", -0.75f);
  const int64_t exclude = n.attr_int("exclude_outside", 0);
  if (exclude != 0 && exclude != 1) ctx.fail("exclude_outside must be 0 or 1");
  p.exclude_outside = exclude == 1;
  p.extrapolation_value = n.attr_float("extrapolation_value", 0.0f);

  // The opset-18 attributes; earlier opsets do not define them.
  const bool v18 = ctx.opset >= 18;
  for (const char* name : {"antialias", "axes", "keep_aspect_ratio_policy"})
    if (!v18 && n.find_attr(name)) ctx.fail(std::string("attribute '") + name + "' needs opset 18");
  const int64_t antialias = n.attr_int("antialias", 0);
  if (antialias != 0 && antialias != 1) ctx.fail("antialias must be 0 or 1");
  p.antialias = antialias == 1;
  a.axes = n.attr_ints("axes");
  const std::string policy = n.attr_string("keep_aspect_ratio_policy", "stretch");
  if (policy == "stretch") a.policy = AspectPolicy::Stretch;
  else if (policy == "not_larger") a.policy = AspectPolicy::NotLarger;
  else if (policy == "not_smaller") a.policy = AspectPolicy::NotSmaller;
  else ctx.fail("keep_aspect_ratio_policy '" + policy + "' is not one of stretch, not_larger, not_smaller");
  return a;
}

// The axes the scales/sizes/roi values refer to, normalised against the input rank.
std::vector<size_t> resolve_axes(const std::vector<int64_t>& axes, size_t rank) {
  std::vector<size_t> out;
  if (axes.empty()) {
    for (size_t i = 0; i < rank; ++i) out.push_back(i);
    return out;
  }
  const int64_t r = static_cast<int64_t>(rank);
  for (int64_t ax : axes) {
    if (ax < -r || ax >= r) throw Error("axis " + std::to_string(ax) + " is out of range for rank " + std::to_string(r));
    size_t v = static_cast<size_t>(ax < 0 ? ax + r : ax);
    if (std::find(out.begin(), out.end(), v) != out.end()) throw Error("axes lists axis " + std::to_string(ax) + " twice");
    out.push_back(v);
  }
  return out;
}

bool present(const Tensor* t) { return t != nullptr && !t->empty() && t->numel() > 0; }

void check_scales(const std::vector<double>& scales) {
  for (double s : scales)
    if (!(s > 0) || !std::isfinite(s)) throw Error("scales must be positive and finite");
}

void check_sizes(const std::vector<int64_t>& sizes) {
  for (int64_t s : sizes)
    if (s < 0) throw Error("sizes must not be negative");
}

// A computed output dim, refused when a hostile scale would overflow the conversion.
int64_t float_to_dim(float v) {
  if (!(v < 1e15f)) throw Error("the scales give an output dimension too large to allocate");
  return static_cast<int64_t>(v);
}

struct ResizePlan {
  Shape out_shape;
  std::vector<float> scales, roi_start, roi_end;
};

ResizePlan plan_resize(const ResizeAttrs& a, const Shape& x, const Tensor* roi, const Tensor* scales,
                       const Tensor* sizes) {
  const size_t rank = x.size();
  if (rank == 0) throw Error("input X must have rank 1 or more");
  const std::vector<size_t> axes = resolve_axes(a.axes, rank);
  ResizePlan r;
  r.out_shape = x;
  r.scales.assign(rank, 1.0f);
  r.roi_start.assign(rank, 0.0f);
  r.roi_end.assign(rank, 1.0f);

  if (present(scales) && present(sizes)) throw Error("only one of scales and sizes may be given");
  if (present(scales)) {
    std::vector<double> s = tensor_to_doubles(*scales);
    if (s.size() != axes.size())
      throw Error("scales has " + std::to_string(s.size()) + " values, expected " + std::to_string(axes.size()));
    check_scales(s);
    for (size_t i = 0; i < axes.size(); ++i) r.scales[axes[i]] = static_cast<float>(s[i]);
    // the product is taken in float and truncated, like ONNX Runtime
    for (size_t i = 0; i < rank; ++i) r.out_shape[i] = float_to_dim(r.scales[i] * static_cast<float>(x[i]));
  } else if (present(sizes)) {
    std::vector<int64_t> s = tensor_to_int64s(*sizes);
    if (s.size() != axes.size())
      throw Error("sizes has " + std::to_string(s.size()) + " values, expected " + std::to_string(axes.size()));
    check_sizes(s);
    for (size_t i = 0; i < axes.size(); ++i) r.out_shape[axes[i]] = s[i];
    for (size_t i = 0; i < rank; ++i) {
      if (x[i] == 0) {
        if (r.out_shape[i] != 0) throw Error("cannot resize the empty axis " + std::to_string(i) + " to a non-empty one");
        r.scales[i] = 1.0f;
      } else {
        r.scales[i] = static_cast<float>(r.out_shape[i]) / static_cast<float>(x[i]);
      }
    }
    if (a.policy != AspectPolicy::Stretch) {
      // One scale for all the listed axes (every axis when `axes` is absent): the smallest
      // (not_larger) or largest (not_smaller); the others keep their size.
      float common = a.policy == AspectPolicy::NotLarger ? std::numeric_limits<float>::max()
                                                         : std::numeric_limits<float>::min();
      for (size_t ax : axes)
        common = a.policy == AspectPolicy::NotLarger ? std::min(common, r.scales[ax]) : std::max(common, r.scales[ax]);
      for (size_t i = 0; i < rank; ++i) {
        const bool listed = std::find(axes.begin(), axes.end(), i) != axes.end();
        r.scales[i] = listed ? common : 1.0f;
        r.out_shape[i] = listed ? float_to_dim(std::round(common * static_cast<float>(x[i]))) : x[i];
      }
    }
  } else {
    throw Error("one of scales and sizes must be given (non-empty)");
  }

  if (a.params.coord == ResizeCoordMode::TfCropAndResize && present(roi)) {
    std::vector<double> v = tensor_to_doubles(*roi);
    if (v.size() != 2 * axes.size())
      throw Error("roi has " + std::to_string(v.size()) + " values, expected " + std::to_string(2 * axes.size()));
    for (size_t i = 0; i < axes.size(); ++i) {
      r.roi_start[axes[i]] = static_cast<float>(v[i]);
      r.roi_end[axes[i]] = static_cast<float>(v[axes.size() + i]);
    }
  }
  for (size_t i = 0; i < rank; ++i)
    if (x[i] == 0 && r.out_shape[i] != 0)
      throw Error("cannot resize the empty axis " + std::to_string(i) + " to a non-empty one");
  return r;
}

}  // namespace

std::unique_ptr<Op> make_resize(const OpContext& ctx) {
  const Node& node = ctx.node;
  if (!node.has_input(0) || node.inputs.size() > 4 || node.outputs.size() != 1)
    ctx.fail("takes inputs X, roi, scales, sizes and one output");
  ResizeAttrs a = parse_resize_attrs(ctx);
  // Constant scales/sizes (the usual case) are checked now.
  try {
    if (const Tensor* s = ctx.constant(2); present(s)) {
      if (s->dtype() != DType::F32) ctx.fail("scales must be float32");
      if (!a.axes.empty() && static_cast<size_t>(s->numel()) != a.axes.size())
        ctx.fail("scales must have one value per entry of axes");
      check_scales(tensor_to_doubles(*s));
    }
    if (const Tensor* s = ctx.constant(3); present(s)) {
      if (s->dtype() != DType::I64) ctx.fail("sizes must be int64");
      if (!a.axes.empty() && static_cast<size_t>(s->numel()) != a.axes.size())
        ctx.fail("sizes must have one value per entry of axes");
      check_sizes(tensor_to_int64s(*s));
    }
    if (present(ctx.constant(2)) && present(ctx.constant(3))) ctx.fail("only one of scales and sizes may be given");
  } catch (const Error& e) {
    if (e.subject() == node.label()) throw;
    ctx.fail(e.what());
  }
  return make_lambda_op([a](const OpInputs& in, std::vector<Tensor>& out) {
    const Tensor& x = nn::f32_input(in[0], "input X");
    auto opt = [&](size_t i) -> const Tensor* { return i < in.size() ? in[i] : nullptr; };
    ResizePlan r = plan_resize(a, x.shape(), opt(1), opt(2), opt(3));
    Tensor y(DType::F32, r.out_shape);
    kernels::resize_f32_ref(a.params, static_cast<int>(x.rank()), x.shape().data(), r.out_shape.data(),
                            r.scales.data(), r.roi_start.data(), r.roi_end.data(), x.data<float>(), y.data<float>());
    out[0] = std::move(y);
  });
}

}  // namespace tinyq::rt
