// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// Helpers for the static PTQ tests: the seed gate's calibration samples, in-memory sources,
// and ONNX Runtime / tinyq runtime runs of a batch.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "gate/numpy_rng.h"
#include "test_support.h"
#include "tinyq/calibrate.h"
#include "tinyq/model_io.h"
#include "tinyq/session.h"

namespace tinyq::test {

/// numpy.random.default_rng(seed).random((n, *sample_shape[1:]), float32): n consecutive samples
/// of the seed gate's generator, stacked (one generator; the same stream as n calls of
/// random(sample_shape)). `sample_shape` is one sample with its batch dimension of 1.
inline Tensor gate_generator_stack(const Shape& sample_shape, int64_t n, uint64_t seed = 0) {
  NumpyGenerator gen(seed);
  Shape stack = sample_shape;
  stack[0] = n;
  return gen.random_f32(stack);
}

/// Values uniform in [-0.5, 0.5), reproducible by seed.
inline Tensor random_like(const Shape& shape, uint64_t seed = 1) {
  NumpyGenerator gen(seed);
  Tensor t = gen.random_f32(shape);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] -= 0.5f;
  return t;
}

/// Shape of one sample of a model input, unknown dims (the batch) as 1.
inline Shape sample_shape(const ValueInfo& v) {
  Shape s;
  for (const auto& d : v.dims) s.push_back(d.known() ? d.value : 1);
  return s;
}

/// A stack of samples along dim 0 of every array (feeds with batch 1 each).
inline NamedTensors stack_samples(const std::vector<NamedTensors>& samples) {
  NamedTensors out;
  for (size_t k = 0; k < samples.at(0).size(); ++k) {
    const Tensor& first = samples[0][k].second;
    Shape shape = first.shape();
    shape[0] = static_cast<int64_t>(samples.size());
    Tensor t(first.dtype(), shape);
    auto* dst = static_cast<uint8_t*>(t.raw());
    for (const auto& s : samples) {
      std::memcpy(dst, s[k].second.raw(), s[k].second.nbytes());
      dst += s[k].second.nbytes();
    }
    out.emplace_back(samples[0][k].first, t);
  }
  return out;
}

/// The values of a float tensor as doubles.
inline std::vector<double> values(const Tensor& t) { return tensor_to_doubles(t); }

/// max - min of a vector.
inline double value_range(const std::vector<double>& v) {
  if (v.empty()) return 0.0;
  auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  return *hi - *lo;
}

/// max |a - b|.
inline double max_diff(const std::vector<double>& a, const std::vector<double>& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

}  // namespace tinyq::test
