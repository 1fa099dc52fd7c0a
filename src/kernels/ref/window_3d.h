// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// The reference kernels run every window problem (convolution, pooling) as a 3-D one: spatial
// axes right-aligned into (depth, height, width), the missing leading ones of size 1 with
// kernel 1, stride 1 and no padding. One loop nest then serves 1-D, 2-D and 3-D.

#include <cstdint>
#include <type_traits>

#include "kernels/conv_geometry.h"

namespace tinyq::kernels {

struct Window3d {
  int64_t in[3], out[3], kernel[3], stride[3], dilation[3], pad_begin[3], pad_end[3];
};

namespace detail {
template <typename P, typename = void>
struct HasPadEnd : std::false_type {};
template <typename P>
struct HasPadEnd<P, std::void_t<decltype(std::declval<P>().pad_end)>> : std::true_type {};
}  // namespace detail

/// `p` (ConvParams, PoolParams: spatial_rank and per-axis arrays) as 3-D. pad_end is 0 for
/// geometries without one (a convolution's end padding is implied by its output size).
template <typename Params>
Window3d window_3d(const Params& p) {
  Window3d g;
  const int lead = kMaxSpatialRank - p.spatial_rank;
  for (int a = 0; a < kMaxSpatialRank; ++a) {
    const int s = a - lead;
    const bool real = s >= 0;
    g.in[a] = real ? p.in_size[s] : 1;
    g.out[a] = real ? p.out_size[s] : 1;
    g.kernel[a] = real ? p.kernel[s] : 1;
    g.stride[a] = real ? p.stride[s] : 1;
    g.dilation[a] = real ? p.dilation[s] : 1;
    g.pad_begin[a] = real ? p.pad_begin[s] : 0;
    g.pad_end[a] = 0;
    if constexpr (detail::HasPadEnd<Params>::value) g.pad_end[a] = real ? p.pad_end[s] : 0;
  }
  return g;
}

inline int64_t volume(const int64_t* v) { return v[0] * v[1] * v[2]; }

}  // namespace tinyq::kernels
