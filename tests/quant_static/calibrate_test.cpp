// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// Calibration stages on their own: collectors, range methods, the range table's JSON, the .npz
// source's checks of bad calibration data, and the runner (thread count must not matter).

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "model_builder.h"
#include "kernels/reduce.h"
#include "quant/calibrate_collect.h"
#include "quant/calibrate_mse_search.h"
#include "quant/calibrate_range.h"
#include "static_test_util.h"
#include "tinyq/calibrate.h"
#include "tinyq/error.h"
#include "tinyq/session.h"

namespace tinyq::test {
namespace {

using quant::HistogramCollector;
using quant::MinMaxCollector;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

MinMaxCollector minmax_of(const std::vector<float>& v) {
  MinMaxCollector m;
  m.add(v.data(), static_cast<int64_t>(v.size()));
  return m;
}

HistogramCollector histogram_of(CalibrationMethod method, const std::vector<float>& v, int bins = 2048) {
  HistogramCollector h = quant::make_histogram(method, minmax_of(v), bins);
  h.add(v.data(), static_cast<int64_t>(v.size()));
  return h;
}

// ---------------------------------------------------------------------------------------------
// Collectors

TEST(StaticPtqCollect, MinMaxSkipsNonFiniteValuesAndMergesExactly) {
  std::vector<float> v(10000);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i % 977) - 300.0f;
  v[5000] = kNaN;   // inside the second 4096-block
  v[9999] = -kInf;  // in the last, partial block
  const MinMaxCollector all = minmax_of(v);
  EXPECT_EQ(all.min, -300.0f);
  EXPECT_EQ(all.max, 676.0f);
  EXPECT_EQ(all.count, 9998);
  EXPECT_EQ(all.nonfinite, 2);

  MinMaxCollector a = minmax_of(std::vector<float>(v.begin(), v.begin() + 3333));
  a.merge(minmax_of(std::vector<float>(v.begin() + 3333, v.end())));
  EXPECT_EQ(a.min, all.min);
  EXPECT_EQ(a.max, all.max);
  EXPECT_EQ(a.count, all.count);
  EXPECT_EQ(a.nonfinite, all.nonfinite);
  EXPECT_TRUE(MinMaxCollector().empty());
}

TEST(StaticPtqCollect, HistogramBinsEdgesAndAbsoluteValues) {
  HistogramCollector h(0.0, 4.0, 4, /*absolute=*/true);
  const std::vector<float> v{0.0f, 0.5f, -1.0f, 1.5f, 3.99f, 4.0f, -4.0f, kNaN};
  h.add(v.data(), static_cast<int64_t>(v.size()));
  EXPECT_EQ(h.counts, (std::vector<int64_t>{2, 2, 0, 3}));  // 4.0 (the top edge) is in the last bin
  EXPECT_EQ(h.total(), 7);
  EXPECT_DOUBLE_EQ(h.edge(1), 1.0);
  HistogramCollector g(0.0, 4.0, 4, true);
  g.merge(h);
  g.merge(h);
  EXPECT_EQ(g.counts, (std::vector<int64_t>{4, 4, 0, 6}));
}

// ---------------------------------------------------------------------------------------------
// Range methods

// quant_error_integral against a midpoint sum: uniform values over [u, v], fake-quantised to
// 256 levels over [min(lo, 0), max(hi, 0)].
TEST(StaticPtqRange, QuantErrorIntegralMatchesNumericIntegration) {
  struct Case {
    double u, v, lo, hi;
  } cases[] = {
      {0.0, 1.0, 0.0, 1.0},       // inside, many steps
      {-2.0, 3.0, -1.0, 1.0},     // clipped on both sides
      {0.1, 0.1001, 0.0, 1.0},    // narrower than a step
      {5.0, 6.0, 0.0, 1.0},       // entirely clipped
      {-0.5, 0.5, 0.0, 0.0},      // degenerate range: everything becomes 0
      {-3.0, -1.0, -2.5, 4.0},    // negative side with an asymmetric zero point
  };
  for (const Case& c : cases) {
    const int n = 400000;
    const double lo = std::min(c.lo, 0.0), hi = std::max(c.hi, 0.0), s = (hi - lo) / 255.0;
    double sum = 0.0;
    for (int i = 0; i < n; ++i) {
      const double x = c.u + (c.v - c.u) * (i + 0.5) / n;
      double fq = 0.0;
      if (s > 0) {
        const double z = std::nearbyint(-lo / s);
        fq = (std::min(std::max(std::nearbyint(x / s) + z, 0.0), 255.0) - z) * s;
      }
      sum += (x - fq) * (x - fq);
    }
    const double expected = sum * (c.v - c.u) / n;
    EXPECT_NEAR(quant::quant_error_integral(c.u, c.v, c.lo, c.hi), expected, 1e-6 * std::max(1.0, expected))
        << "[" << c.u << ", " << c.v << "] over [" << c.lo << ", " << c.hi << "]";
  }
}

TEST(StaticPtqRange, PercentileCutsTheTailOfAbsoluteValues) {
  std::vector<float> v;
  for (int i = 1; i <= 1000; ++i) v.push_back(static_cast<float>(i % 2 ? i : -i));  // |x| = 1..1000
  const MinMaxCollector mm = minmax_of(v);
  const HistogramCollector h = histogram_of(CalibrationMethod::Percentile, v, 1000);
  auto r = quant::percentile_range(h, mm, 90.0);
  EXPECT_NEAR(r.second, 900.0, 1.5);
  EXPECT_NEAR(r.first, -900.0, 1.5);  // symmetric, inside [min, max]
  r = quant::percentile_range(h, mm, 100.0);
  EXPECT_EQ(r.first, mm.min);
  EXPECT_EQ(r.second, mm.max);
  // A non-negative tensor keeps 0 as its lower end.
  std::vector<float> pos(v.size());
  for (size_t i = 0; i < v.size(); ++i) pos[i] = std::fabs(v[i]);
  r = quant::percentile_range(histogram_of(CalibrationMethod::Percentile, pos, 1000), minmax_of(pos), 50.0);
  EXPECT_EQ(r.first, 1.0f);
  EXPECT_NEAR(r.second, 500.0, 1.5);
}

std::vector<float> gaussian_with_outliers(int n, int outliers, double outlier_scale, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> g(0.0, 1.0);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = static_cast<float>(g(rng));
  for (int i = 0; i < outliers; ++i) v[static_cast<size_t>(i) * 7] = static_cast<float>(outlier_scale * (1 + i % 3));
  return v;
}

TEST(StaticPtqRange, EntropyClipsOutliersButKeepsTheBulk) {
  const std::vector<float> v = gaussian_with_outliers(200000, 20, 40.0, 1);
  const auto r = quant::entropy_range(histogram_of(CalibrationMethod::Entropy, v), minmax_of(v), 256);
  EXPECT_LT(r.second, 40.0f);  // the outliers (40..120) are clipped
  EXPECT_GT(r.second, 3.0f);   // the Gaussian bulk is kept
  EXPECT_LT(r.first, -3.0f);
  // A ReLU-like tensor (half exact zeros): the zero spike must not drive the choice.
  std::vector<float> relu(v.size());
  for (size_t i = 0; i < v.size(); ++i) relu[i] = v[i] > 0 && v[i] < 10 ? v[i] : 0.0f;
  const auto rr = quant::entropy_range(histogram_of(CalibrationMethod::Entropy, relu), minmax_of(relu), 256);
  EXPECT_EQ(rr.first, 0.0f);
  EXPECT_GT(rr.second, 3.0f);
}

TEST(StaticPtqRange, MseClipsALaplaceTailAndKeepsAUniformRange) {
  // Laplace(0, 1): 8-bit MSE-optimal clipping is near 10 (Banner et al.), below the sample max.
  std::mt19937_64 rng(3);
  std::exponential_distribution<double> e(1.0);
  std::vector<float> lap(200000);
  for (size_t i = 0; i < lap.size(); ++i) lap[i] = static_cast<float>(i % 2 ? e(rng) : -e(rng));
  const MinMaxCollector mm = minmax_of(lap);
  const auto r = quant::mse_range(histogram_of(CalibrationMethod::Mse, lap), mm);
  EXPECT_LT(r.second, mm.max);
  EXPECT_GT(r.second, 6.0f);
  EXPECT_GT(r.first, mm.min);
  EXPECT_LT(r.first, -6.0f);
  // Uniform values: nothing worth clipping.
  std::vector<float> u(100000);
  for (size_t i = 0; i < u.size(); ++i) u[i] = static_cast<float>(i) / static_cast<float>(u.size());
  const auto ru = quant::mse_range(histogram_of(CalibrationMethod::Mse, u), minmax_of(u));
  EXPECT_GT(ru.second, 0.97f);
}

TEST(StaticPtqRange, MseCandidatesStartWithTheTensorOptimumAndHoldMinMax) {
  // The output-scored search picks among these: the tensor-level optimum first (it wins ties),
  // minmax's range, and percentile clips, with near-duplicates dropped.
  const std::vector<float> v = gaussian_with_outliers(50000, 30, 60.0, 4);
  const MinMaxCollector mm = minmax_of(v);
  const HistogramCollector h = histogram_of(CalibrationMethod::Mse, v);
  const auto c = quant::mse_candidates(mm, h);
  ASSERT_GE(c.size(), 3u);
  EXPECT_EQ(c.front(), quant::mse_range(h, mm));
  EXPECT_NE(std::find(c.begin(), c.end(), std::make_pair(mm.min, mm.max)), c.end());
  for (size_t i = 0; i < c.size(); ++i) {
    EXPECT_GE(c[i].first, mm.min);
    EXPECT_LE(c[i].second, mm.max);
    for (size_t j = 0; j < i; ++j)
      EXPECT_GT(std::fabs(c[i].first - c[j].first) + std::fabs(c[i].second - c[j].second), 0.01f * (mm.max - mm.min));
  }
  // Uniform values: every clip is within 1% of the whole range, so only one candidate is left.
  std::vector<float> u(100000);
  for (size_t i = 0; i < u.size(); ++i) u[i] = static_cast<float>(i) / static_cast<float>(u.size());
  EXPECT_EQ(quant::mse_candidates(minmax_of(u), histogram_of(CalibrationMethod::Mse, u)).size(), 1u);
}

TEST(StaticPtqRange, MethodsStayInsideTheObservedRange) {
  for (CalibrationMethod m : {CalibrationMethod::MinMax, CalibrationMethod::Percentile, CalibrationMethod::Entropy,
                              CalibrationMethod::Mse}) {
    for (const std::vector<float>& v : {std::vector<float>{3.0f, 3.0f, 3.0f}, std::vector<float>{-1.0f, 5.0f},
                                        gaussian_with_outliers(5000, 3, 30.0, 9)}) {
      CalibrationOptions o;
      o.method = m;
      const MinMaxCollector mm = minmax_of(v);
      const auto r = quant::choose_range(o, mm, histogram_of(m, v));
      EXPECT_GE(r.first, mm.min) << calibration_method_name(m);
      EXPECT_LE(r.second, mm.max) << calibration_method_name(m);
      EXPECT_LE(r.first, r.second) << calibration_method_name(m);
    }
    CalibrationOptions o;
    o.method = m;
    const auto none = quant::choose_range(o, MinMaxCollector(), HistogramCollector());
    EXPECT_EQ(none.first, 0.0f);
    EXPECT_EQ(none.second, 0.0f);
  }
}

// ---------------------------------------------------------------------------------------------
// The range table

TEST(StaticPtqRangeTable, JsonRoundTripIsBitExact) {
  RangeTable t;
  t.method = CalibrationMethod::Percentile;
  t.percentile = 99.9;
  t.samples = 64;
  t.inputs = {"x", "y"};
  std::mt19937 rng(5);
  for (int i = 0; i < 50; ++i) {
    TensorRange r;
    r.min = -std::ldexp(static_cast<float>(rng()) / 4294967296.0f, static_cast<int>(rng() % 40) - 20);
    r.max = std::ldexp(static_cast<float>(rng()) / 4294967296.0f, static_cast<int>(rng() % 40) - 20);
    r.observed_min = r.min * 2;
    r.observed_max = std::nextafter(r.max, 1e30f);
    r.count = static_cast<int64_t>(rng());
    r.nonfinite = i;
    t.ranges["t" + std::to_string(i)] = r;
  }
  const RangeTable back = range_table_from_json(range_table_to_json(t), "table.json");
  EXPECT_EQ(back.method, t.method);
  EXPECT_EQ(back.percentile, t.percentile);
  EXPECT_EQ(back.samples, t.samples);
  EXPECT_EQ(back.inputs, t.inputs);
  ASSERT_EQ(back.ranges.size(), t.ranges.size());
  for (const auto& kv : t.ranges) {
    const TensorRange& b = back.ranges.at(kv.first);
    EXPECT_EQ(b.min, kv.second.min);
    EXPECT_EQ(b.max, kv.second.max);
    EXPECT_EQ(b.observed_min, kv.second.observed_min);
    EXPECT_EQ(b.observed_max, kv.second.observed_max);
    EXPECT_EQ(b.count, kv.second.count);
    EXPECT_EQ(b.nonfinite, kv.second.nonfinite);
  }
}

TEST(StaticPtqRangeTable, MalformedTablesAreRefused) {
  const char* bad[] = {
      "not json",
      "[]",
      R"({"format": "something-else", "version": 1, "method": "minmax", "ranges": {}})",
      R"({"format": "tinyq-range-table", "version": 2, "method": "minmax", "ranges": {}})",
      R"({"format": "tinyq-range-table", "version": 1, "method": "median", "ranges": {}})",
      R"({"format": "tinyq-range-table", "version": 1, "method": "minmax"})",
      R"({"format": "tinyq-range-table", "version": 1, "method": "minmax", "ranges": {"a": {"min": 2, "max": 1}}})",
      R"({"format": "tinyq-range-table", "version": 1, "method": "minmax", "ranges": {"a": {"min": "0", "max": 1}}})",
      R"({"format": "tinyq-range-table", "version": 1, "method": "minmax", "ranges": {"a": {"min": 0, "max": 1, "count": -3}}})",
  };
  for (const char* text : bad) {
    try {
      range_table_from_json(text, "t.json");
      ADD_FAILURE() << "accepted: " << text;
    } catch (const Error& e) {
      EXPECT_EQ(e.subject(), "t.json") << text;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The .npz source

// x [N, 3] -> Relu -> y; a second input z [N, 2, 2] -> Relu -> w.
Model two_input_model() {
  ModelBuilder b;
  b.model.graph.inputs.push_back(ValueInfo{"x", DType::F32, true, {Dim{-1, "N"}, Dim{3, ""}}, ""});
  b.model.graph.inputs.push_back(ValueInfo{"z", DType::F32, true, {Dim{-1, "N"}, Dim{2, ""}, Dim{2, ""}}, ""});
  b.node("Relu", {"x"}, {"y"}).node("Relu", {"z"}, {"w"}).output("y").output("w");
  return b.model;
}

TEST(StaticPtqSource, SamplesAreBatchOneViews) {
  const Model m = two_input_model();
  NamedTensors arrays{{"z", random_like({5, 2, 2})}, {"x", random_like({5, 3})}};
  NpzCalibrationSource s(arrays, m, false, "set.npz");
  EXPECT_EQ(s.size(), 5);
  EXPECT_EQ(s.input_names(), (std::vector<std::string>{"x", "z"}));
  const NamedTensors third = s.sample(2);
  ASSERT_EQ(third.size(), 2u);
  EXPECT_EQ(third[0].first, "x");
  EXPECT_EQ(shape_to_string(third[0].second.shape()), "[1,3]");
  EXPECT_EQ(third[0].second.data<float>()[1], arrays[1].second.data<float>()[7]);
  EXPECT_EQ(shape_to_string(third[1].second.shape()), "[1,2,2]");
  EXPECT_THROW(s.sample(5), Error);
  EXPECT_TRUE(s.warnings().empty());
}

struct BadSet {
  const char* what;
  NamedTensors arrays;
  const char* message;  // a piece of the error
};

TEST(StaticPtqSource, BadCalibrationDataNamesTheArray) {
  const Model m = two_input_model();
  Tensor nan = random_like({4, 3});
  nan.data<float>()[5] = kNaN;
  nan.data<float>()[7] = kInf;
  const std::vector<BadSet> cases = {
      {"missing input", {{"x", random_like({4, 3})}}, "no array named 'z'"},
      {"wrong rank", {{"x", random_like({4, 3, 1})}, {"z", random_like({4, 2, 2})}}, "array 'x' has shape [4,3,1]"},
      {"wrong sample shape", {{"x", random_like({4, 3})}, {"z", random_like({4, 2, 3})}},
       "array 'z' holds samples of shape [1,2,3]"},
      {"integer dtype", {{"x", Tensor(DType::I32, {4, 3})}, {"z", random_like({4, 2, 2})}}, "array 'x' has dtype int32"},
      {"no samples", {{"x", Tensor(DType::F32, {0, 3})}, {"z", Tensor(DType::F32, {0, 2, 2})}}, "holds no samples"},
      {"different N", {{"x", random_like({4, 3})}, {"z", random_like({3, 2, 2})}}, "array 'z' holds 3 samples"},
      {"scalar", {{"x", Tensor::scalar<float>(1.0f)}, {"z", random_like({4, 2, 2})}}, "array 'x' is a scalar"},
      {"NaN and Inf", {{"x", nan}, {"z", random_like({4, 2, 2})}}, "array 'x' holds 2 NaN/Inf values (first in sample 1)"},
  };
  for (const BadSet& c : cases) {
    try {
      NpzCalibrationSource s(c.arrays, m, false, "set.npz");
      ADD_FAILURE() << c.what << ": accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.subject(), "set.npz") << c.what;
      EXPECT_NE(std::string(e.what()).find(c.message), std::string::npos) << c.what << ": " << e.what();
    }
  }
}

TEST(StaticPtqSource, ExtraArraysWarnFloat64ConvertsNonFiniteCanBeAllowed) {
  const Model m = two_input_model();
  Tensor nan = random_like({4, 3});
  nan.data<float>()[0] = kNaN;
  Tensor f64(DType::F64, {4, 2, 2});
  NamedTensors arrays{{"x", nan}, {"z", f64}, {"labels", random_like({4})}};
  NpzCalibrationSource s(arrays, m, /*allow_nonfinite=*/true, "set.npz");
  EXPECT_EQ(s.nonfinite_count(), 1);
  ASSERT_EQ(s.warnings().size(), 3u);
  std::string all;
  for (const auto& w : s.warnings()) all += w + "\n";
  EXPECT_NE(all.find("array 'labels' is not a model input"), std::string::npos) << all;
  EXPECT_NE(all.find("array 'z' is float64; converted to float32"), std::string::npos) << all;
  EXPECT_NE(all.find("array 'x' holds 1 NaN/Inf value"), std::string::npos) << all;
  EXPECT_EQ(s.sample(0)[1].second.dtype(), DType::F32);

  // The collectors skip the NaN: the range and the count say so.
  const RangeTable t = calibrate(m, s, {"x", "y"});
  EXPECT_EQ(t.find("x")->nonfinite, 1);
  EXPECT_EQ(t.find("x")->count, 11);
  EXPECT_TRUE(std::isfinite(t.find("x")->max));
}

// ---------------------------------------------------------------------------------------------
// The runner

TEST(StaticPtqRunner, ThreadCountDoesNotChangeTheTable) {
  ModelBuilder b;
  b.model.graph.inputs.push_back(ValueInfo{"x", DType::F32, true, {Dim{-1, "N"}, Dim{8, ""}}, ""});
  b.initializer("w", random_like({8, 4})).initializer("shape", Tensor::from_vector<int64_t>({1}, {-1}));
  b.node("MatMul", {"x", "w"}, {"h"}).node("Relu", {"h"}, {"r"}).node("Reshape", {"r", "shape"}, {"y"}).output("y");
  NamedTensors arrays{{"x", random_like({37, 8})}};
  NpzCalibrationSource s(arrays, b.model, false, "set.npz");
  const std::vector<std::string> tensors = static_quant_calibration_tensors(b.model, {});
  // h folds away into r (the Relu's output) and y reuses r's scale: only x and r need ranges.
  EXPECT_EQ(tensors, (std::vector<std::string>{"x", "r"}));
  for (CalibrationMethod m : {CalibrationMethod::MinMax, CalibrationMethod::Entropy, CalibrationMethod::Mse}) {
    CalibrationOptions one, three;
    one.method = three.method = m;
    one.threads = 1;
    three.threads = 3;
    const std::string a = range_table_to_json(calibrate(b.model, s, tensors, one));
    const std::string c = range_table_to_json(calibrate(b.model, s, tensors, three));
    EXPECT_EQ(a, c) << calibration_method_name(m);
  }
  const RangeTable t = calibrate(b.model, s, tensors);
  EXPECT_EQ(t.samples, 37);
  EXPECT_EQ(t.ranges.size(), 2u);
  EXPECT_EQ(t.find("x")->count, 37 * 8);
  EXPECT_EQ(t.find("r")->min, 0.0f);
}

TEST(StaticPtqRunner, ARunFailureNamesTheSample) {
  ModelBuilder b;
  b.model.graph.inputs.push_back(ValueInfo{"x", DType::F32, true, {Dim{-1, "N"}, Dim{-1, "K"}}, ""});
  b.initializer("w", random_like({4, 2}));
  b.node("MatMul", {"x", "w"}, {"y"}).output("y");
  NamedTensors arrays{{"x", random_like({3, 5})}};  // K = 5 cannot multiply a [4, 2] weight
  NpzCalibrationSource s(arrays, b.model, false, "set.npz");
  try {
    calibrate(b.model, s, {"x", "y"});
    ADD_FAILURE() << "calibration ran";
  } catch (const Error& e) {
    EXPECT_NE(e.message().find("calibration sample"), std::string::npos) << e.message();
  }
}

// SessionOptions::on_range: the ranges ops measure while writing (fused conv blocks of the
// Winograd, direct-row and depthwise kernels, with and without residual and activation; the
// default pass for other ops) are exactly what a pass over each finished tensor finds, NaN and
// infinities included, on one thread and two. Watched convolution outputs that only feed a
// residual Add (c2, exit) fuse with it and, measured, are never stored; the graph's outputs stay
// bit for bit those of a session that watches nothing.
TEST(StaticPtqRunner, RangesMeasuredByOpsEqualAPassOverTheTensor) {
  std::mt19937 rng(5);
  ModelBuilder b;
  b.model.graph.inputs.push_back(ValueInfo{"x", DType::F32, true, {Dim{1, ""}, Dim{1, ""}, Dim{37, ""}, Dim{45, ""}}, ""});
  auto conv = [&](const std::string& x, const std::string& y, int64_t m, int64_t c, int64_t group, int64_t stride) {
    b.initializer(y + "_w", random_f32(rng, {m, c / group, 3, 3}, -0.5f, 0.5f));
    b.initializer(y + "_b", random_f32(rng, {m}));
    b.node("Conv", {x, y + "_w", y + "_b"}, {y},
           {Attribute::make_ints("pads", {1, 1, 1, 1}), Attribute::make_ints("strides", {stride, stride}),
            Attribute::make_int("group", group)});
  };
  conv("x", "entry", 16, 1, 1, 1);
  conv("entry", "c1", 16, 16, 1, 1);  // Winograd
  b.node("Relu", {"c1"}, {"r1"});
  conv("r1", "c2", 16, 16, 1, 1);
  b.node("Add", {"entry", "c2"}, {"sum"});
  conv("sum", "dw", 16, 16, 16, 1);  // depthwise
  conv("dw", "down", 16, 16, 1, 2);  // strided: direct rows
  conv("sum", "exit", 1, 16, 1, 1);  // 16 -> 1
  b.node("Add", {"x", "exit"}, {"y"});
  b.output("y").output("down");
  const std::vector<std::string> watched = {"entry", "r1", "c2", "sum", "dw", "down", "exit", "y"};

  // Several inputs, so an output block that a kernel forgot to fold shows (its extremes, or its
  // share of the NaN and infinity a few input values spread through the 3x3 windows).
  for (int trial = 0; trial < 12; ++trial) {
    Tensor x = random_f32(rng, {1, 1, 37, 45}, -2.0f, 2.0f);
    std::uniform_int_distribution<int64_t> at(0, x.numel() - 1);
    x.data<float>()[at(rng)] = std::numeric_limits<float>::quiet_NaN();
    x.data<float>()[at(rng)] = std::numeric_limits<float>::infinity();
    for (int threads : {1, 2}) {
      std::map<std::string, ObservedRange> passed, measured;
      SessionOptions plain;
      plain.threads = threads;
      plain.observe = watched;
      std::map<std::string, int64_t> sizes;
      plain.on_tensor = [&](const std::string& name, const Tensor& t) {
        kernels::FiniteRange r;
        r.fold(t.data<float>(), t.numel());
        passed[name] = ObservedRange{r.lo, r.hi, r.count, r.nonfinite};
        sizes[name] = t.numel();
      };
      SessionOptions fused = plain;
      fused.on_tensor = [&](const std::string& name, const Tensor&) { ADD_FAILURE() << name << " went to on_tensor"; };
      fused.on_range = [&](const std::string& name, const ObservedRange& r) { measured[name] = r; };
      SessionOptions unwatched;
      unwatched.threads = threads;
      Session(b.model, plain).run(NamedTensors{{"x", x}});
      const NamedTensors got = Session(b.model, fused).run(NamedTensors{{"x", x}});
      const NamedTensors want = Session(b.model, unwatched).run(NamedTensors{{"x", x}});
      ASSERT_EQ(passed.size(), watched.size());
      ASSERT_EQ(measured.size(), watched.size());
      int64_t nonfinite = 0;
      for (const std::string& name : watched) {
        EXPECT_EQ(passed[name].min, measured[name].min) << name << " threads " << threads;
        EXPECT_EQ(passed[name].max, measured[name].max) << name << " threads " << threads;
        EXPECT_EQ(passed[name].nonfinite, measured[name].nonfinite) << name << " threads " << threads;
        EXPECT_EQ(sizes[name], measured[name].count) << name << " threads " << threads;
        nonfinite += measured[name].nonfinite;
      }
      EXPECT_GT(nonfinite, 0);
      ASSERT_EQ(got.size(), want.size());
      for (size_t k = 0; k < got.size(); ++k) {  // y and down
        const Tensor& a = got[k].second;
        const Tensor& e = want[k].second;
        ASSERT_EQ(a.numel(), e.numel());
        EXPECT_EQ(0, std::memcmp(a.data<float>(), e.data<float>(), static_cast<size_t>(a.numel()) * sizeof(float)))
            << got[k].first << " threads " << threads;
      }
    }
  }
}

}  // namespace
}  // namespace tinyq::test
