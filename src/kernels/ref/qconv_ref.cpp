// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include "kernels/ref/qconv_ref.h"

#include <algorithm>

#include "kernels/ref/qgemm_ref.h"
#include "kernels/ref/window_3d.h"

namespace tinyq::kernels {

namespace {

// A 1x1 kernel with stride 1 and no padding reads the image as it is: the columns are the
// input channels themselves, so im2col is skipped.
bool is_pointwise(const Window3d& g) {
  for (int a = 0; a < 3; ++a)
    if (g.kernel[a] != 1 || g.stride[a] != 1 || g.pad_begin[a] != 0 || g.in[a] != g.out[a]) return false;
  return true;
}

// Columns of one group of one image: row (c, kd, kh, kw), column (od, oh, ow) holds the input
// under that tap at that output position, or pad_value where the tap falls in the padding.
template <typename T>
void im2col(const Window3d& g, int64_t channels, const T* src, T pad_value, T* col) {
  const int64_t in_plane = volume(g.in), out_plane = volume(g.out);
  for (int64_t c = 0; c < channels; ++c) {
    const T* in = src + c * in_plane;
    for (int64_t kd = 0; kd < g.kernel[0]; ++kd) {
      for (int64_t kh = 0; kh < g.kernel[1]; ++kh) {
        for (int64_t kw = 0; kw < g.kernel[2]; ++kw) {
          const OutputRange rw = valid_output_range(g.in[2], g.out[2], g.stride[2], g.pad_begin[2], kw * g.dilation[2]);
          T* row = col;
          col += out_plane;
          for (int64_t od = 0; od < g.out[0]; ++od) {
            const int64_t id = od * g.stride[0] - g.pad_begin[0] + kd * g.dilation[0];
            for (int64_t oh = 0; oh < g.out[1]; ++oh, row += g.out[2]) {
              const int64_t ih = oh * g.stride[1] - g.pad_begin[1] + kh * g.dilation[1];
              if (id < 0 || id >= g.in[0] || ih < 0 || ih >= g.in[1]) {
                std::fill(row, row + g.out[2], pad_value);
                continue;
              }
              const T* in_row = in + (id * g.in[1] + ih) * g.in[2];
              const int64_t shift = kw * g.dilation[2] - g.pad_begin[2];
              std::fill(row, row + rw.lo, pad_value);
              for (int64_t ow = rw.lo; ow < rw.hi; ++ow) row[ow] = in_row[ow * g.stride[2] + shift];
              std::fill(row + rw.hi, row + g.out[2], pad_value);
            }
          }
        }
      }
    }
  }
}

template <typename TX, typename TW>
void qconv_impl(const ConvParams& p, const TX* src, int32_t src_zero_point, const TW* weights,
                const int32_t* w_zero_points, int64_t w_zp_stride, int32_t* dst, TX* scratch) {
  const Window3d g = window_3d(p);
  const int64_t in_plane = volume(g.in), out_plane = volume(g.out), taps = volume(g.kernel);
  const int64_t ic_per_group = p.in_channels / p.group, oc_per_group = p.out_channels / p.group;
  const int64_t k = ic_per_group * taps;
  const bool pointwise = is_pointwise(g);
  const int32_t zx = src_zero_point;

  for (int64_t n = 0; n < p.batch; ++n) {
    for (int64_t grp = 0; grp < p.group; ++grp) {
      const TX* in = src + (n * p.in_channels + grp * ic_per_group) * in_plane;
      const TX* cols = in;
      if (!pointwise) {
        im2col(g, ic_per_group, in, static_cast<TX>(zx), scratch);
        cols = scratch;
      }
      QGemmArgs<TW, TX> gemm;
      gemm.m = oc_per_group;
      gemm.n = out_plane;
      gemm.k = k;
      gemm.a = weights + grp * oc_per_group * k;
      gemm.lda = k;
      gemm.b = cols;
      gemm.ldb = out_plane;
      gemm.c = dst + (n * p.out_channels + grp * oc_per_group) * out_plane;
      gemm.ldc = out_plane;
      gemm.a_zero_points = w_zero_points ? w_zero_points + grp * oc_per_group * w_zp_stride : nullptr;
      gemm.a_zp_stride = w_zp_stride;
      gemm.b_zero_points = &zx;
      gemm.b_zp_stride = 0;
      qgemm_ref(gemm);
    }
  }
}

}  // namespace

bool qconv_resolve(const QConvAttrs& attrs, const std::vector<int64_t>& x_shape,
                   const std::vector<int64_t>& w_shape, ConvParams* params, std::string* error) {
  auto fail = [&](const std::string& what) {
    *error = what;
    return false;
  };
  const size_t rank = x_shape.size();
  if (rank < 3 || rank > 2 + kMaxSpatialRank)
    return fail("input must have rank 3 to 5 ([N, C, spatial...]), has rank " + std::to_string(rank));
  if (w_shape.size() != rank)
    return fail("weights must have the input's rank " + std::to_string(rank) + ", have rank " +
                std::to_string(w_shape.size()));
  const int sr = static_cast<int>(rank) - 2;
  ConvParams p;
  p.spatial_rank = sr;
  p.batch = x_shape[0];
  p.in_channels = x_shape[1];
  p.out_channels = w_shape[0];
  p.group = attrs.group;
  if (p.group < 1) return fail("group must be at least 1, is " + std::to_string(p.group));
  if (p.in_channels % p.group != 0 || w_shape[1] * p.group != p.in_channels)
    return fail("input has " + std::to_string(p.in_channels) + " channels but weights expect " +
                std::to_string(w_shape[1]) + " per group x " + std::to_string(p.group) + " groups");
  if (p.out_channels < 1 || p.out_channels % p.group != 0)
    return fail(std::to_string(p.out_channels) + " output channels do not split into " +
                std::to_string(p.group) + " groups");
  auto check_len = [&](const std::vector<int64_t>& v, size_t want, const char* name) {
    if (!v.empty() && v.size() != want) {
      *error = std::string(name) + " has " + std::to_string(v.size()) + " values, expected " + std::to_string(want);
      return false;
    }
    return true;
  };
  if (!check_len(attrs.kernel_shape, sr, "kernel_shape") || !check_len(attrs.strides, sr, "strides") ||
      !check_len(attrs.dilations, sr, "dilations") || !check_len(attrs.pads, 2 * sr, "pads"))
    return false;
  for (int a = 0; a < sr; ++a) {
    p.in_size[a] = x_shape[2 + a];
    p.kernel[a] = w_shape[2 + a];
    if (p.kernel[a] < 1) return fail("weights have an empty kernel axis");
    if (!attrs.kernel_shape.empty() && attrs.kernel_shape[a] != p.kernel[a])
      return fail("kernel_shape does not match the weights' shape");
    p.stride[a] = attrs.strides.empty() ? 1 : attrs.strides[a];
    p.dilation[a] = attrs.dilations.empty() ? 1 : attrs.dilations[a];
    if (p.stride[a] < 1) return fail("strides must be at least 1");
    if (p.dilation[a] < 1) return fail("dilations must be at least 1");
    AxisPads pads;
    if (attrs.auto_pad == AutoPad::SameUpper || attrs.auto_pad == AutoPad::SameLower) {
      pads = conv_same_pads(p.in_size[a], p.kernel[a], p.stride[a], p.dilation[a], attrs.auto_pad);
    } else if (attrs.auto_pad == AutoPad::NotSet && !attrs.pads.empty()) {
      pads.begin = attrs.pads[a];
      pads.end = attrs.pads[a + sr];
      if (pads.begin < 0 || pads.end < 0) return fail("pads must not be negative");
    }
    p.pad_begin[a] = pads.begin;
    p.out_size[a] = conv_output_size(p.in_size[a], p.kernel[a], p.stride[a], p.dilation[a], pads.begin, pads.end);
    if (p.out_size[a] < 1)
      return fail("the kernel (extent " + std::to_string(dilated_extent(p.kernel[a], p.dilation[a])) +
                  ") does not fit spatial axis " + std::to_string(a) + " of size " + std::to_string(p.in_size[a]) +
                  " with its padding");
  }
  *params = p;
  return true;
}

int64_t qconv_scratch_size(const ConvParams& p) {
  const Window3d g = window_3d(p);
  return (p.in_channels / p.group) * volume(g.kernel) * volume(g.out);
}

void qconv_u8s8_ref(const ConvParams& p, const uint8_t* src, int32_t src_zero_point, const int8_t* weights,
                    const int32_t* w_zero_points, int64_t w_zp_stride, int32_t* dst, uint8_t* scratch) {
  qconv_impl(p, src, src_zero_point, weights, w_zero_points, w_zp_stride, dst, scratch);
}
void qconv_u8u8_ref(const ConvParams& p, const uint8_t* src, int32_t src_zero_point, const uint8_t* weights,
                    const int32_t* w_zero_points, int64_t w_zp_stride, int32_t* dst, uint8_t* scratch) {
  qconv_impl(p, src, src_zero_point, weights, w_zero_points, w_zp_stride, dst, scratch);
}
void qconv_s8s8_ref(const ConvParams& p, const int8_t* src, int32_t src_zero_point, const int8_t* weights,
                    const int32_t* w_zero_points, int64_t w_zp_stride, int32_t* dst, int8_t* scratch) {
  qconv_impl(p, src, src_zero_point, weights, w_zero_points, w_zp_stride, dst, scratch);
}
void qconv_s8u8_ref(const ConvParams& p, const int8_t* src, int32_t src_zero_point, const uint8_t* weights,
                    const int32_t* w_zero_points, int64_t w_zp_stride, int32_t* dst, int8_t* scratch) {
  qconv_impl(p, src, src_zero_point, weights, w_zero_points, w_zp_stride, dst, scratch);
}

}  // namespace tinyq::kernels
