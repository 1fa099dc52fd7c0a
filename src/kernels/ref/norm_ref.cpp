// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include "kernels/ref/norm_ref.h"

#include <cmath>

namespace tinyq::kernels {

namespace {

struct Moments {
  double mean = 0.0;
  double var = 0.0;  // biased: divided by n
};

// Two passes (mean, then squared deviations): no cancellation when the mean is large.
Moments moments(const float* x, int64_t n) {
  Moments m;
  if (n == 0) return m;
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += x[i];
  m.mean = sum / static_cast<double>(n);
  double sq = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    double d = x[i] - m.mean;
    sq += d * d;
  }
  m.var = sq / static_cast<double>(n);
  return m;
}

}  // namespace

void batch_norm_f32_ref(int64_t batch, int64_t channels, int64_t spatial, const float* src, const float* scale,
                        const float* bias, const float* mean, const float* var, float epsilon, float* dst) {
  for (int64_t c = 0; c < channels; ++c) {
    const double inv_std = 1.0 / std::sqrt(static_cast<double>(var[c]) + static_cast<double>(epsilon));
    const double mul = inv_std * scale[c];
    const double add = bias[c] - mean[c] * mul;
    for (int64_t n = 0; n < batch; ++n) {
      const float* x = src + (n * channels + c) * spatial;
      float* y = dst + (n * channels + c) * spatial;
      for (int64_t i = 0; i < spatial; ++i) y[i] = static_cast<float>(x[i] * mul + add);
    }
  }
}

void layer_norm_f32_ref(int64_t rows, int64_t cols, const float* src, const float* scale, const float* bias,
                        float epsilon, float* dst, float* mean_out, float* inv_std_out) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = src + r * cols;
    float* y = dst + r * cols;
    const Moments m = moments(x, cols);
    const double inv_std = 1.0 / std::sqrt(m.var + static_cast<double>(epsilon));
    for (int64_t i = 0; i < cols; ++i) {
      double v = (x[i] - m.mean) * inv_std * scale[i];
      if (bias) v += bias[i];
      y[i] = static_cast<float>(v);
    }
    if (mean_out) mean_out[r] = static_cast<float>(m.mean);
    if (inv_std_out) inv_std_out[r] = static_cast<float>(inv_std);
  }
}

void instance_norm_f32_ref(int64_t batch, int64_t channels, int64_t spatial, const float* src, const float* scale,
                           const float* bias, float epsilon, float* dst) {
  for (int64_t n = 0; n < batch; ++n) {
    for (int64_t c = 0; c < channels; ++c) {
      const float* x = src + (n * channels + c) * spatial;
      float* y = dst + (n * channels + c) * spatial;
      const Moments m = moments(x, spatial);
      const double mul = scale[c] / std::sqrt(m.var + static_cast<double>(epsilon));
      for (int64_t i = 0; i < spatial; ++i) y[i] = static_cast<float>((x[i] - m.mean) * mul + bias[c]);
    }
  }
}

}  // namespace tinyq::kernels
