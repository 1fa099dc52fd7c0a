// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// Scalar reference pooling (fp32, NCHW). Batch and channels are folded into `planes`: every
// plane is pooled on its own.

#include <cstdint>

#include "kernels/conv_geometry.h"

namespace tinyq::kernels {

struct PoolParams {
  int64_t planes = 1;  ///< batch * channels
  int spatial_rank = 2;
  int64_t in_size[kMaxSpatialRank] = {1, 1, 1};
  int64_t out_size[kMaxSpatialRank] = {1, 1, 1};
  int64_t kernel[kMaxSpatialRank] = {1, 1, 1};
  int64_t stride[kMaxSpatialRank] = {1, 1, 1};
  int64_t dilation[kMaxSpatialRank] = {1, 1, 1};
  int64_t pad_begin[kMaxSpatialRank] = {0, 0, 0};
  int64_t pad_end[kMaxSpatialRank] = {0, 0, 0};
};

/// Max over each window's taps that fall inside the input (padding never wins). A window with
/// no tap inside the input (possible only with odd dilated geometry) yields the lowest float.
void max_pool_f32_ref(const PoolParams& p, const float* src, float* dst);

/// Mean over each window. count_include_pad: divide by the taps that lie inside the padded input
/// (ONNX's "pads count"; a ceil_mode window running past the end padding is cut there);
/// otherwise by the taps inside the input alone.
void avg_pool_f32_ref(const PoolParams& p, bool count_include_pad, const float* src, float* dst);

/// Mean / max of each plane of `plane_size` elements.
void global_avg_pool_f32_ref(int64_t planes, int64_t plane_size, const float* src, float* dst);
void global_max_pool_f32_ref(int64_t planes, int64_t plane_size, const float* src, float* dst);

}  // namespace tinyq::kernels
