// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// MatMulInteger and QLinearMatMul against ONNX Runtime, bit for bit: every pair of 8-bit types,
// numpy matmul shapes (batch broadcasting, 1-D operands), zero points omitted, scalar at the
// ends of their ranges, and per column of B; requantisation that saturates. Per-row parameters
// of A, which ONNX allows and ONNX Runtime does not implement, are checked against a direct
// computation instead.

#include "common/qmath.h"
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

const std::pair<DType, DType> kTypePairs[] = {
    {DType::U8, DType::I8}, {DType::U8, DType::U8}, {DType::I8, DType::I8}, {DType::I8, DType::U8}};

struct MatMulShapes {
  Shape a, b;
  int64_t n;  // columns of B, for per-column zero points
};
const MatMulShapes kShapes[] = {
    {{5, 7}, {7, 3}, 3},       {{2, 4, 6}, {6, 5}, 5},       {{3, 6}, {2, 6, 4}, 4},
    {{2, 1, 3, 5}, {1, 4, 5, 2}, 2}, {{7}, {7, 3}, 3},       {{4, 7}, {7}, 1},
};

// Shape of per-column parameters of B as ONNX Runtime takes them: [N] for a 2-D B, and
// [..., 1, N] (B's rank) for a batched one.
Shape per_column_shape(const Shape& b) {
  if (b.size() == 2) return {b[1]};
  Shape s = b;
  s[s.size() - 2] = 1;
  return s;
}

TEST(MatMulInteger, TypesShapesAndZeroPointsMatchOrt) {
  TINYQ_REQUIRE_ORT();
  std::mt19937 rng(11);
  QuantCases cases(13);
  for (const auto& [ta, tb] : kTypePairs) {
    for (const MatMulShapes& s : kShapes) {
      // zero points: omitted; scalar at the low / high ends; per column of B.
      for (int zp_mode = 0; zp_mode < 4; ++zp_mode) {
        if (zp_mode == 3 && s.b.size() == 1) continue;  // a 1-D B has no columns to vary
        const std::string p = cases.prefix();
        cases.feed(p + "a", random_8bit(rng, ta, s.a));
        cases.feed(p + "b", random_8bit(rng, tb, s.b));
        std::vector<std::string> ins{p + "a", p + "b"};
        if (zp_mode > 0) {
          const bool high = zp_mode == 2;
          cases.constant(p + "za", zp_tensor(ta, {}, {high ? type_hi(ta) : type_lo(ta)}));
          if (zp_mode == 3) {
            // [N] for a 2-D B, [..., 1, N] (B's rank) for a batched one.
            std::vector<int> zb;
            const Shape zb_shape = per_column_shape(s.b);
            for (int64_t j = 0; j < shape_numel(zb_shape); ++j)
              zb.push_back(j % 2 ? type_hi(tb) : type_lo(tb) + static_cast<int>(j));
            cases.constant(p + "zb", zp_tensor(tb, zb_shape, zb));
          } else {
            cases.constant(p + "zb", zp_tensor(tb, {}, {high ? type_hi(tb) : type_lo(tb)}));
          }
          ins.push_back(p + "za");
          ins.push_back(p + "zb");
        }
        cases.builder.node("MatMulInteger", ins, {p + "y"}).output(p + "y", DType::I32);
      }
    }
  }
  test::expect_matches_ort(cases, "matmul_integer");
}

TEST(MatMulInteger, AccumulationWrapsAt32BitsLikeOrt) {
  TINYQ_REQUIRE_ORT();
  // 255 * 127 * 70000 > 2^31: the sum wraps modulo 2^32 (the only overflow ONNX permits).
  QuantCases cases(10);
  const int64_t k = 70000;
  cases.feed("a", Tensor::from_vector<uint8_t>({1, k}, std::vector<uint8_t>(k, 255)));
  cases.feed("b", Tensor::from_vector<int8_t>({k, 1}, std::vector<int8_t>(k, 127)));
  cases.builder.node("MatMulInteger", {"a", "b"}, {"y"}).output("y", DType::I32);
  NamedTensors ours = test::expect_matches_ort(cases, "matmul_integer_wrap");
  const int64_t exact = 255LL * 127 * k;
  EXPECT_EQ(ours[0].second.to_vector<int32_t>()[0], static_cast<int32_t>(static_cast<uint32_t>(exact)));
}

TEST(MatMulInteger, PerRowZeroPointsOfA) {
  // ONNX: a_zero_point may be [M] (2-D A) or [..., M, 1]; ONNX Runtime takes only scalars, so
  // this is checked against the definition directly.
  std::mt19937 rng(12);
  for (bool nd : {false, true}) {
    QuantCases cases(13);
    const Shape a_shape = nd ? Shape{2, 3, 4} : Shape{3, 4};
    const Tensor a = random_8bit(rng, DType::U8, a_shape), b = random_8bit(rng, DType::I8, {4, 5});
    const int64_t batches = nd ? 2 : 1;
    std::vector<int> za_values;
    for (int64_t i = 0; i < batches * 3; ++i) za_values.push_back(static_cast<int>(i * 50 % 256));
    const Tensor za = zp_tensor(DType::U8, nd ? Shape{2, 3, 1} : Shape{3}, za_values);
    const Tensor zb = zp_tensor(DType::I8, {5}, {-128, 127, 0, 3, -7});
    cases.feed("a", a);
    cases.feed("b", b);
    cases.constant("za", za);
    cases.constant("zb", zb);
    cases.builder.node("MatMulInteger", {"a", "b", "za", "zb"}, {"y"}).output("y", DType::I32);
    Session s(cases.builder.model);
    const std::vector<int32_t> y = s.run(cases.feeds)[0].second.to_vector<int32_t>();
    const uint8_t* pa = a.data<uint8_t>();
    const int8_t* pb = b.data<int8_t>();
    const int8_t* pzb = zb.data<int8_t>();
    ASSERT_EQ(y.size(), static_cast<size_t>(batches * 15));
    for (int64_t n = 0; n < batches; ++n)
      for (int64_t i = 0; i < 3; ++i)
        for (int64_t j = 0; j < 5; ++j) {
          int32_t want = 0;
          for (int64_t p = 0; p < 4; ++p)
            want += (pa[(n * 3 + i) * 4 + p] - za_values[static_cast<size_t>(n * 3 + i)]) * (pb[p * 5 + j] - pzb[j]);
          EXPECT_EQ(y[static_cast<size_t>((n * 3 + i) * 5 + j)], want) << "batch " << n << " (" << i << "," << j << ")";
        }
  }
}

TEST(MatMulInteger, MismatchedShapesAndTypesFail) {
  QuantCases cases(13);
  cases.feed("a", Tensor(DType::U8, {3, 4}));
  cases.feed("b", Tensor(DType::I8, {5, 2}));
  cases.builder.node("MatMulInteger", {"a", "b"}, {"y"}).output("y", DType::I32);
  test::expect_run_error(cases.builder.model, cases.feeds, {"MatMulInteger", "do not agree on K"});

  QuantCases bad_zp(13);
  bad_zp.feed("a", Tensor(DType::U8, {3, 4}));
  bad_zp.constant("b", Tensor(DType::I8, {4, 2}));
  bad_zp.constant("za", Tensor::scalar<uint8_t>(0));
  bad_zp.constant("zb", Tensor::scalar<uint8_t>(0));
  bad_zp.builder.node("MatMulInteger", {"a", "b", "za", "zb"}, {"y"}).output("y", DType::I32);
  test::expect_load_error(bad_zp.builder.model, {"MatMulInteger", "b_zero_point must have B's type"});

  QuantCases bad_cols(13);
  bad_cols.feed("a", Tensor(DType::U8, {3, 4}));
  bad_cols.feed("b", Tensor(DType::I8, {4, 2}));
  bad_cols.constant("za", Tensor::scalar<uint8_t>(0));
  bad_cols.constant("zb", Tensor(DType::I8, {3}));
  bad_cols.builder.node("MatMulInteger", {"a", "b", "za", "zb"}, {"y"}).output("y", DType::I32);
  test::expect_run_error(bad_cols.builder.model, bad_cols.feeds, {"MatMulInteger", "b_zero_point has shape [3]"});
}

// --- QLinearMatMul ----------------------------------------------------------------------------

TEST(QLinearMatMul, TypesShapesAndPerColumnParametersMatchOrt) {
  TINYQ_REQUIRE_ORT();
  std::mt19937 rng(13);
  QuantCases cases(10);
  std::uniform_real_distribution<float> scale(0.002f, 0.05f);
  // ONNX Runtime has no int8 x uint8 QLinearMatMul; that pair runs the same templated code as
  // the others and is checked against ORT through MatMulInteger.
  for (const auto& [ta, tb] : kTypePairs) {
    if (ta == DType::I8 && tb == DType::U8) continue;
    for (const MatMulShapes& s : kShapes) {
      // y's type is a's (ONNX Runtime's kernels are registered that way); y_scale either keeps
      // most outputs in range or saturates many of them.
      for (int mode = 0; mode < 3; ++mode) {
        const bool per_column = mode == 2 && s.b.size() > 1;
        const std::string p = cases.prefix();
        cases.feed(p + "a", random_8bit(rng, ta, s.a));
        cases.feed(p + "b", random_8bit(rng, tb, s.b));
        cases.constant(p + "sa", Tensor::scalar<float>(scale(rng)));
        cases.constant(p + "za", zp_tensor(ta, {}, {mode == 1 ? type_hi(ta) : type_lo(ta) + 3}));
        if (per_column) {
          std::vector<float> sb;
          std::vector<int> zb;
          const Shape shape = per_column_shape(s.b);
          for (int64_t j = 0; j < shape_numel(shape); ++j) {
            sb.push_back(scale(rng));
            zb.push_back(j % 2 ? type_hi(tb) : type_lo(tb));
          }
          cases.constant(p + "sb", Tensor::from_vector<float>(shape, sb));
          cases.constant(p + "zb", zp_tensor(tb, shape, zb));
        } else {
          cases.constant(p + "sb", Tensor::scalar<float>(scale(rng)));
          cases.constant(p + "zb", zp_tensor(tb, {}, {mode == 1 ? type_lo(tb) : type_hi(tb) - 1}));
        }
        cases.constant(p + "sy", Tensor::scalar<float>(mode == 1 ? 1e-4f : 0.05f));
        cases.constant(p + "zy", zp_tensor(ta, {}, {mode == 1 ? type_lo(ta) : type_hi(ta) - 20}));
        cases.builder
            .node("QLinearMatMul", {p + "a", p + "sa", p + "za", p + "b", p + "sb", p + "zb", p + "sy", p + "zy"},
                  {p + "y"})
            .output(p + "y", ta);
      }
    }
  }
  test::expect_matches_ort(cases, "qlinear_matmul");
}

TEST(QLinearMatMul, PerRowParametersOfA) {
  // Per-row a scale and zero point (ONNX allows them; ONNX Runtime does not): the definition,
  // y = saturate(round((a - za[i])(b - zb) * sa[i] * sb / sy) + zy), computed directly.
  std::mt19937 rng(14);
  QuantCases cases(13);
  const Tensor a = random_8bit(rng, DType::U8, {3, 6}), b = random_8bit(rng, DType::I8, {6, 4});
  const std::vector<float> sa{0.01f, 0.02f, 0.005f};
  const std::vector<int> za{0, 255, 128};
  const float sb = 0.03f, sy = 0.02f;
  const int zb = -5, zy = 100;
  cases.feed("a", a);
  cases.feed("b", b);
  cases.constant("sa", Tensor::from_vector<float>({3}, sa));
  cases.constant("za", zp_tensor(DType::U8, {3}, za));
  cases.constant("sb", Tensor::scalar<float>(sb));
  cases.constant("zb", zp_tensor(DType::I8, {}, {zb}));
  cases.constant("sy", Tensor::scalar<float>(sy));
  cases.constant("zy", zp_tensor(DType::U8, {}, {zy}));
  cases.builder.node("QLinearMatMul", {"a", "sa", "za", "b", "sb", "zb", "sy", "zy"}, {"y"}).output("y", DType::U8);
  Session s(cases.builder.model);
  const std::vector<uint8_t> y = s.run(cases.feeds)[0].second.to_vector<uint8_t>();
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 4; ++j) {
      int32_t acc = 0;
      for (int64_t p = 0; p < 6; ++p)
        acc += (a.data<uint8_t>()[i * 6 + p] - za[static_cast<size_t>(i)]) * (b.data<int8_t>()[p * 4 + j] - zb);
      const float m = sa[static_cast<size_t>(i)] * sb / sy;
      const float r = std::nearbyint(static_cast<float>(acc) * m) + static_cast<float>(zy);
      const int want = static_cast<int>(std::min(255.0f, std::max(0.0f, r)));
      EXPECT_EQ(y[static_cast<size_t>(i * 4 + j)], want) << i << "," << j;
    }
}

TEST(QLinearMatMul, NonScalarOutputParametersAreRefused) {
  QuantCases cases(10);
  cases.feed("a", Tensor(DType::U8, {2, 3}));
  cases.constant("s", Tensor::scalar<float>(1));
  cases.constant("z", Tensor::scalar<uint8_t>(0));
  cases.constant("b", Tensor(DType::U8, {3, 2}));
  cases.constant("sy", Tensor::from_vector<float>({2}, {1, 2}));
  cases.builder.node("QLinearMatMul", {"a", "s", "z", "b", "s", "z", "sy", "z"}, {"y"}).output("y", DType::U8);
  test::expect_load_error(cases.builder.model, {"QLinearMatMul", "y_scale must be a scalar"});
}

}  // namespace
}  // namespace tinyq
