// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include "kernels/ref/pool_ref.h"

#include <algorithm>
#include <limits>

#include "kernels/ref/window_3d.h"

namespace tinyq::kernels {

namespace {

// Calls fn(input offset or -1, inside_padded_input) for every tap of the window at `o`.
// A tap is "inside" when it lies in the input, "padded" when it lies in [-pad_begin, in + pad_end).
template <typename Fn>
void for_each_tap(const Window3d& g, const int64_t o[3], Fn fn) {
  for (int64_t kd = 0; kd < g.kernel[0]; ++kd) {
    const int64_t d = o[0] * g.stride[0] - g.pad_begin[0] + kd * g.dilation[0];
    const bool pd = d >= -g.pad_begin[0] && d < g.in[0] + g.pad_end[0];
    for (int64_t kh = 0; kh < g.kernel[1]; ++kh) {
      const int64_t h = o[1] * g.stride[1] - g.pad_begin[1] + kh * g.dilation[1];
      const bool ph = h >= -g.pad_begin[1] && h < g.in[1] + g.pad_end[1];
      for (int64_t kw = 0; kw < g.kernel[2]; ++kw) {
        const int64_t w = o[2] * g.stride[2] - g.pad_begin[2] + kw * g.dilation[2];
        const bool pw = w >= -g.pad_begin[2] && w < g.in[2] + g.pad_end[2];
        const bool inside = d >= 0 && d < g.in[0] && h >= 0 && h < g.in[1] && w >= 0 && w < g.in[2];
        fn(inside ? (d * g.in[1] + h) * g.in[2] + w : -1, pd && ph && pw);
      }
    }
  }
}

template <typename Fn>
void for_each_output(const Window3d& g, Fn fn) {
  int64_t o[3];
  int64_t idx = 0;
  for (o[0] = 0; o[0] < g.out[0]; ++o[0])
    for (o[1] = 0; o[1] < g.out[1]; ++o[1])
      for (o[2] = 0; o[2] < g.out[2]; ++o[2]) fn(o, idx++);
}

}  // namespace

void max_pool_f32_ref(const PoolParams& p, const float* src, float* dst) {
  const Window3d g = window_3d(p);
  const int64_t in_plane = g.in[0] * g.in[1] * g.in[2], out_plane = g.out[0] * g.out[1] * g.out[2];
  for (int64_t c = 0; c < p.planes; ++c) {
    const float* in = src + c * in_plane;
    float* out = dst + c * out_plane;
    for_each_output(g, [&](const int64_t* o, int64_t idx) {
      float m = std::numeric_limits<float>::lowest();
      for_each_tap(g, o, [&](int64_t off, bool) {
        if (off >= 0) m = std::max(m, in[off]);
      });
      out[idx] = m;
    });
  }
}

void avg_pool_f32_ref(const PoolParams& p, bool count_include_pad, const float* src, float* dst) {
  const Window3d g = window_3d(p);
  const int64_t in_plane = g.in[0] * g.in[1] * g.in[2], out_plane = g.out[0] * g.out[1] * g.out[2];
  for (int64_t c = 0; c < p.planes; ++c) {
    const float* in = src + c * in_plane;
    float* out = dst + c * out_plane;
    for_each_output(g, [&](const int64_t* o, int64_t idx) {
      float sum = 0.0f;
      int64_t inside = 0, padded = 0;
      for_each_tap(g, o, [&](int64_t off, bool in_padded) {
        if (off >= 0) {
          sum += in[off];
          ++inside;
        }
        if (in_padded) ++padded;
      });
      // A window with no tap in the input divides by zero, as ONNX Runtime does.
      out[idx] = sum / static_cast<float>(count_include_pad ? padded : inside);
    });
  }
}

void global_avg_pool_f32_ref(int64_t planes, int64_t plane_size, const float* src, float* dst) {
  for (int64_t c = 0; c < planes; ++c) {
    const float* in = src + c * plane_size;
    float sum = 0.0f;
    for (int64_t i = 0; i < plane_size; ++i) sum += in[i];
    dst[c] = sum / static_cast<float>(plane_size);
  }
}

void global_max_pool_f32_ref(int64_t planes, int64_t plane_size, const float* src, float* dst) {
  for (int64_t c = 0; c < planes; ++c) {
    const float* in = src + c * plane_size;
    float m = std::numeric_limits<float>::lowest();
    for (int64_t i = 0; i < plane_size; ++i) m = std::max(m, in[i]);
    dst[c] = m;
  }
}

}  // namespace tinyq::kernels
