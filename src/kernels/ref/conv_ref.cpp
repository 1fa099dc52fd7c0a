// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include "kernels/ref/conv_ref.h"

#include <algorithm>

#include "kernels/ref/window_3d.h"

namespace tinyq::kernels {

// Direct convolution, ordered so the innermost loop runs along one output row: for every
// (output channel, input channel, tap) the tap's weight times a strided input row is added to
// the output row, over the output positions whose input lies inside the image (so padding costs
// nothing and needs no test per element). Each output still sums its taps in the natural
// (input channel, kd, kh, kw) order.
void conv_f32_ref(const ConvParams& p, const float* src, const float* weights, const float* bias, float* dst) {
  const Window3d g = window_3d(p);
  const int64_t in_plane = volume(g.in), out_plane = volume(g.out), taps = volume(g.kernel);
  const int64_t ic_per_group = p.in_channels / p.group, oc_per_group = p.out_channels / p.group;

  for (int64_t n = 0; n < p.batch; ++n) {
    for (int64_t oc = 0; oc < p.out_channels; ++oc) {
      const int64_t grp = oc / oc_per_group;
      float* out = dst + (n * p.out_channels + oc) * out_plane;
      std::fill(out, out + out_plane, bias ? bias[oc] : 0.0f);
      for (int64_t icg = 0; icg < ic_per_group; ++icg) {
        const int64_t ic = grp * ic_per_group + icg;
        const float* in = src + (n * p.in_channels + ic) * in_plane;
        const float* w = weights + (oc * ic_per_group + icg) * taps;
        for (int64_t kd = 0; kd < g.kernel[0]; ++kd) {
          OutputRange rd = valid_output_range(g.in[0], g.out[0], g.stride[0], g.pad_begin[0], kd * g.dilation[0]);
          for (int64_t kh = 0; kh < g.kernel[1]; ++kh) {
            OutputRange rh = valid_output_range(g.in[1], g.out[1], g.stride[1], g.pad_begin[1], kh * g.dilation[1]);
            for (int64_t kw = 0; kw < g.kernel[2]; ++kw) {
              OutputRange rw = valid_output_range(g.in[2], g.out[2], g.stride[2], g.pad_begin[2], kw * g.dilation[2]);
              const float wv = w[(kd * g.kernel[1] + kh) * g.kernel[2] + kw];
              for (int64_t od = rd.lo; od < rd.hi; ++od) {
                const int64_t id = od * g.stride[0] - g.pad_begin[0] + kd * g.dilation[0];
                for (int64_t oh = rh.lo; oh < rh.hi; ++oh) {
                  const int64_t ih = oh * g.stride[1] - g.pad_begin[1] + kh * g.dilation[1];
                  // integer offsets: the row's origin may lie left of the buffer
                  const int64_t in_base = (id * g.in[1] + ih) * g.in[2] - g.pad_begin[2] + kw * g.dilation[2];
                  float* out_row = out + (od * g.out[1] + oh) * g.out[2];
                  for (int64_t ow = rw.lo; ow < rw.hi; ++ow) out_row[ow] += wv * in[in_base + ow * g.stride[2]];
                }
              }
            }
          }
        }
      }
    }
  }
}

// Transposed convolution as the adjoint of the direct one: every input element, times each tap,
// is added to the output position that tap reaches. Positions outside the output (cut off by
// the pads) are skipped with the same range arithmetic as above, seen from the input side.
void conv_transpose_f32_ref(const ConvParams& p, const float* src, const float* weights, const float* bias,
                            float* dst) {
  const Window3d g = window_3d(p);
  const int64_t in_plane = volume(g.in), out_plane = volume(g.out), taps = volume(g.kernel);
  const int64_t ic_per_group = p.in_channels / p.group, oc_per_group = p.out_channels / p.group;

  for (int64_t n = 0; n < p.batch; ++n) {
    for (int64_t oc = 0; oc < p.out_channels; ++oc) {
      float* out = dst + (n * p.out_channels + oc) * out_plane;
      std::fill(out, out + out_plane, bias ? bias[oc] : 0.0f);
    }
    for (int64_t ic = 0; ic < p.in_channels; ++ic) {
      const int64_t grp = ic / ic_per_group;
      const float* in = src + (n * p.in_channels + ic) * in_plane;
      for (int64_t ocg = 0; ocg < oc_per_group; ++ocg) {
        const int64_t oc = grp * oc_per_group + ocg;
        float* out = dst + (n * p.out_channels + oc) * out_plane;
        const float* w = weights + (ic * oc_per_group + ocg) * taps;
        for (int64_t kd = 0; kd < g.kernel[0]; ++kd) {
          // input positions i with i * stride - pad + k * dilation inside [0, out)
          OutputRange rd = valid_output_range(g.out[0], g.in[0], g.stride[0], g.pad_begin[0], kd * g.dilation[0]);
          for (int64_t kh = 0; kh < g.kernel[1]; ++kh) {
            OutputRange rh = valid_output_range(g.out[1], g.in[1], g.stride[1], g.pad_begin[1], kh * g.dilation[1]);
            for (int64_t kw = 0; kw < g.kernel[2]; ++kw) {
              OutputRange rw = valid_output_range(g.out[2], g.in[2], g.stride[2], g.pad_begin[2], kw * g.dilation[2]);
              const float wv = w[(kd * g.kernel[1] + kh) * g.kernel[2] + kw];
              for (int64_t id = rd.lo; id < rd.hi; ++id) {
                const int64_t od = id * g.stride[0] - g.pad_begin[0] + kd * g.dilation[0];
                for (int64_t ih = rh.lo; ih < rh.hi; ++ih) {
                  const int64_t oh = ih * g.stride[1] - g.pad_begin[1] + kh * g.dilation[1];
                  const float* in_row = in + (id * g.in[1] + ih) * g.in[2];
                  const int64_t out_base = (od * g.out[1] + oh) * g.out[2] - g.pad_begin[2] + kw * g.dilation[2];
                  for (int64_t iw = rw.lo; iw < rw.hi; ++iw) out[out_base + iw * g.stride[2]] += wv * in_row[iw];
                }
              }
            }
          }
        }
      }
    }
  }
}

}  // namespace tinyq::kernels
