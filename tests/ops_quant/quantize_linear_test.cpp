// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// QuantizeLinear, DequantizeLinear and DynamicQuantizeLinear against ONNX Runtime, bit for bit:
// per tensor and per axis (every axis of a 4-D tensor, negative axes too), uint8 and int8, zero
// points at the ends of their ranges, values far beyond saturation, and values exactly half way
// between two integers (x / scale = k + 0.5, which must round to even).

#include <cmath>
#include <limits>

#include "quant_test_util.h"

namespace tinyq {
namespace {

using test::QuantCases;

// Values that probe rounding and saturation at scale 0.5: every half-integer quotient from
// -300.5 to 300.5 (x / 0.5 = k + 0.5 exactly), the integers, far-out values and infinities.
std::vector<float> probe_values() {
  std::vector<float> v;
  for (int k = -301; k <= 300; ++k) {
    v.push_back(0.5f * (static_cast<float>(k) + 0.5f));
    v.push_back(0.5f * static_cast<float>(k));
  }
  for (float big : {1e6f, 3e38f, std::numeric_limits<float>::infinity()}) {
    v.push_back(big);
    v.push_back(-big);
  }
  v.push_back(-0.0f);
  return v;
}

Tensor zero_point(DType type, int value) {
  return type == DType::U8 ? Tensor::scalar<uint8_t>(static_cast<uint8_t>(value))
                           : Tensor::scalar<int8_t>(static_cast<int8_t>(value));
}

Tensor zero_points(DType type, const std::vector<int>& values) {
  if (type == DType::U8) {
    std::vector<uint8_t> v(values.begin(), values.end());
    return Tensor::from_vector<uint8_t>({static_cast<int64_t>(v.size())}, v);
  }
  std::vector<int8_t> v(values.begin(), values.end());
  return Tensor::from_vector<int8_t>({static_cast<int64_t>(v.size())}, v);
}

// Per-channel zero points that include both ends of the type's range.
std::vector<int> edge_zero_points(DType type, int64_t n, std::mt19937& rng) {
  const int lo = type == DType::U8 ? 0 : -128, hi = type == DType::U8 ? 255 : 127;
  std::uniform_int_distribution<int> dist(lo, hi);
  std::vector<int> v;
  for (int64_t i = 0; i < n; ++i) v.push_back(i == 0 ? lo : i == 1 ? hi : dist(rng));
  return v;
}

std::vector<float> random_scales(int64_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(0.005f, 0.2f);
  std::vector<float> v;
  for (int64_t i = 0; i < n; ++i) v.push_back(dist(rng));
  return v;
}

// One QuantizeLinear per (type, zero point) pair on the probe values, and one with the zero
// point omitted (uint8, 0).
void add_per_tensor_quantize_cases(QuantCases& cases, std::mt19937& rng) {
  const std::vector<float> probes = probe_values();
  const Tensor x = Tensor::from_vector<float>({static_cast<int64_t>(probes.size())}, probes);
  const std::pair<DType, int> zps[] = {{DType::U8, 0},   {DType::U8, 255}, {DType::U8, 128},
                                       {DType::I8, -128}, {DType::I8, 127}, {DType::I8, 0}};
  for (const auto& [type, z] : zps) {
    const std::string p = cases.prefix();
    cases.feed(p + "x", x);
    cases.constant(p + "scale", Tensor::scalar<float>(0.5f));
    cases.constant(p + "zp", zero_point(type, z));
    cases.builder.node("QuantizeLinear", {p + "x", p + "scale", p + "zp"}, {p + "y"}).output(p + "y", type);
  }
  const std::string p = cases.prefix();
  cases.feed(p + "x", x);
  cases.constant(p + "scale", Tensor::scalar<float>(0.5f));
  cases.builder.node("QuantizeLinear", {p + "x", p + "scale"}, {p + "y"}).output(p + "y", DType::U8);
  // An awkward scale on random data: the division, not a reciprocal multiply, decides.
  const std::string q = cases.prefix();
  cases.feed(q + "x", test::random_floats(rng, {7, 9}, -2.0f, 2.0f));
  cases.constant(q + "scale", Tensor::scalar<float>(0.0137f));
  cases.constant(q + "zp", zero_point(DType::I8, -3));
  cases.builder.node("QuantizeLinear", {q + "x", q + "scale", q + "zp"}, {q + "y"}).output(q + "y", DType::I8);
}

TEST(QuantizeLinear, PerTensorRoundingAndSaturationMatchOrt) {
  TINYQ_REQUIRE_ORT();
  for (int64_t opset : {10, 13, 18}) {
    std::mt19937 rng(1);
    QuantCases cases(opset);
    add_per_tensor_quantize_cases(cases, rng);
    test::expect_matches_ort(cases, "quantize_per_tensor_opset" + std::to_string(opset));
  }
}

TEST(QuantizeLinear, HalfWayValuesRoundToEven) {
  // Independent of ORT: k + 0.5 goes to the even neighbour.
  QuantCases cases(13);
  const Tensor x = Tensor::from_vector<float>({6}, {0.25f, 0.75f, 1.25f, -0.25f, -0.75f, -1.25f});
  cases.feed("x", x);
  cases.constant("scale", Tensor::scalar<float>(0.5f));
  cases.constant("zp", Tensor::scalar<int8_t>(0));
  cases.builder.node("QuantizeLinear", {"x", "scale", "zp"}, {"y"}).output("y", DType::I8);
  Session s(cases.builder.model);
  EXPECT_EQ(s.run(cases.feeds)[0].second.to_vector<int8_t>(), (std::vector<int8_t>{0, 2, 2, 0, -2, -2}));
}

TEST(QuantizeLinear, PerAxisOnEveryAxisMatchesOrt) {
  TINYQ_REQUIRE_ORT();
  std::mt19937 rng(2);
  QuantCases cases(13);
  const Shape shape{2, 3, 4, 5};
  for (int64_t axis : {0, 1, 2, 3, -1, -3}) {
    for (DType type : {DType::U8, DType::I8}) {
      const int64_t n = shape[static_cast<size_t>(axis < 0 ? axis + 4 : axis)];
      const std::string p = cases.prefix();
      // Wide enough that some values saturate at either end.
      cases.feed(p + "x", test::random_floats(rng, shape, -30.0f, 30.0f));
      cases.constant(p + "scale", Tensor::from_vector<float>({n}, random_scales(n, rng)));
      cases.constant(p + "zp", zero_points(type, edge_zero_points(type, n, rng)));
      cases.builder
          .node("QuantizeLinear", {p + "x", p + "scale", p + "zp"}, {p + "y"}, {Attribute::make_int("axis", axis)})
          .output(p + "y", type);
    }
  }
  test::expect_matches_ort(cases, "quantize_per_axis");
}

TEST(QuantizeLinear, Int32InputIsScaledInDouble) {
  // ONNX allows int32 x (ORT does not implement it): x / scale in double, rounded half to even.
  QuantCases cases(13);
  cases.feed("x", Tensor::from_vector<int32_t>({6}, {-1000, -3, 3, 5, 16777217, 255}));
  cases.constant("scale", Tensor::scalar<float>(2.0f));
  cases.constant("zp", Tensor::scalar<uint8_t>(10));
  cases.builder.node("QuantizeLinear", {"x", "scale", "zp"}, {"y"}).output("y", DType::U8);
  Session s(cases.builder.model);
  // -1000/2+10 saturates at 0; -1.5 -> -2; 1.5 -> 2; 2.5 -> 2; huge saturates; 127.5 -> 128.
  EXPECT_EQ(s.run(cases.feeds)[0].second.to_vector<uint8_t>(), (std::vector<uint8_t>{0, 8, 12, 12, 255, 138}));
}

TEST(QuantizeLinear, MalformedNodesFailAtLoad) {
  {
    QuantCases cases(10);  // per-axis parameters arrive with opset 13
    cases.feed("x", Tensor(DType::F32, {2, 3}));
    cases.constant("scale", Tensor::from_vector<float>({3}, {1, 2, 3}));
    cases.builder.node("QuantizeLinear", {"x", "scale"}, {"y"}).output("y", DType::U8);
    test::expect_load_error(cases.builder.model, {"QuantizeLinear", "scalar before opset 13"});
  }
  {
    QuantCases cases(10);
    cases.feed("x", Tensor(DType::F32, {2, 3}));
    cases.constant("scale", Tensor::scalar<float>(1));
    cases.builder.node("QuantizeLinear", {"x", "scale"}, {"y"}, {Attribute::make_int("axis", 0)}).output("y", DType::U8);
    test::expect_load_error(cases.builder.model, {"QuantizeLinear", "unknown attribute 'axis'"});
  }
  {
    QuantCases cases(13);
    cases.feed("x", Tensor(DType::F32, {2, 3}));
    cases.constant("scale", Tensor::scalar<float>(1));
    cases.constant("zp", Tensor::scalar<int32_t>(0));
    cases.builder.node("QuantizeLinear", {"x", "scale", "zp"}, {"y"}).output("y", DType::I32);
    test::expect_load_error(cases.builder.model, {"QuantizeLinear", "y_zero_point must be uint8 or int8"});
  }
}

TEST(QuantizeLinear, BadAxisOrChannelCountFailsWhenRun) {
  for (auto [axis, scales, needle] : {std::tuple<int64_t, int64_t, const char*>{2, 3, "out of range"},
                                      {0, 3, "has 2"}}) {
    QuantCases cases(13);
    cases.feed("x", Tensor(DType::F32, {2, 3}));
    cases.constant("scale", Tensor::from_vector<float>({scales}, std::vector<float>(static_cast<size_t>(scales), 1.0f)));
    cases.builder.node("QuantizeLinear", {"x", "scale"}, {"y"}, {Attribute::make_int("axis", axis)}).output("y", DType::U8);
    test::expect_run_error(cases.builder.model, cases.feeds, {"QuantizeLinear", needle});
  }
}

// --- DequantizeLinear -------------------------------------------------------------------------

TEST(DequantizeLinear, PerTensorAndInt32MatchOrt) {
  TINYQ_REQUIRE_ORT();
  for (int64_t opset : {10, 13, 18}) {
    std::mt19937 rng(3);
    QuantCases cases(opset);
    for (const auto& [type, z] : {std::pair<DType, int>{DType::U8, 0}, {DType::U8, 255}, {DType::I8, -128},
                                  {DType::I8, 127}}) {
      const std::string p = cases.prefix();
      cases.feed(p + "x", type == DType::U8 ? test::random_ints<uint8_t>(rng, {4, 33}, 0, 255)
                                            : test::random_ints<int8_t>(rng, {4, 33}, -128, 127));
      cases.constant(p + "scale", Tensor::scalar<float>(0.0371f));
      cases.constant(p + "zp", zero_point(type, z));
      cases.builder.node("DequantizeLinear", {p + "x", p + "scale", p + "zp"}, {p + "y"}).output(p + "y");
    }
    // uint8 without a zero point, and int32 (a bias) with and without its zero point of 0.
    std::string p = cases.prefix();
    cases.feed(p + "x", test::random_ints<uint8_t>(rng, {50}, 0, 255));
    cases.constant(p + "scale", Tensor::scalar<float>(0.25f));
    cases.builder.node("DequantizeLinear", {p + "x", p + "scale"}, {p + "y"}).output(p + "y");
    for (bool with_zp : {false, true}) {
      p = cases.prefix();
      cases.feed(p + "x", Tensor::from_vector<int32_t>({5}, {-2147483647 - 1, -70000, 0, 123456789, 2147483647}));
      cases.constant(p + "scale", Tensor::scalar<float>(1.5e-4f));
      std::vector<std::string> ins{p + "x", p + "scale"};
      if (with_zp) {
        cases.constant(p + "zp", Tensor::scalar<int32_t>(0));
        ins.push_back(p + "zp");
      }
      cases.builder.node("DequantizeLinear", ins, {p + "y"}).output(p + "y");
    }
    test::expect_matches_ort(cases, "dequantize_per_tensor_opset" + std::to_string(opset));
  }
}

TEST(DequantizeLinear, PerAxisOnEveryAxisMatchesOrt) {
  TINYQ_REQUIRE_ORT();
  std::mt19937 rng(4);
  QuantCases cases(13);
  const Shape shape{3, 4, 2, 5};
  for (int64_t axis : {0, 1, 2, 3, -1, -4}) {
    for (DType type : {DType::U8, DType::I8}) {
      const int64_t n = shape[static_cast<size_t>(axis < 0 ? axis + 4 : axis)];
      const std::string p = cases.prefix();
      cases.feed(p + "x", type == DType::U8 ? test::random_ints<uint8_t>(rng, shape, 0, 255)
                                            : test::random_ints<int8_t>(rng, shape, -128, 127));
      cases.constant(p + "scale", Tensor::from_vector<float>({n}, random_scales(n, rng)));
      cases.constant(p + "zp", zero_points(type, edge_zero_points(type, n, rng)));
      cases.builder
          .node("DequantizeLinear", {p + "x", p + "scale", p + "zp"}, {p + "y"}, {Attribute::make_int("axis", axis)})
          .output(p + "y");
    }
  }
  // A per-channel int32 bias, as ONNX Runtime's QDQ quantiser writes them.
  const std::string p = cases.prefix();
  cases.feed(p + "x", test::random_ints<int32_t>(rng, {6}, -100000, 100000));
  cases.constant(p + "scale", Tensor::from_vector<float>({6}, random_scales(6, rng)));
  cases.constant(p + "zp", Tensor::from_vector<int32_t>({6}, std::vector<int32_t>(6, 0)));
  cases.builder.node("DequantizeLinear", {p + "x", p + "scale", p + "zp"}, {p + "y"}, {Attribute::make_int("axis", 0)})
      .output(p + "y");
  test::expect_matches_ort(cases, "dequantize_per_axis");
}

TEST(DequantizeLinear, QuantizeThenDequantizeRoundTripsOnTheGrid) {
  // Values on the quantisation grid survive Q then DQ exactly.
  QuantCases cases(13);
  std::vector<float> grid;
  for (int q = -128; q <= 127; ++q) grid.push_back(0.125f * static_cast<float>(q - 5));
  cases.feed("x", Tensor::from_vector<float>({256}, grid));
  cases.constant("scale", Tensor::scalar<float>(0.125f));
  cases.constant("zp", Tensor::scalar<int8_t>(5));
  cases.builder.node("QuantizeLinear", {"x", "scale", "zp"}, {"q"});
  cases.builder.node("DequantizeLinear", {"q", "scale", "zp"}, {"y"}).output("y");
  Session s(cases.builder.model);
  const Tensor y = s.run(cases.feeds)[0].second;
  // The top value 0.125 * 122 maps to q = 127; everything on the grid comes back.
  EXPECT_EQ(y.to_vector<float>(), grid);
}

TEST(DequantizeLinear, Int32WithNonZeroZeroPointIsRefused) {
  QuantCases cases(13);
  cases.feed("x", Tensor(DType::I32, {3}));
  cases.constant("scale", Tensor::scalar<float>(1));
  cases.constant("zp", Tensor::scalar<int32_t>(4));
  cases.builder.node("DequantizeLinear", {"x", "scale", "zp"}, {"y"}).output("y");
  test::expect_run_error(cases.builder.model, cases.feeds, {"DequantizeLinear", "must be 0"});
}

// --- DynamicQuantizeLinear --------------------------------------------------------------------

TEST(DynamicQuantizeLinear, AllPositiveNegativeZeroAndMixedMatchOrt) {
  TINYQ_REQUIRE_ORT();
  std::mt19937 rng(5);
  QuantCases cases(13);
  const std::vector<Tensor> inputs = {
      test::random_floats(rng, {3, 17, 5}, 0.5f, 9.0f),     // all positive: zero point 0
      test::random_floats(rng, {4, 31}, -6.0f, -0.01f),     // all negative: zero point 255
      Tensor(DType::F32, {2, 8}),                           // all zero: scale 1, zero point 0
      test::random_floats(rng, {2, 3, 4, 5}, -3.0f, 7.0f),  // mixed
      Tensor::from_vector<float>({1}, {-2.5f}),             // a single element
      // Exactly representable range with values half way between grid steps.
      Tensor::from_vector<float>({8}, {-1.0f, 1.55f, 0.0f, 2.0f, 0.5f, -0.5f, 0.99f, 1.0f}),
  };
  for (const Tensor& x : inputs) {
    const std::string p = cases.prefix();
    cases.feed(p + "x", x);
    cases.builder.node("DynamicQuantizeLinear", {p + "x"}, {p + "y", p + "scale", p + "zp"})
        .output(p + "y", DType::U8)
        .output(p + "scale", DType::F32)
        .output(p + "zp", DType::U8);
  }
  NamedTensors ours = test::expect_matches_ort(cases, "dynamic_quantize_linear");
  // The documented corner cases, independent of ORT.
  EXPECT_EQ(find_array(ours, "c0_zp")->to_vector<uint8_t>()[0], 0);
  EXPECT_EQ(find_array(ours, "c1_zp")->to_vector<uint8_t>()[0], 255);
  EXPECT_EQ(find_array(ours, "c2_scale")->to_vector<float>()[0], 1.0f);
  EXPECT_EQ(find_array(ours, "c2_zp")->to_vector<uint8_t>()[0], 0);
}

TEST(DynamicQuantizeLinear, NeedsThreeOutputs) {
  QuantCases cases(13);
  cases.feed("x", Tensor(DType::F32, {3}));
  cases.builder.node("DynamicQuantizeLinear", {"x"}, {"y"}).output("y", DType::U8);
  test::expect_load_error(cases.builder.model, {"DynamicQuantizeLinear", "outputs"});
}

}  // namespace
}  // namespace tinyq
