// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// Data-movement ops against ONNX Runtime: Reshape Flatten Squeeze Unsqueeze (attribute and input
// forms) Transpose Concat Slice Shape Expand Constant ConstantOfShape, and their build errors.

#include <limits>

#include "op_batch.h"

namespace tinyq::test {
namespace {

using A = Attribute;
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();

TEST(OpsShape, Reshape) {
  OpBatch b(14);
  const std::vector<std::pair<Shape, std::vector<int64_t>>> cases = {
      {{2, 3, 4}, {6, 4}},   {{2, 3, 4}, {-1}},       {{2, 3, 4}, {0, -1}},   {{2, 3, 4}, {0, 0, 2, 2}},
      {{2, 3, 4}, {4, 0, 2}}, {{2, 3, 4}, {-1, 3, 1}}, {{1, 6}, {}},          {{24}, {2, -1, 3}},
  };
  for (const auto& [in, target] : cases) {
    if (target.empty()) {  // to a scalar needs a one-element input
      b.op("Reshape", {b.feed(rand_f32({1})), b.constant(i64s({}))});
      continue;
    }
    b.op("Reshape", {b.feed(rand_f32(in)), b.constant(i64s(target))});
  }
  // Shape fed at run time; integer data.
  b.op("Reshape", {b.feed(rand_int<int64_t>({2, 6}, -9, 9)), b.feed(i64s({3, -1}))});
  // allowzero: a 0 in the target is a real 0 (needs an empty input).
  b.op("Reshape", {b.feed(rand_f32({2, 0, 3})), b.constant(i64s({0, 6}))}, {A::make_int("allowzero", 1)});
  b.op("Reshape", {b.feed(rand_f32({2, 0, 3})), b.constant(i64s({2, 0}))}, {A::make_int("allowzero", 0)});
  b.check();
}

TEST(OpsShape, FlattenSqueezeUnsqueezeOpset11) {
  OpBatch b(11);
  for (int64_t axis : {0, 1, 2, -1, 3}) b.op("Flatten", {b.feed(rand_f32({2, 3, 4}))}, {A::make_int("axis", axis)});
  b.op("Flatten", {b.feed(rand_f32({2, 3, 4}))});
  b.op("Squeeze", {b.feed(rand_f32({1, 3, 1, 2}))});
  b.op("Squeeze", {b.feed(rand_f32({1, 3, 1, 2}))}, {A::make_ints("axes", {0})});
  b.op("Squeeze", {b.feed(rand_f32({1, 3, 1, 2}))}, {A::make_ints("axes", {-2, 0})});
  b.op("Unsqueeze", {b.feed(rand_f32({3, 2}))}, {A::make_ints("axes", {0})});
  b.op("Unsqueeze", {b.feed(rand_f32({3, 2}))}, {A::make_ints("axes", {-1, 1})});
  b.op("Unsqueeze", {b.feed(rand_f32({}))}, {A::make_ints("axes", {0, 1})});
  b.check();
}

TEST(OpsShape, SqueezeUnsqueezeAxesInputOpset13) {
  OpBatch b(13);
  b.op("Squeeze", {b.feed(rand_f32({1, 3, 1, 2}))});
  b.op("Squeeze", {b.feed(rand_f32({1, 3, 1, 2})), b.constant(i64s({2}))});
  b.op("Squeeze", {b.feed(rand_f32({1, 3, 1, 2})), b.constant(i64s({-4, -2}))});
  b.op("Squeeze", {b.feed(rand_f32({1, 3, 1, 2})), b.feed(i64s({0}))});
  b.op("Unsqueeze", {b.feed(rand_f32({3, 2})), b.constant(i64s({1, 3}))});
  b.op("Unsqueeze", {b.feed(rand_f32({3, 2})), b.constant(i64s({-1}))});
  b.op("Unsqueeze", {b.feed(rand_int<int64_t>({3}, 0, 9)), b.feed(i64s({0, -1}))});
  b.check();
}

TEST(OpsShape, TransposeAndConcat) {
  OpBatch b(13);
  b.op("Transpose", {b.feed(rand_f32({2, 3, 4}))});
  b.op("Transpose", {b.feed(rand_f32({2, 3, 4, 5}))}, {A::make_ints("perm", {0, 2, 3, 1})});
  b.op("Transpose", {b.feed(rand_f32({2, 3, 4, 5}))}, {A::make_ints("perm", {3, 1, 0, 2})});
  b.op("Transpose", {b.feed(rand_int<int64_t>({3, 5}, -9, 9))}, {A::make_ints("perm", {1, 0})});
  b.op("Transpose", {b.feed(rand_f32({1, 4, 1}))}, {A::make_ints("perm", {2, 0, 1})});
  b.op("Concat", {b.feed(rand_f32({2, 3})), b.feed(rand_f32({2, 1})), b.feed(rand_f32({2, 4}))}, {A::make_int("axis", 1)});
  b.op("Concat", {b.feed(rand_f32({2, 3})), b.feed(rand_f32({4, 3}))}, {A::make_int("axis", 0)});
  b.op("Concat", {b.feed(rand_f32({2, 3, 2})), b.feed(rand_f32({2, 3, 5}))}, {A::make_int("axis", -1)});
  b.op("Concat", {b.feed(rand_f32({2, 3})), b.feed(rand_f32({2, 0}))}, {A::make_int("axis", -1)});
  b.op("Concat", {b.feed(i64s({1, 2})), b.constant(i64s({-1})), b.feed(i64s({7}))}, {A::make_int("axis", 0)});
  b.check();
}

// One Slice case: starts, ends, and optional axes and steps (empty = omitted).
struct SliceCase {
  std::vector<int64_t> starts, ends, axes, steps;
};

TEST(OpsShape, SliceStepsNegativesAndClamping) {
  const std::vector<SliceCase> cases = {
      {{0}, {2}, {}, {}},
      {{1, 0}, {3, 100}, {}, {}},
      {{-3}, {-1}, {2}, {}},
      {{-100}, {kMax}, {-1}, {}},
      {{0, 1}, {kMax, kMax}, {0, 2}, {2, 3}},
      {{-1}, {kMin}, {1}, {-1}},               // reverse a whole axis
      {{4, 2}, {0, -100}, {2, 1}, {-2, -1}},   // negative steps on two axes
      {{10}, {-10}, {0}, {-3}},
      {{2}, {1}, {2}, {}},                     // empty result
      {{1}, {3}, {-2}, {kMax}},
  };
  for (int64_t opset : {11, 13}) {
    OpBatch b(opset);
    for (const auto& c : cases) {
      std::vector<std::string> in{b.feed(rand_f32({3, 4, 5})), b.constant(i64s(c.starts)), b.constant(i64s(c.ends))};
      if (!c.axes.empty() || !c.steps.empty()) in.push_back(c.axes.empty() ? "" : b.constant(i64s(c.axes)));
      if (!c.steps.empty()) in.push_back(b.constant(i64s(c.steps)));
      b.op("Slice", in);
    }
    // Everything fed at run time, int32 indices, integer data.
    b.op("Slice", {b.feed(rand_int<int64_t>({6, 2}, 0, 99)), b.feed(Tensor::from_vector<int32_t>({1}, {-2})),
                   b.feed(Tensor::from_vector<int32_t>({1}, {0})), b.feed(Tensor::from_vector<int32_t>({1}, {0})),
                   b.feed(Tensor::from_vector<int32_t>({1}, {-1}))});
    SCOPED_TRACE("opset " + std::to_string(opset));
    b.check();
  }
}

TEST(OpsShape, ShapeExpandConstants) {
  OpBatch b13(13);
  b13.op("Shape", {b13.feed(rand_f32({2, 3, 4}))});
  b13.op("Shape", {b13.feed(rand_f32({}))});
  b13.op("Expand", {b13.feed(rand_f32({3, 1})), b13.constant(i64s({2, 1, 4}))});
  b13.op("Expand", {b13.feed(rand_f32({2, 3})), b13.constant(i64s({1}))});  // smaller target
  b13.op("Expand", {b13.feed(rand_f32({1, 3, 1})), b13.feed(i64s({2, 1, 3, 5}))});
  b13.op("Expand", {b13.feed(rand_int<int64_t>({4}, 0, 9)), b13.constant(i64s({3, 4}))});
  b13.op("ConstantOfShape", {b13.constant(i64s({2, 3}))});
  b13.op("ConstantOfShape", {b13.feed(i64s({4}))},
         {A::make_tensor("value", Tensor::from_vector<int64_t>({1}, {7}))});
  b13.op("ConstantOfShape", {b13.feed(i64s({2, 2}))},
         {A::make_tensor("value", Tensor::from_vector<float>({1}, {-1.5f}))});
  b13.op("Constant", {}, {A::make_tensor("value", rand_f32({2, 2}))});
  b13.op("Constant", {}, {A::make_float("value_float", 2.5f)});
  b13.op("Constant", {}, {A::make_floats("value_floats", {1.0f, -2.0f})});
  b13.op("Constant", {}, {A::make_int("value_int", -4)});
  b13.op("Constant", {}, {A::make_ints("value_ints", {3, 1, 2})});
  b13.check();

  OpBatch b15(15);  // Shape's start/end
  for (auto [start, end] : std::vector<std::pair<int64_t, int64_t>>{{1, 3}, {-2, 100}, {0, -1}, {-100, 2}, {3, 1}}) {
    b15.op("Shape", {b15.feed(rand_f32({2, 3, 4, 5}))}, {A::make_int("start", start), A::make_int("end", end)});
  }
  b15.op("Shape", {b15.feed(rand_f32({2, 3, 4, 5}))}, {A::make_int("start", -1)});
  b15.check();
}

TEST(OpsShape, RunTimeErrorsNameTheNode) {
  ModelBuilder mb(13);
  mb.input("x", DType::F32, {2, 3}).input("axes", DType::I64, {1}).output("y");
  mb.node("Squeeze", {"x", "axes"}, {"y"});
  Session s(mb.model);
  try {
    s.run(NamedTensors{{"x", rand_f32({2, 3})}, {"axes", i64s({1})}});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(e.message().find("Squeeze_0"), std::string::npos) << e.message();
    EXPECT_NE(e.message().find("not 1"), std::string::npos) << e.message();
  }
}

TEST(OpsShape, BuildErrorsNameTheNode) {
  {
    ModelBuilder mb(13);
    mb.input("x", DType::F32, {2, 3}).initializer("s", i64s({-1, -1})).output("y");
    mb.node("Reshape", {"x", "s"}, {"y"});
    expect_build_error(mb.model, "Reshape_0", "more than one -1");
  }
  {
    ModelBuilder mb(13);
    mb.input("x", DType::F32, {4}).initializer("a", i64s({0})).initializer("b", i64s({4}))
        .initializer("ax", i64s({0})).initializer("st", i64s({0})).output("y");
    mb.node("Slice", {"x", "a", "b", "ax", "st"}, {"y"});
    expect_build_error(mb.model, "Slice_0", "steps must not be 0");
  }
  {
    ModelBuilder mb(13);
    mb.input("x", DType::F32, {2, 3}).output("y");
    mb.node("Transpose", {"x"}, {"y"}, {A::make_ints("perm", {0, 0})});
    expect_build_error(mb.model, "Transpose_0", "not a permutation");
  }
  {
    ModelBuilder mb(13);
    mb.input("x", DType::F32, {2, 3}).output("y");
    mb.node("Unsqueeze", {"x"}, {"y"});  // axes became a required input at opset 13
    expect_build_error(mb.model, "Unsqueeze_0", "inputs");
  }
  {
    ModelBuilder mb(13);
    mb.input("x", DType::F32, {2, 3}).output("y");
    mb.node("Concat", {"x", "x"}, {"y"});
    expect_build_error(mb.model, "Concat_0", "'axis' is missing");
  }
  {
    ModelBuilder mb(13);
    mb.output("y");
    mb.node("Constant", {}, {"y"}, {A::make_float("value_float", 1.0f), A::make_int("value_int", 1)});
    expect_build_error(mb.model, "Constant_0", "exactly one");
  }
}

}  // namespace
}  // namespace tinyq::test
