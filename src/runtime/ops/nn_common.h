// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// Helpers shared by the neural-network op files (conv, pools, gemm, norms, resize): input type
// checks and the sliding-window attributes (kernel_shape, strides, dilations, pads, auto_pad)
// that Conv, ConvTranspose and the pools have in common.

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/conv_geometry.h"
#include "runtime/op.h"

namespace tinyq::rt::nn {

/// The float32 input `what`, or tinyq::Error (the session adds the node's name).
inline const Tensor& f32_input(const Tensor* t, const char* what) {
  if (t == nullptr || t->empty()) throw Error(std::string(what) + " is missing");
  if (t->dtype() != DType::F32)
    throw Error(std::string(what) + " must be float32 (tinyq's reference runtime computes this op in fp32), got " +
                dtype_name(t->dtype()));
  return *t;
}

/// Attribute values above this are refused: no real model comes near, and it keeps the size
/// arithmetic (in + pads, stride * (in - 1), ...) far from int64 overflow on hostile files.
constexpr int64_t kMaxWindowValue = int64_t{1} << 31;

/// Node attributes of the sliding-window ops, checked at session build.
struct WindowAttrs {
  std::vector<int64_t> kernel_shape;  ///< empty: take it from the weights (Conv, ConvTranspose)
  std::vector<int64_t> strides;       ///< empty: all 1
  std::vector<int64_t> dilations;     ///< empty: all 1
  std::vector<int64_t> pads;          ///< empty: all 0; else [begin..., end...]
  kernels::AutoPad auto_pad = kernels::AutoPad::NotSet;
};

inline WindowAttrs parse_window_attrs(const OpContext& ctx, bool kernel_required) {
  const Node& n = ctx.node;
  WindowAttrs w;
  w.kernel_shape = n.attr_ints("kernel_shape");
  w.strides = n.attr_ints("strides");
  w.dilations = n.attr_ints("dilations");
  w.pads = n.attr_ints("pads");
  std::string auto_pad = n.attr_string("auto_pad", "NOTSET");
  if (!kernels::parse_auto_pad(auto_pad, &w.auto_pad))
    ctx.fail("auto_pad '" + auto_pad + "' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID");
  if (kernel_required && w.kernel_shape.empty()) ctx.fail("kernel_shape attribute is required");
  if (!w.kernel_shape.empty() && w.kernel_shape.size() > static_cast<size_t>(kernels::kMaxSpatialRank))
    ctx.fail("supports 1 to 3 spatial dimensions, kernel_shape has " + std::to_string(w.kernel_shape.size()));
  for (int64_t k : w.kernel_shape)
    if (k < 1) ctx.fail("kernel_shape values must be positive");
  for (int64_t s : w.strides)
    if (s < 1) ctx.fail("strides must be positive");
  for (int64_t d : w.dilations)
    if (d < 1) ctx.fail("dilations must be positive");
  for (int64_t p : w.pads)
    if (p < 0) ctx.fail("pads must not be negative");
  for (const auto* list : {&w.kernel_shape, &w.strides, &w.dilations, &w.pads})
    for (int64_t v : *list)
      if (v > kMaxWindowValue) ctx.fail("kernel_shape, strides, dilations and pads must not exceed 2^31");
  if (w.pads.size() % 2 != 0) ctx.fail("pads must hold a begin and an end value per spatial axis");
  // When the kernel rank is known now, every list must match it.
  size_t rank = w.kernel_shape.size();
  if (rank != 0) {
    if (!w.strides.empty() && w.strides.size() != rank) ctx.fail("strides must have one value per spatial axis");
    if (!w.dilations.empty() && w.dilations.size() != rank)
      ctx.fail("dilations must have one value per spatial axis");
    if (!w.pads.empty() && w.pads.size() != 2 * rank) ctx.fail("pads must have two values per spatial axis");
  }
  return w;
}

/// Checks the attribute lists against the spatial rank once it is known (Conv learns it from the
/// weights); throws tinyq::Error.
inline void check_window_rank(const WindowAttrs& w, size_t rank) {
  if (rank < 1 || rank > static_cast<size_t>(kernels::kMaxSpatialRank))
    throw Error("supports 1 to 3 spatial dimensions, got " + std::to_string(rank));
  if (!w.kernel_shape.empty() && w.kernel_shape.size() != rank)
    throw Error("kernel_shape has " + std::to_string(w.kernel_shape.size()) + " values for " +
                std::to_string(rank) + " spatial dimensions");
  if (!w.strides.empty() && w.strides.size() != rank) throw Error("strides must have one value per spatial axis");
  if (!w.dilations.empty() && w.dilations.size() != rank)
    throw Error("dilations must have one value per spatial axis");
  if (!w.pads.empty() && w.pads.size() != 2 * rank) throw Error("pads must have two values per spatial axis");
}

inline int64_t stride_at(const WindowAttrs& w, size_t i) { return w.strides.empty() ? 1 : w.strides[i]; }
inline int64_t dilation_at(const WindowAttrs& w, size_t i) { return w.dilations.empty() ? 1 : w.dilations[i]; }
inline int64_t pad_begin_at(const WindowAttrs& w, size_t i) { return w.pads.empty() ? 0 : w.pads[i]; }
inline int64_t pad_end_at(const WindowAttrs& w, size_t i, size_t rank) {
  return w.pads.empty() ? 0 : w.pads[rank + i];
}

/// The pads of spatial axis i: the explicit ones, none under VALID, or what `same_pads()` gives
/// under SAME_UPPER / SAME_LOWER (each op computes SAME its own way).
template <typename SamePads>
kernels::AxisPads resolve_pads(const WindowAttrs& w, size_t i, size_t rank, SamePads same_pads) {
  if (w.auto_pad == kernels::AutoPad::Valid) return {0, 0};
  if (w.auto_pad == kernels::AutoPad::SameUpper || w.auto_pad == kernels::AutoPad::SameLower) return same_pads();
  return {pad_begin_at(w, i), pad_end_at(w, i, rank)};
}

/// Writes one spatial axis of a window geometry (ConvParams, PoolParams).
template <typename Params>
void set_window_axis(Params& p, size_t i, int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t dilation,
                     int64_t pad_begin) {
  p.in_size[i] = in;
  p.out_size[i] = out;
  p.kernel[i] = kernel;
  p.stride[i] = stride;
  p.dilation[i] = dilation;
  p.pad_begin[i] = pad_begin;
}

}  // namespace tinyq::rt::nn
