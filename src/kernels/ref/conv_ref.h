// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// Scalar reference convolutions (NCHW, fp32): the oracle for faster kernels and the fallback.
// 1-D and 2-D problems are run as 3-D ones whose leading spatial axes have size 1.

#include <cstdint>

#include "kernels/conv_geometry.h"

namespace tinyq::kernels {

/// Geometry of a grouped convolution. Spatial arrays hold `spatial_rank` (1..3) entries; the
/// input is [batch, in_channels, in_size...], the output [batch, out_channels, out_size...].
struct ConvParams {
  int64_t batch = 1;
  int64_t in_channels = 0;   ///< all groups together
  int64_t out_channels = 0;  ///< all groups together
  int64_t group = 1;
  int spatial_rank = 2;
  int64_t in_size[kMaxSpatialRank] = {1, 1, 1};
  int64_t out_size[kMaxSpatialRank] = {1, 1, 1};
  int64_t kernel[kMaxSpatialRank] = {1, 1, 1};
  int64_t stride[kMaxSpatialRank] = {1, 1, 1};
  int64_t dilation[kMaxSpatialRank] = {1, 1, 1};
  int64_t pad_begin[kMaxSpatialRank] = {0, 0, 0};  ///< the end pads only shape out_size
};

/// dst = conv(src, weights) + bias. weights: [out_channels, in_channels / group, kernel...];
/// bias: [out_channels] or nullptr. Positions in the padding read as zero.
void conv_f32_ref(const ConvParams& p, const float* src, const float* weights, const float* bias, float* dst);

/// Transposed convolution. weights: [in_channels, out_channels / group, kernel...] (ONNX's
/// layout); input position i feeds output position i * stride - pad_begin + k * dilation.
/// Output positions no tap reaches hold the bias (or zero).
void conv_transpose_f32_ref(const ConvParams& p, const float* src, const float* weights, const float* bias,
                            float* dst);

}  // namespace tinyq::kernels
