// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// Scalar reference Resize (fp32, any rank). Every ONNX Resize mode is separable: each output
// element is a weighted sum over a product of per-axis input taps. So the kernel builds one
// sampling plan per axis (which input indices, which weights, for every output index) and
// resamples one axis at a time. Coordinates are computed in float, in the same expressions ONNX
// Runtime uses, so nearest-neighbour picks and interpolation weights agree with it exactly.

#include <cstdint>
#include <vector>

namespace tinyq::kernels {

enum class ResizeMode { Nearest, Linear, Cubic };
enum class ResizeCoordMode { HalfPixel, PytorchHalfPixel, AlignCorners, Asymmetric, TfHalfPixelForNn, TfCropAndResize };
enum class ResizeNearestMode { RoundPreferFloor, RoundPreferCeil, Floor, Ceil };

struct ResizeParams {
  ResizeMode mode = ResizeMode::Nearest;
  ResizeCoordMode coord = ResizeCoordMode::HalfPixel;
  ResizeNearestMode nearest = ResizeNearestMode::RoundPreferFloor;
  float cubic_coeff_a = -0.75f;
  bool exclude_outside = false;  ///< taps outside the input get weight 0, the rest renormalised
  bool antialias = false;        ///< linear/cubic: widen the filter by 1/scale when downsampling
  float extrapolation_value = 0.0f;  ///< tf_crop_and_resize: value for points outside the input
};

/// How one axis is resampled: output index j is sum over t in [first[j], first[j+1]) of
/// weight[t] * input[index[t]]; outside[j] marks points that take the extrapolation value.
struct ResizeAxisPlan {
  bool identity = false;  ///< scale 1: output j is input j
  std::vector<int64_t> first;
  std::vector<int64_t> index;
  std::vector<float> weight;
  std::vector<uint8_t> outside;
};

/// The input coordinate of output index x along an axis (ONNX's coordinate_transformation_mode).
float resize_original_coordinate(ResizeCoordMode mode, float x, float scale, float out_len, float in_len,
                                 float roi_start, float roi_end);

/// The plan of one axis: in_len -> out_len at `scale` (roi used by tf_crop_and_resize only).
ResizeAxisPlan resize_axis_plan(const ResizeParams& p, int64_t in_len, int64_t out_len, float scale, float roi_start,
                                float roi_end);

/// dst (out_shape) = resize(src (in_shape)). scales and roi_start/roi_end hold `rank` values each.
/// An output shape equal to the input shape copies the input.
void resize_f32_ref(const ResizeParams& p, int rank, const int64_t* in_shape, const int64_t* out_shape,
                    const float* scales, const float* roi_start, const float* roi_end, const float* src, float* dst);

}  // namespace tinyq::kernels
