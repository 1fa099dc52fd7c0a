// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// Offline weight quantisation (src/quant/weight_quant.h): ONNX Runtime's symmetric int8 on
// hand-checked values, per tensor and per channel.

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "common/qmath.h"
#include "quant/weight_quant.h"
#include "tinyq/error.h"

namespace tinyq::quant {
namespace {

std::vector<int8_t> values_of(const QuantizedWeight& q) { return q.values.to_vector<int8_t>(); }

TEST(WeightQuant, PerTensorScaleIsTwiceAbsmaxOver254) {
  Tensor w = Tensor::from_vector<float>({2, 2}, {-1.0f, 0.5f, 0.25f, 0.75f});
  QuantizedWeight q = quantize_weight_symmetric_int8(w, -1);
  ASSERT_EQ(q.scales.size(), 1u);
  const float want = static_cast<float>(2.0 / 254.0);
  EXPECT_EQ(q.scales[0], want);
  // 0.5 / (1/127) = 63.5 rounds to even 64; 0.25 -> 31.75 -> 32; 0.75 -> 95.25 -> 95.
  EXPECT_EQ(values_of(q), (std::vector<int8_t>{-127, 64, 32, 95}));
  EXPECT_EQ(q.values.shape(), (Shape{2, 2}));
}

TEST(WeightQuant, RoundsHalfToEven) {
  // absmax 127 gives scale exactly 1, so w/scale lands on .5 ties.
  Tensor w = Tensor::from_vector<float>({6}, {127.0f, 2.5f, 3.5f, -2.5f, -3.5f, 0.5f});
  QuantizedWeight q = quantize_weight_symmetric_int8(w, -1);
  EXPECT_EQ(q.scales[0], 1.0f);
  EXPECT_EQ(values_of(q), (std::vector<int8_t>{127, 2, 4, -2, -4, 0}));
}

TEST(WeightQuant, NeverUsesMinus128) {
  Tensor w = Tensor::from_vector<float>({3}, {-3.0f, 1.0f, 2.0f});
  QuantizedWeight q = quantize_weight_symmetric_int8(w, -1);
  EXPECT_EQ(values_of(q)[0], -127);
  EXPECT_EQ(values_of(q)[2], 85);  // 2 / (3/127) = 84.67
}

TEST(WeightQuant, MatchesQmathChooseQparamsBitForBit) {
  std::vector<float> v;
  for (int i = 0; i < 97; ++i) v.push_back(std::sin(0.37f * static_cast<float>(i)) * 0.8758858f);
  Tensor w = Tensor::from_vector<float>({97}, v);
  QuantizedWeight q = quantize_weight_symmetric_int8(w, -1);
  float lo = 0, hi = 0;
  for (float x : v) lo = std::min(lo, x), hi = std::max(hi, x);
  qmath::QParams p = qmath::choose_qparams(lo, hi, qmath::qrange_int8(true), true);
  EXPECT_EQ(p.zero_point, 0);
  uint32_t a, b;
  std::memcpy(&a, &q.scales[0], 4);
  std::memcpy(&b, &p.scale, 4);
  EXPECT_EQ(a, b);
  for (size_t i = 0; i < v.size(); ++i)
    EXPECT_EQ(values_of(q)[i], qmath::quantize(v[i], p.scale, 0, -127, 127)) << i;
}

TEST(WeightQuant, PerChannelAxis0) {
  // Conv-like [2, 1, 2]: channel 0 absmax 2, channel 1 absmax 0.5.
  Tensor w = Tensor::from_vector<float>({2, 1, 2}, {2.0f, -1.0f, 0.5f, 0.25f});
  QuantizedWeight q = quantize_weight_symmetric_int8(w, 0);
  ASSERT_EQ(q.scales.size(), 2u);
  EXPECT_EQ(q.scales[0], static_cast<float>(4.0 / 254.0));
  EXPECT_EQ(q.scales[1], static_cast<float>(1.0 / 254.0));
  EXPECT_EQ(values_of(q), (std::vector<int8_t>{127, -64, 127, 64}));  // -63.5 -> -64, 63.5 -> 64
}

TEST(WeightQuant, PerChannelLastAxis) {
  // MatMul [K=2, N=3]: one scale per column.
  Tensor w = Tensor::from_vector<float>({2, 3}, {1.0f, -4.0f, 0.0f, -0.5f, 2.0f, 0.0f});
  QuantizedWeight q = quantize_weight_symmetric_int8(w, 1);
  ASSERT_EQ(q.scales.size(), 3u);
  EXPECT_EQ(q.scales[0], static_cast<float>(2.0 / 254.0));
  EXPECT_EQ(q.scales[1], static_cast<float>(8.0 / 254.0));
  EXPECT_EQ(q.scales[2], 1.0f);  // an all-zero column: scale 1, as ONNX Runtime
  EXPECT_EQ(values_of(q), (std::vector<int8_t>{127, -127, 0, -64, 64, 0}));
}

TEST(WeightQuant, AllZeroTensorGetsScaleOne) {
  QuantizedWeight q = quantize_weight_symmetric_int8(Tensor(DType::F32, {4}), -1);
  EXPECT_EQ(q.scales[0], 1.0f);
  EXPECT_EQ(values_of(q), (std::vector<int8_t>{0, 0, 0, 0}));
}

TEST(WeightQuant, RejectsNonFloatAndBadAxis) {
  EXPECT_THROW(quantize_weight_symmetric_int8(Tensor(DType::F64, {2}), -1), Error);
  EXPECT_THROW(quantize_weight_symmetric_int8(Tensor(DType::F32, {2, 2}), 2), Error);
}

TEST(WeightQuant, WeightProblem) {
  EXPECT_EQ(weight_problem(Tensor::from_vector<float>({2}, {1.0f, -1.0f})), "");
  EXPECT_NE(weight_problem(Tensor(DType::F16, {2})), "");
  EXPECT_NE(weight_problem(Tensor(DType::F32, {0})), "");
  EXPECT_NE(weight_problem(Tensor::from_vector<float>({2}, {1.0f, std::numeric_limits<float>::quiet_NaN()})), "");
  EXPECT_NE(weight_problem(Tensor::from_vector<float>({2}, {1.0f, std::numeric_limits<float>::infinity()})), "");
}

TEST(WeightQuant, Transpose2d) {
  Tensor t = Tensor::from_vector<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor u = transpose_2d(t);
  EXPECT_EQ(u.shape(), (Shape{3, 2}));
  EXPECT_EQ(u.to_vector<float>(), (std::vector<float>{1, 4, 2, 5, 3, 6}));
  EXPECT_EQ(t.to_vector<float>(), (std::vector<float>{1, 2, 3, 4, 5, 6}));  // source untouched
  EXPECT_THROW(transpose_2d(Tensor(DType::F32, {2, 2, 2})), Error);
}

}  // namespace
}  // namespace tinyq::quant
