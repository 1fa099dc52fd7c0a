// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// Sliding-window geometry shared by Conv, ConvTranspose, the pools and their quantised forms
// (ConvInteger, QLinearConv): output sizes, auto_pad, and the range of output positions a kernel
// tap can reach. Header-only, no graph types, so both the runtime's op files and the kernels can
// use it. All sizes are per spatial axis.

#include <algorithm>
#include <cstdint>
#include <string>

namespace tinyq::kernels {

/// The most spatial axes any sliding-window kernel handles (1-D, 2-D and 3-D convolutions).
constexpr int kMaxSpatialRank = 3;

enum class AutoPad { NotSet, SameUpper, SameLower, Valid };

/// ONNX's auto_pad string; false for an unknown value.
inline bool parse_auto_pad(const std::string& text, AutoPad* out) {
  if (text == "NOTSET" || text.empty()) *out = AutoPad::NotSet;
  else if (text == "SAME_UPPER") *out = AutoPad::SameUpper;
  else if (text == "SAME_LOWER") *out = AutoPad::SameLower;
  else if (text == "VALID") *out = AutoPad::Valid;
  else return false;
  return true;
}

/// Division rounding towards minus infinity (b > 0), for window starts left of zero.
inline int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
/// Division rounding towards plus infinity (b > 0).
inline int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }

/// Extent of a dilated kernel: the taps sit at 0, d, 2d, ..., (k-1)d.
inline int64_t dilated_extent(int64_t kernel, int64_t dilation) { return (kernel - 1) * dilation + 1; }

struct AxisPads {
  int64_t begin = 0;
  int64_t end = 0;
};

/// SAME_UPPER / SAME_LOWER padding of a convolution: pad so the output has ceil(in / stride)
/// positions; an odd total puts the extra element at the end (UPPER) or the beginning (LOWER).
/// The total is never negative (a stride larger than the kernel needs none).
inline AxisPads conv_same_pads(int64_t in, int64_t kernel, int64_t stride, int64_t dilation, AutoPad mode) {
  int64_t target = (in + stride - 1) / stride;
  int64_t total = std::max<int64_t>(0, (target - 1) * stride + dilated_extent(kernel, dilation) - in);
  AxisPads p;
  p.begin = mode == AutoPad::SameLower ? (total + 1) / 2 : total / 2;
  p.end = total - p.begin;
  return p;
}

/// SAME_UPPER / SAME_LOWER padding of MaxPool / AveragePool as ONNX Runtime computes it: like
/// conv_same_pads but from the undilated kernel, so with dilations the output is not
/// ceil(in / stride). (ONNX Runtime refuses a negative total; tinyq clamps it at zero.)
inline AxisPads pool_same_pads(int64_t in, int64_t kernel, int64_t stride, AutoPad mode) {
  return conv_same_pads(in, kernel, stride, 1, mode);
}

/// Output length of a convolution or pool: floor((in + pads - extent) / stride) + 1. With
/// ceil_mode (pools) the division rounds up, but a last window that would start inside the end
/// padding is dropped, as ONNX specifies and ONNX Runtime does. Returns a value < 1 when the
/// window does not fit; callers reject that.
inline int64_t conv_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t dilation, int64_t pad_begin,
                                int64_t pad_end, bool ceil_mode = false) {
  int64_t span = in + pad_begin + pad_end - dilated_extent(kernel, dilation);
  if (span < 0) return 0;
  if (!ceil_mode) return span / stride + 1;
  int64_t out = ceil_div(span, stride) + 1;
  if ((out - 1) * stride >= in + pad_begin) --out;
  return out;
}

/// Natural output length of a transposed convolution.
inline int64_t conv_transpose_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t dilation,
                                          int64_t pad_begin, int64_t pad_end, int64_t output_padding) {
  return stride * (in - 1) + output_padding + dilated_extent(kernel, dilation) - pad_begin - pad_end;
}

/// Pads of a transposed convolution that must produce `out` positions (from output_shape, or
/// in * stride under SAME_*). As ONNX specifies: the odd element goes at the end for SAME_UPPER
/// and at the beginning otherwise. The total is clamped at zero (a larger output_shape leaves
/// the extra positions holding only the bias).
inline AxisPads conv_transpose_pads_for_output(int64_t in, int64_t out, int64_t kernel, int64_t stride,
                                               int64_t dilation, int64_t output_padding, AutoPad mode) {
  int64_t total = std::max<int64_t>(
      0, stride * (in - 1) + output_padding + dilated_extent(kernel, dilation) - out);
  AxisPads p;
  if (mode == AutoPad::SameUpper) {
    p.begin = total / 2;
    p.end = total - total / 2;
  } else {
    p.begin = total - total / 2;
    p.end = total / 2;
  }
  return p;
}

/// Output positions o in [lo, hi) whose input position o * stride - pad_begin + tap_offset falls
/// inside [0, in): the loop bounds that let a kernel skip padding without a test per element.
/// tap_offset is k * dilation for tap k.
struct OutputRange {
  int64_t lo = 0;
  int64_t hi = 0;
};
inline OutputRange valid_output_range(int64_t in, int64_t out, int64_t stride, int64_t pad_begin,
                                      int64_t tap_offset) {
  // o * stride + shift in [0, in - 1], shift = tap_offset - pad_begin
  int64_t shift = tap_offset - pad_begin;
  OutputRange r;
  r.lo = std::max<int64_t>(0, ceil_div(-shift, stride));
  r.hi = std::min<int64_t>(out, floor_div(in - 1 - shift, stride) + 1);
  if (r.hi < r.lo) r.hi = r.lo;
  return r;
}

}  // namespace tinyq::kernels
