// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include "kernels/ref/resize_ref.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

namespace tinyq::kernels {

float resize_original_coordinate(ResizeCoordMode mode, float x, float scale, float out_len, float in_len,
                                 float roi_start, float roi_end) {
  switch (mode) {
    case ResizeCoordMode::HalfPixel:
      return (x + 0.5f) / scale - 0.5f;
    case ResizeCoordMode::PytorchHalfPixel:
      return out_len > 1 ? (x + 0.5f) / scale - 0.5f : 0.0f;
    case ResizeCoordMode::AlignCorners:
      return out_len == 1 ? 0.0f : x * (in_len - 1) / (out_len - 1);
    case ResizeCoordMode::Asymmetric:
      return x / scale;
    case ResizeCoordMode::TfHalfPixelForNn:
      return (x + 0.5f) / scale;
    case ResizeCoordMode::TfCropAndResize:
      // The single-output case is evaluated in double, as ONNX Runtime does.
      return out_len > 1 ? roi_start * (in_len - 1) + (x * (roi_end - roi_start) * (in_len - 1)) / (out_len - 1)
                         : static_cast<float>(0.5 * (roi_start + roi_end) * (in_len - 1));
  }
  return x;
}

namespace {

int64_t nearest_pixel(ResizeNearestMode mode, float x) {
  switch (mode) {
    case ResizeNearestMode::RoundPreferFloor:
      // exact halves go down; everything else rounds to nearest
      if (x == static_cast<float>(static_cast<int64_t>(x)) + 0.5f) return static_cast<int64_t>(std::floor(x));
      return static_cast<int64_t>(std::round(x));
    case ResizeNearestMode::RoundPreferCeil:
      return static_cast<int64_t>(std::round(x));
    case ResizeNearestMode::Floor:
      return static_cast<int64_t>(std::floor(x));
    case ResizeNearestMode::Ceil:
      return static_cast<int64_t>(std::ceil(x));
  }
  return 0;
}

// Keys' cubic convolution weights for the taps at floor(x) - 1 .. floor(x) + 2, s = x - floor(x).
std::array<float, 4> cubic_coeffs(float s, float a) {
  s = std::abs(s);
  std::array<float, 4> c;
  c[0] = ((a * (s + 1) - 5 * a) * (s + 1) + 8 * a) * (s + 1) - 4 * a;
  c[1] = ((a + 2) * s - (a + 3)) * s * s + 1;
  c[2] = ((a + 2) * (1 - s) - (a + 3)) * (1 - s) * (1 - s) + 1;
  c[3] = ((a * (2 - s) - 5 * a) * (2 - s) + 8 * a) * (2 - s) - 4 * a;
  return c;
}

// The filters of the antialiased modes, evaluated at a distance in input pixels.
float triangle_filter(float x) {
  x = std::abs(x);
  return x < 1.0f ? 1.0f - x : 0.0f;
}
float cubic_filter(float x, float a) {
  x = std::abs(x);
  if (x < 1.0f) return ((a + 2.0f) * x - (a + 3.0f)) * x * x + 1;
  if (x < 2.0f) return (((x - 5.0f) * x + 8.f) * x - 4.f) * a;
  return 0.0f;
}

}  // namespace

ResizeAxisPlan resize_axis_plan(const ResizeParams& p, int64_t in_len, int64_t out_len, float scale, float roi_start,
                                float roi_end) {
  ResizeAxisPlan plan;
  plan.first.reserve(static_cast<size_t>(out_len) + 1);
  plan.first.push_back(0);
  plan.outside.assign(static_cast<size_t>(out_len), 0);
  auto add = [&](int64_t idx, float w) {
    plan.index.push_back(std::clamp<int64_t>(idx, 0, in_len - 1));  // edge padding
    plan.weight.push_back(w);
  };
  auto close_output = [&] { plan.first.push_back(static_cast<int64_t>(plan.index.size())); };

  // ONNX Runtime maps an axis of scale 1 straight through, without the coordinate transform.
  if (scale == 1.0f && in_len == out_len) {
    plan.identity = true;
    for (int64_t j = 0; j < out_len; ++j) {
      add(j, 1.0f);
      close_output();
    }
    return plan;
  }

  const bool extrapolate = p.coord == ResizeCoordMode::TfCropAndResize;
  const float in_f = static_cast<float>(in_len), out_f = static_cast<float>(out_len);
  auto coordinate = [&](int64_t j) {
    return resize_original_coordinate(p.coord, static_cast<float>(j), scale, out_f, in_f, roi_start, roi_end);
  };

  if (p.antialias && p.mode != ResizeMode::Nearest) {
    // Antialiased linear/cubic (Pillow's scheme, as ONNX Runtime implements it): when shrinking,
    // the filter is stretched by 1/scale, so every input pixel under it contributes. Tap k is
    // weighed by filter((k + 0.5 - center) * min(scale, 1)), center = coordinate + 0.5 in pixel
    // units; taps beyond the edges are dropped (exclude_outside) or clamped to the edge pixel;
    // the weights are normalised to sum to 1.
    const float shrink = 1.0f / scale;  // > 1 when downsampling
    const float half_support = p.mode == ResizeMode::Linear ? 1.0f : 2.0f;
    const float support = shrink >= 1.0f ? half_support * shrink : half_support;
    const float inv_shrink = shrink >= 1.0f ? 1.0f / shrink : 1.0f;
    std::vector<float> w;
    for (int64_t j = 0; j < out_len; ++j) {
      const float x = shrink == 1.0f ? static_cast<float>(j) : coordinate(j);
      if (extrapolate && (x < 0 || x > in_f - 1)) plan.outside[j] = 1;
      const float center = 0.5f + x;
      // the taps whose centres k + 0.5 lie within the support (rounded down, as ONNX Runtime 1.30)
      int64_t lo = static_cast<int64_t>(std::floor(center - support + 0.5));
      int64_t hi = static_cast<int64_t>(std::floor(center + support + 0.5));
      if (p.exclude_outside) {
        lo = std::max<int64_t>(lo, 0);
        hi = std::min<int64_t>(hi, in_len);
      }
      w.clear();
      float total = 0.0f;
      for (int64_t k = lo; k < hi; ++k) {
        const float d = (static_cast<float>(k) - center + 0.5f) * inv_shrink;
        const float v = p.mode == ResizeMode::Linear ? triangle_filter(d) : cubic_filter(d, p.cubic_coeff_a);
        w.push_back(v);
        total += v;
      }
      for (int64_t k = lo; k < hi; ++k) {
        float v = w[static_cast<size_t>(k - lo)];
        if (total != 0.0f && total != 1.0f) v /= total;
        add(k, v);
      }
      close_output();
    }
    return plan;
  }

  for (int64_t j = 0; j < out_len; ++j) {
    const float x = coordinate(j);
    if (extrapolate && (x < 0 || x > in_f - 1)) plan.outside[j] = 1;
    switch (p.mode) {
      case ResizeMode::Nearest:
        add(nearest_pixel(p.nearest, x), 1.0f);
        break;
      case ResizeMode::Linear: {
        // clamp the coordinate into the input, then interpolate between its two neighbours
        const float xc = std::max(0.0f, std::min(x, in_f - 1));
        const int64_t x1 = std::min(static_cast<int64_t>(xc), in_len - 1);
        const int64_t x2 = std::min(x1 + 1, in_len - 1);
        if (x1 == x2) {
          add(x1, 1.0f);
        } else {
          add(x1, std::fabs(xc - static_cast<float>(x2)));
          add(x2, std::fabs(xc - static_cast<float>(x1)));
        }
        break;
      }
      case ResizeMode::Cubic: {
        const int64_t x_int = static_cast<int64_t>(std::floor(x));
        std::array<float, 4> c = cubic_coeffs(x - static_cast<float>(x_int), p.cubic_coeff_a);
        float sum = 1.0f;
        if (p.exclude_outside) {
          sum = 0.0f;
          for (int i = 0; i < 4; ++i) {
            const int64_t k = x_int - 1 + i;
            if (k < 0 || k >= in_len) c[static_cast<size_t>(i)] = 0.0f;
            sum += c[static_cast<size_t>(i)];
          }
        }
        for (int i = 0; i < 4; ++i) add(x_int - 1 + i, c[static_cast<size_t>(i)] / sum);
        break;
      }
    }
    close_output();
  }
  return plan;
}

void resize_f32_ref(const ResizeParams& p, int rank, const int64_t* in_shape, const int64_t* out_shape,
                    const float* scales, const float* roi_start, const float* roi_end, const float* src, float* dst) {
  int64_t in_numel = 1, out_numel = 1;
  bool same = true;
  for (int a = 0; a < rank; ++a) {
    in_numel *= in_shape[a];
    out_numel *= out_shape[a];
    same = same && in_shape[a] == out_shape[a];
  }
  if (out_numel == 0) return;
  if (same) {
    std::memcpy(dst, src, static_cast<size_t>(in_numel) * sizeof(float));
    return;
  }

  std::vector<ResizeAxisPlan> plans;
  for (int a = 0; a < rank; ++a)
    plans.push_back(resize_axis_plan(p, in_shape[a], out_shape[a], scales[a], roi_start[a], roi_end[a]));

  // Resample one axis at a time: shape [outer, len, inner] -> [outer, out_len, inner].
  std::vector<int64_t> shape(in_shape, in_shape + rank);
  std::vector<float> buffers[2];
  const float* cur = src;
  int which = 0;
  for (int a = 0; a < rank; ++a) {
    if (plans[a].identity) continue;
    int64_t outer = 1, inner = 1;
    for (int b = 0; b < a; ++b) outer *= shape[b];
    for (int b = a + 1; b < rank; ++b) inner *= shape[b];
    const int64_t len = shape[a], out_len = out_shape[a];
    std::vector<float>& next = buffers[which];
    next.assign(static_cast<size_t>(outer * out_len * inner), 0.0f);
    const ResizeAxisPlan& plan = plans[a];
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t j = 0; j < out_len; ++j) {
        float* d = next.data() + (o * out_len + j) * inner;
        for (int64_t t = plan.first[j]; t < plan.first[j + 1]; ++t) {
          const float w = plan.weight[t];
          const float* s = cur + (o * len + plan.index[t]) * inner;
          for (int64_t i = 0; i < inner; ++i) d[i] += w * s[i];
        }
      }
    }
    shape[a] = out_len;
    cur = next.data();
    which ^= 1;
  }
  std::memcpy(dst, cur, static_cast<size_t>(out_numel) * sizeof(float));

  // tf_crop_and_resize: a point outside the input along any axis takes the extrapolation value.
  for (int a = 0; a < rank; ++a) {
    const ResizeAxisPlan& plan = plans[a];
    if (std::find(plan.outside.begin(), plan.outside.end(), 1) == plan.outside.end()) continue;
    int64_t outer = 1, inner = 1;
    for (int b = 0; b < a; ++b) outer *= out_shape[b];
    for (int b = a + 1; b < rank; ++b) inner *= out_shape[b];
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t j = 0; j < out_shape[a]; ++j)
        if (plan.outside[j]) std::fill_n(dst + (o * out_shape[a] + j) * inner, inner, p.extrapolation_value);
  }
}

}  // namespace tinyq::kernels
