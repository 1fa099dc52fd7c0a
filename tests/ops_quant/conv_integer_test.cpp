// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// ConvInteger and QLinearConv against ONNX Runtime, bit for bit, over a table of geometries
// (pads, strides, dilations, groups, depthwise, auto_pad, 1-D / 2-D / 3-D, 1x1) and zero points
// at the ends of their ranges, per tensor and per output channel; QLinearConv also with int32
// bias, per-channel weight scales and saturating outputs. Per-channel weight zero points that
// differ between channels (ONNX allows them, ONNX Runtime's QLinearConv does not) are checked
// against ConvInteger plus the requantisation formula.

#include <cmath>
#include <cstring>

#include "quant_test_util.h"

namespace tinyq {
namespace {

using test::QuantCases;

Tensor random_8bit(std::mt19937& rng, DType type, const Shape& shape) {
  return type == DType::U8 ? test::random_ints<uint8_t>(rng, shape, 0, 255) : test::random_ints<int8_t>(rng, shape, -128, 127);
}
Tensor zp_tensor(DType type, const Shape& shape, const std::vector<int>& values) {
  if (type == DType::U8) return Tensor::from_vector<uint8_t>(shape, std::vector<uint8_t>(values.begin(), values.end()));
  return Tensor::from_vector<int8_t>(shape, std::vector<int8_t>(values.begin(), values.end()));
}
int type_lo(DType t) { return t == DType::U8 ? 0 : -128; }
int type_hi(DType t) { return t == DType::U8 ? 255 : 127; }

// One convolution geometry: input and weight shapes and the attributes as ONNX spells them.
struct Geometry {
  const char* name;
  Shape x, w;
  std::vector<Attribute> attrs;
};

std::vector<Geometry> geometries() {
  using A = Attribute;
  return {
      {"pad1", {1, 3, 9, 9}, {4, 3, 3, 3}, {A::make_ints("pads", {1, 1, 1, 1})}},
      {"stride2_asym_pads", {2, 3, 10, 9}, {5, 3, 3, 3}, {A::make_ints("strides", {2, 2}), A::make_ints("pads", {0, 1, 2, 1})}},
      {"dilation2", {1, 2, 11, 10}, {3, 2, 3, 2}, {A::make_ints("dilations", {2, 2}), A::make_ints("pads", {2, 1, 2, 1})}},
      {"group3", {2, 6, 8, 8}, {6, 2, 3, 3}, {A::make_int("group", 3), A::make_ints("pads", {1, 1, 1, 1})}},
      {"depthwise", {1, 4, 7, 7}, {4, 1, 3, 3},
       {A::make_int("group", 4), A::make_ints("pads", {1, 1, 1, 1}), A::make_ints("kernel_shape", {3, 3})}},
      {"same_upper", {1, 2, 9, 8}, {3, 2, 4, 3}, {A::make_string("auto_pad", "SAME_UPPER"), A::make_ints("strides", {2, 2})}},
      {"same_lower", {1, 2, 7, 6}, {3, 2, 2, 4}, {A::make_string("auto_pad", "SAME_LOWER")}},
      {"valid", {1, 3, 8, 7}, {2, 3, 3, 2}, {A::make_string("auto_pad", "VALID"), A::make_ints("strides", {1, 2})}},
      {"conv1d", {2, 3, 11}, {5, 3, 3}, {A::make_ints("strides", {2}), A::make_ints("pads", {1, 1})}},
      {"conv3d", {1, 2, 5, 6, 4}, {3, 2, 2, 3, 2}, {A::make_ints("pads", {1, 0, 1, 0, 1, 1})}},
      {"pointwise", {2, 8, 5, 5}, {16, 8, 1, 1}, {}},
  };
}

TEST(ConvInteger, GeometriesTypesAndZeroPointsMatchOrt) {
  TINYQ_REQUIRE_ORT();
  std::mt19937 rng(21);
  QuantCases cases(13);
  // ONNX Runtime's ConvInteger takes uint8 x only (int8 x is covered by QLinearConv below) and
  // per-tensor zero points only (per-channel ones are checked in the next test).
  for (DType tw : {DType::I8, DType::U8}) {
    for (const Geometry& g : geometries()) {
      // zero points: omitted; at the low ends; at the high ends.
      for (int zp_mode = 0; zp_mode < 3; ++zp_mode) {
        const std::string p = cases.prefix();
        cases.feed(p + "x", random_8bit(rng, DType::U8, g.x));
        cases.constant(p + "w", random_8bit(rng, tw, g.w));
        std::vector<std::string> ins{p + "x", p + "w"};
        if (zp_mode > 0) {
          cases.constant(p + "zx", zp_tensor(DType::U8, {}, {zp_mode == 2 ? 255 : zp_mode == 1 ? 0 : 131}));
          cases.constant(p + "zw", zp_tensor(tw, {}, {zp_mode == 2 ? type_hi(tw) : type_lo(tw)}));
          ins.push_back(p + "zx");
          ins.push_back(p + "zw");
        }
        cases.builder.node("ConvInteger", ins, {p + "y"}, g.attrs).output(p + "y", DType::I32);
      }
    }
  }
  test::expect_matches_ort(cases, "conv_integer");
}

TEST(ConvInteger, PerChannelWeightZeroPointsEqualPerChannelSlices) {
  // Output channel m with w_zero_point[m] must equal a convolution of w[m] alone with the scalar
  // zero point w_zero_point[m] (the path ORT checks above).
  std::mt19937 rng(24);
  for (const Geometry& g : geometries()) {
    const Attribute* group = nullptr;
    for (const Attribute& a : g.attrs)
      if (a.name == "group") group = &a;
    if (group) continue;  // slicing output channels would change a grouped convolution
    for (DType tw : {DType::I8, DType::U8}) {
      const int64_t m = g.w[0];
      const int64_t per_channel = shape_numel(g.w) / m;
      const Tensor x = random_8bit(rng, DType::U8, g.x), w = random_8bit(rng, tw, g.w);
      std::vector<int> zw;
      for (int64_t c = 0; c < m; ++c) zw.push_back(c % 2 ? type_hi(tw) : type_lo(tw) + static_cast<int>(3 * c));
      QuantCases cases(13);
      cases.feed("x", x);
      cases.constant("w", w);
      cases.constant("zx", zp_tensor(DType::U8, {}, {250}));
      cases.constant("zw", zp_tensor(tw, {m}, zw));
      cases.builder.node("ConvInteger", {"x", "w", "zx", "zw"}, {"y"}, g.attrs).output("y", DType::I32);
      Shape one = g.w;
      one[0] = 1;
      for (int64_t c = 0; c < m; ++c) {
        const std::string p = "m" + std::to_string(c) + "_";
        Tensor wc(tw, one);
        std::memcpy(wc.raw(), static_cast<const char*>(w.raw()) + c * per_channel, static_cast<size_t>(per_channel));
        cases.constant(p + "w", wc);
        cases.constant(p + "zw", zp_tensor(tw, {}, {zw[static_cast<size_t>(c)]}));
        cases.builder.node("ConvInteger", {"x", p + "w", "zx", p + "zw"}, {p + "y"}, g.attrs).output(p + "y", DType::I32);
      }
      const NamedTensors out = Session(cases.builder.model).run(cases.feeds);
      const std::vector<int32_t> y = out[0].second.to_vector<int32_t>();
      const int64_t batch = g.x[0], plane = static_cast<int64_t>(y.size()) / (batch * m);
      for (int64_t c = 0; c < m; ++c) {
        const std::vector<int32_t> yc = out[static_cast<size_t>(c) + 1].second.to_vector<int32_t>();
        for (int64_t n = 0; n < batch; ++n)
          for (int64_t i = 0; i < plane; ++i)
            ASSERT_EQ(y[static_cast<size_t>((n * m + c) * plane + i)], yc[static_cast<size_t>(n * plane + i)])
                << g.name << " channel " << c;
      }
    }
  }
}

TEST(ConvInteger, PaddingReadsAsTheInputZeroPoint) {
  // x == zx everywhere: every (x - zx) is 0, padded taps included, so the output is all zero.
  QuantCases cases(13);
  cases.feed("x", Tensor::from_vector<uint8_t>({1, 1, 3, 3}, std::vector<uint8_t>(9, 200)));
  cases.constant("w", Tensor::from_vector<int8_t>({1, 1, 3, 3}, std::vector<int8_t>(9, 100)));
  cases.constant("zx", Tensor::scalar<uint8_t>(200));
  cases.builder.node("ConvInteger", {"x", "w", "zx"}, {"y"}, {Attribute::make_ints("pads", {2, 2, 2, 2})})
      .output("y", DType::I32);
  Session s(cases.builder.model);
  const Tensor y = s.run(cases.feeds)[0].second;
  EXPECT_EQ(shape_to_string(y.shape()), "[1,1,5,5]");
  EXPECT_EQ(y.to_vector<int32_t>(), std::vector<int32_t>(25, 0));
}

TEST(ConvInteger, MalformedAttributesFailAtLoad) {
  const std::pair<Attribute, const char*> bad[] = {
      {Attribute::make_string("auto_pad", "SAME"), "auto_pad 'SAME'"},
      {Attribute::make_int("group", 0), "group must be at least 1"},
      {Attribute::make_ints("strides", {1, 0}), "strides must be positive"},
      {Attribute::make_ints("pads", {1, 1, 1}), "pads must hold a begin and an end value"},
      {Attribute::make_int("alpha", 1), "unknown attribute 'alpha'"},
  };
  for (const auto& [attr, needle] : bad) {
    QuantCases cases(13);
    cases.feed("x", Tensor(DType::U8, {1, 1, 4, 4}));
    cases.constant("w", Tensor(DType::I8, {1, 1, 3, 3}));
    cases.builder.node("ConvInteger", {"x", "w"}, {"y"}, {attr}).output("y", DType::I32);
    test::expect_load_error(cases.builder.model, {"ConvInteger", needle});
  }
}

TEST(ConvInteger, ShapeMismatchesFailWhenRun) {
  const std::tuple<Shape, Shape, std::vector<Attribute>, const char*> bad[] = {
      {{1, 3, 4, 4}, {2, 2, 3, 3}, {}, "channels"},
      {{1, 1, 2, 2}, {1, 1, 3, 3}, {}, "does not fit"},
      {{1, 1, 4, 4}, {1, 1, 3, 3}, {Attribute::make_ints("kernel_shape", {2, 2})}, "kernel_shape"},
      {{1, 4}, {1, 4}, {}, "rank"},
  };
  for (const auto& [xs, ws, attrs, needle] : bad) {
    QuantCases cases(13);
    cases.feed("x", Tensor(DType::U8, xs));
    cases.constant("w", Tensor(DType::I8, ws));
    cases.builder.node("ConvInteger", {"x", "w"}, {"y"}, attrs).output("y", DType::I32);
    test::expect_run_error(cases.builder.model, cases.feeds, {"ConvInteger", needle});
  }
}

// --- QLinearConv ------------------------------------------------------------------------------

TEST(QLinearConv, GeometriesTypesScalesAndBiasMatchOrt) {
  TINYQ_REQUIRE_ORT();
  std::mt19937 rng(22);
  QuantCases cases(10);
  std::uniform_real_distribution<float> scale(0.002f, 0.05f);
  const std::pair<DType, DType> types[] = {{DType::U8, DType::I8}, {DType::U8, DType::U8}, {DType::I8, DType::I8}};
  for (const auto& [tx, tw] : types) {
    for (const Geometry& g : geometries()) {
      // 0: per tensor, no bias; 1: per-channel weight scales (one shared zero point, as ORT
      // needs) and bias, zero points at the low ends; 2: high ends, a y_scale that saturates.
      for (int mode = 0; mode < 3; ++mode) {
        const int64_t m = g.w[0];
        const std::string p = cases.prefix();
        cases.feed(p + "x", random_8bit(rng, tx, g.x));
        cases.constant(p + "sx", Tensor::scalar<float>(scale(rng)));
        cases.constant(p + "zx", zp_tensor(tx, {}, {mode == 2 ? type_hi(tx) : type_lo(tx) + (mode == 0 ? 7 : 0)}));
        cases.constant(p + "w", random_8bit(rng, tw, g.w));
        if (mode == 1) {
          std::vector<float> sw;
          for (int64_t c = 0; c < m; ++c) sw.push_back(scale(rng));
          cases.constant(p + "sw", Tensor::from_vector<float>({m}, sw));
          cases.constant(p + "zw", zp_tensor(tw, {m}, std::vector<int>(static_cast<size_t>(m), type_lo(tw))));
        } else {
          cases.constant(p + "sw", Tensor::scalar<float>(scale(rng)));
          cases.constant(p + "zw", zp_tensor(tw, {}, {mode == 2 ? type_hi(tw) : 0}));
        }
        cases.constant(p + "sy", Tensor::scalar<float>(mode == 2 ? 1e-4f : 0.03f));
        cases.constant(p + "zy", zp_tensor(tx, {}, {mode == 2 ? type_lo(tx) : type_hi(tx) - 100}));
        std::vector<std::string> ins{p + "x", p + "sx", p + "zx", p + "w", p + "sw", p + "zw", p + "sy", p + "zy"};
        if (mode == 1) {
          cases.constant(p + "b", test::random_ints<int32_t>(rng, {m}, -20000, 20000));
          ins.push_back(p + "b");
        }
        cases.builder.node("QLinearConv", ins, {p + "y"}, g.attrs).output(p + "y", tx);
      }
    }
  }
  test::expect_matches_ort(cases, "qlinear_conv");
}

TEST(QLinearConv, DistinctPerChannelWeightZeroPoints) {
  // Reference: ConvInteger (checked against ORT above) plus the requantisation formula.
  std::mt19937 rng(23);
  const Shape xs{1, 3, 6, 6}, ws{4, 3, 3, 3};
  const Tensor x = random_8bit(rng, DType::U8, xs), w = random_8bit(rng, DType::I8, ws);
  const std::vector<int> zw{-128, 127, 0, -3};
  const std::vector<float> sw{0.01f, 0.004f, 0.02f, 0.007f};
  const std::vector<int32_t> bias{100, -2000, 0, 5};
  const float sx = 0.02f, sy = 0.05f;
  const int zx = 17, zy = 128;
  const std::vector<Attribute> attrs{Attribute::make_ints("pads", {1, 1, 1, 1})};

  QuantCases ref(13);
  ref.feed("x", x);
  ref.constant("w", w);
  ref.constant("zx", zp_tensor(DType::U8, {}, {zx}));
  ref.constant("zw", zp_tensor(DType::I8, {4}, zw));
  ref.builder.node("ConvInteger", {"x", "w", "zx", "zw"}, {"acc"}, attrs).output("acc", DType::I32);
  const std::vector<int32_t> acc = Session(ref.builder.model).run(ref.feeds)[0].second.to_vector<int32_t>();

  QuantCases cases(13);
  cases.feed("x", x);
  cases.constant("sx", Tensor::scalar<float>(sx));
  cases.constant("zx", zp_tensor(DType::U8, {}, {zx}));
  cases.constant("w", w);
  cases.constant("sw", Tensor::from_vector<float>({4}, sw));
  cases.constant("zw", zp_tensor(DType::I8, {4}, zw));
  cases.constant("sy", Tensor::scalar<float>(sy));
  cases.constant("zy", zp_tensor(DType::U8, {}, {zy}));
  cases.constant("b", Tensor::from_vector<int32_t>({4}, bias));
  cases.builder.node("QLinearConv", {"x", "sx", "zx", "w", "sw", "zw", "sy", "zy", "b"}, {"y"}, attrs)
      .output("y", DType::U8);
  const std::vector<uint8_t> y = Session(cases.builder.model).run(cases.feeds)[0].second.to_vector<uint8_t>();
  ASSERT_EQ(y.size(), acc.size());
  for (size_t i = 0; i < y.size(); ++i) {
    const size_t c = i / 36;
    const float r = std::nearbyint(static_cast<float>(acc[i] + bias[c]) * (sx * sw[c] / sy)) + static_cast<float>(zy);
    EXPECT_EQ(y[i], static_cast<int>(std::min(255.0f, std::max(0.0f, r)))) << i;
  }
}

TEST(QLinearConv, MalformedInputsFail) {
  QuantCases cases(10);
  cases.feed("x", Tensor(DType::U8, {1, 2, 4, 4}));
  cases.constant("s", Tensor::scalar<float>(0.1f));
  cases.constant("z", Tensor::scalar<uint8_t>(0));
  cases.constant("w", Tensor(DType::I8, {3, 2, 3, 3}));
  cases.constant("zw", Tensor::scalar<int8_t>(0));
  cases.constant("b", Tensor(DType::I32, {2}));
  cases.builder.node("QLinearConv", {"x", "s", "z", "w", "s", "zw", "s", "z", "b"}, {"y"}).output("y", DType::U8);
  test::expect_run_error(cases.builder.model, cases.feeds, {"QLinearConv", "B must be int32 of shape [3]"});

  QuantCases vec_x(10);
  vec_x.feed("x", Tensor(DType::U8, {1, 2, 4, 4}));
  vec_x.constant("s", Tensor::scalar<float>(0.1f));
  vec_x.constant("sx", Tensor::from_vector<float>({2}, {0.1f, 0.2f}));
  vec_x.constant("z", Tensor::scalar<uint8_t>(0));
  vec_x.constant("w", Tensor(DType::I8, {3, 2, 3, 3}));
  vec_x.constant("zw", Tensor::scalar<int8_t>(0));
  vec_x.builder.node("QLinearConv", {"x", "sx", "z", "w", "s", "zw", "s", "z"}, {"y"}).output("y", DType::U8);
  test::expect_load_error(vec_x.builder.model, {"QLinearConv", "must be a scalar"});
}

}  // namespace
}  // namespace tinyq
