// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// Indexing, padding and type conversion against ONNX Runtime: Gather (negative indices, every
// axis), GatherND (batch_dims), ScatterND (reductions), Pad (every mode, negative pads, the
// opset 10 / 11 / 18 forms), Cast between float and integer types.

#include <limits>

#include "op_batch.h"

namespace tinyq::test {
namespace {

using A = Attribute;

TEST(OpsIndexing, Gather) {
  OpBatch b(13);
  // Negative indices count from the end of the gathered axis.
  b.op("Gather", {b.feed(rand_f32({5, 3})), b.constant(i64s({0, -1, 2, -5}))});
  b.op("Gather", {b.feed(rand_f32({2, 5, 3})), b.feed(rand_int<int64_t>({2, 2}, -5, 4))}, {A::make_int("axis", 1)});
  b.op("Gather", {b.feed(rand_f32({2, 3, 4})), b.feed(Tensor::from_vector<int32_t>({3}, {3, -4, 0}))},
       {A::make_int("axis", -1)});
  b.op("Gather", {b.feed(rand_f32({4, 3})), b.constant(Tensor::scalar<int64_t>(-2))});  // scalar index drops the axis
  b.op("Gather", {b.feed(rand_int<int64_t>({6}, -9, 9)), b.constant(i64s({5, 0, 0}))});
  b.op("Gather", {b.feed(rand_f32({3, 2})), b.constant(i64s({}))});
  b.check();
}

TEST(OpsIndexing, GatherNDWithBatchDims) {
  OpBatch b(13);
  // batch_dims 0: full tuples (elements), partial tuples (slices), negative indices.
  b.op("GatherND", {b.feed(rand_f32({2, 3})), b.constant(Tensor::from_vector<int64_t>({3, 2}, {0, 0, 1, -1, -2, 1}))});
  b.op("GatherND", {b.feed(rand_f32({2, 3, 4})), b.constant(Tensor::from_vector<int64_t>({2, 1}, {1, -2}))});
  b.op("GatherND", {b.feed(rand_f32({2, 3, 4})), b.constant(Tensor::from_vector<int64_t>({2, 2, 2}, {0, 1, 1, 2, 1, 0, 0, -1}))});
  // batch_dims 1 and 2.
  b.op("GatherND", {b.feed(rand_f32({2, 3, 4})), b.constant(Tensor::from_vector<int64_t>({2, 1}, {2, 0}))},
       {A::make_int("batch_dims", 1)});
  b.op("GatherND", {b.feed(rand_f32({2, 3, 4})), b.constant(Tensor::from_vector<int64_t>({2, 2, 2}, {0, 3, 2, 1, 1, 1, 0, 2}))},
       {A::make_int("batch_dims", 1)});
  b.op("GatherND", {b.feed(rand_f32({2, 3, 4})), b.constant(Tensor::from_vector<int64_t>({2, 3, 1}, {0, 3, 2, 1, 1, 0}))},
       {A::make_int("batch_dims", 2)});
  b.op("GatherND", {b.feed(rand_int<int64_t>({3, 3}, 0, 99)), b.feed(Tensor::from_vector<int64_t>({2, 2}, {2, 2, 0, 1}))});
  b.check();
}

TEST(OpsIndexing, ScatterND) {
  auto add_cases = [](OpBatch& b, const std::string& reduction) {
    std::vector<A> attrs;
    if (!reduction.empty()) attrs.push_back(A::make_string("reduction", reduction));
    // Element updates, slice updates, repeated indices only where the reduction makes order moot.
    b.op("ScatterND", {b.feed(rand_f32({8})), b.constant(Tensor::from_vector<int64_t>({3, 1}, {4, 0, -1})),
                       b.feed(rand_f32({3}))}, attrs);
    b.op("ScatterND", {b.feed(rand_f32({4, 3, 2})), b.constant(Tensor::from_vector<int64_t>({2, 1}, {2, 0})),
                       b.feed(rand_f32({2, 3, 2}))}, attrs);
    b.op("ScatterND", {b.feed(rand_f32({4, 3})), b.constant(Tensor::from_vector<int64_t>({2, 2, 2}, {0, 0, 3, 2, 1, 1, 2, 0})),
                       b.feed(rand_f32({2, 2}))}, attrs);
    b.op("ScatterND", {b.feed(rand_int<int64_t>({5}, -9, 9)), b.constant(Tensor::from_vector<int64_t>({2, 1}, {1, 3})),
                       b.feed(rand_int<int64_t>({2}, -9, 9))}, attrs);
    if (reduction != "" && reduction != "none")
      b.op("ScatterND", {b.feed(rand_f32({4})), b.constant(Tensor::from_vector<int64_t>({3, 1}, {1, 1, 1})),
                         b.feed(rand_f32({3}))}, attrs);
  };
  OpBatch b13(13);
  add_cases(b13, "");
  b13.check();
  OpBatch b16(16);
  for (const char* r : {"none", "add", "mul"}) add_cases(b16, r);
  b16.check();
  OpBatch b18(18);
  for (const char* r : {"max", "min"}) add_cases(b18, r);
  b18.check();
}

// Pad cases on a [3, 4] input: pads [begin0, begin1, end0, end1].
const std::vector<std::vector<int64_t>> kPads = {
    {1, 2, 1, 2}, {0, 0, 0, 0}, {2, 0, 0, 3}, {-1, 1, 0, -2}, {1, -1, -1, 2}, {2, 3, 2, 3},
};

TEST(OpsPad, EveryModeOpset11) {
  OpBatch b(11);
  for (const char* mode : {"constant", "reflect", "edge"}) {
    for (const auto& pads : kPads) {
      b.op("Pad", {b.feed(rand_f32({3, 4})), b.constant(i64s(pads))}, {A::make_string("mode", mode)});
    }
    b.op("Pad", {b.feed(rand_f32({2, 3, 4})), b.feed(i64s({0, 1, 1, 1, 0, 2}))}, {A::make_string("mode", mode)});
    b.op("Pad", {b.feed(rand_int<int64_t>({4}, -9, 9)), b.constant(i64s({2, 1}))}, {A::make_string("mode", mode)});
  }
  // Constant value given, omitted, and an integer constant.
  b.op("Pad", {b.feed(rand_f32({3, 4})), b.constant(i64s({1, 1, 1, 1})), b.constant(Tensor::scalar<float>(-7.5f))});
  b.op("Pad", {b.feed(rand_f32({3, 4})), b.constant(i64s({1, 0, 0, 1})), ""});
  b.op("Pad", {b.feed(rand_int<int32_t>({2, 2}, -9, 9)), b.constant(i64s({0, 1, 1, 0})),
               b.constant(Tensor::scalar<int32_t>(42))});
  b.check();
}

TEST(OpsPad, AttributeFormOpset10) {
  OpBatch b(10);
  for (const char* mode : {"constant", "reflect", "edge"})
    b.op("Pad", {b.feed(rand_f32({3, 4}))}, {A::make_string("mode", mode), A::make_ints("pads", {1, 2, 0, 1})});
  b.op("Pad", {b.feed(rand_f32({3, 4}))}, {A::make_ints("pads", {0, 1, 2, 0}), A::make_float("value", 3.0f)});
  b.check();
}

TEST(OpsPad, AxesInputOpset18) {
  OpBatch b(18);
  for (const char* mode : {"constant", "reflect", "edge"}) {
    b.op("Pad", {b.feed(rand_f32({2, 3, 4})), b.constant(i64s({1, 2})), "", b.constant(i64s({-1}))},
         {A::make_string("mode", mode)});
    b.op("Pad", {b.feed(rand_f32({2, 3, 4})), b.constant(i64s({1, 0, 2, 1})), b.constant(Tensor::scalar<float>(1.0f)),
                 b.constant(i64s({2, 0}))}, {A::make_string("mode", mode)});
  }
  b.check();
}

TEST(OpsPad, ReflectBeyondTheBorderIsAnError) {
  // ONNX Runtime refuses a reflect pad larger than dim - 1 too.
  ModelBuilder mb(13);
  mb.input("x", DType::F32, {3, 4}).input("p", DType::I64, {4}).output("y");
  mb.node("Pad", {"x", "p"}, {"y"}, {A::make_string("mode", "reflect")});
  Session s(mb.model);
  for (const auto& pads : std::vector<std::vector<int64_t>>{{0, 4, 0, 0}, {0, 0, 3, 0}}) {
    try {
      s.run(NamedTensors{{"x", rand_f32({3, 4})}, {"p", i64s(pads)}});
      ADD_FAILURE() << "expected an error";
    } catch (const Error& e) {
      EXPECT_NE(e.message().find("Pad_0"), std::string::npos) << e.message();
      EXPECT_NE(e.message().find("exceeds"), std::string::npos) << e.message();
    }
  }
}

TEST(OpsPad, BogusModeFailsAtBuild) {
  ModelBuilder mb(13);
  mb.input("x", DType::F32, {2, 2}).initializer("p", i64s({1, 1, 1, 1})).output("y");
  mb.node("Pad", {"x", "p"}, {"y"}, {A::make_string("mode", "bogus")});
  expect_build_error(mb.model, "Pad_0", "'bogus'");
}

TEST(OpsCast, FloatAndIntegerTypes) {
  OpBatch b(13);
  // Values with fractions of both signs: float -> int truncates toward zero.
  Tensor x = rand_f32({3, 5}, -100.0f, 100.0f);
  for (DType to : {DType::I32, DType::I64, DType::I8, DType::U8, DType::Bool, DType::F64, DType::F32})
    b.op("Cast", {b.feed(x)}, {A::make_int("to", static_cast<int64_t>(to))});
  // A zero must give false.
  b.op("Cast", {b.feed(Tensor::from_vector<float>({3}, {0.0f, -0.0f, 0.25f}))}, {A::make_int("to", static_cast<int64_t>(DType::Bool))});
  for (DType to : {DType::F32, DType::I32, DType::I8, DType::Bool})
    b.op("Cast", {b.feed(rand_int<int64_t>({6}, -300, 300))}, {A::make_int("to", static_cast<int64_t>(to))});
  b.op("Cast", {b.feed(rand_int<uint8_t>({6}, 0, 255))}, {A::make_int("to", static_cast<int64_t>(DType::I8))});
  b.op("Cast", {b.feed(rand_int<int8_t>({6}, -128, 127))}, {A::make_int("to", static_cast<int64_t>(DType::U8))});
  b.op("Cast", {b.feed(rand_int<int32_t>({6}, -9, 9))}, {A::make_int("to", static_cast<int64_t>(DType::F64))});
  // Through types the npy bridge does not carry: float16, bfloat16, uint16, int16.
  for (DType mid : {DType::F16, DType::BF16, DType::U16, DType::I16}) {
    std::string t = b.hidden("Cast", {b.feed(rand_f32({4, 6}, -70000.0f, 70000.0f))}, {A::make_int("to", static_cast<int64_t>(mid))});
    b.op("Cast", {t}, {A::make_int("to", static_cast<int64_t>(DType::F32))});
    std::string s = b.hidden("Cast", {b.feed(rand_f32({50}, -1e-4f, 1e-4f))}, {A::make_int("to", static_cast<int64_t>(mid))});
    b.op("Cast", {s}, {A::make_int("to", static_cast<int64_t>(DType::F32))});
  }
  b.check();
}

TEST(OpsCast, OutOfRangeFloatsGiveOnnxRuntimesIntegers) {
  // C++ leaves these undefined; tinyq gives what ONNX Runtime's compiled casts give on x86.
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  OpBatch b(13);
  Tensor x = Tensor::from_vector<float>({8}, {300.0f, -300.0f, 1e10f, -1e10f, nan, inf, -inf, 255.9f});
  for (DType to : {DType::I32, DType::I64, DType::I8, DType::U8, DType::Bool})
    b.op("Cast", {b.feed(x)}, {A::make_int("to", static_cast<int64_t>(to))});
  b.check();
}

TEST(OpsCast, BadTargetTypeFailsAtBuild) {
  ModelBuilder mb(13);
  mb.input("x", DType::F32, {2}).output("y");
  mb.node("Cast", {"x"}, {"y"}, {A::make_int("to", 8)});  // string
  expect_build_error(mb.model, "Cast_0", "'to'");
}

TEST(OpsIndexing, OutOfRangeIndexIsAnError) {
  ModelBuilder mb(13);
  mb.input("x", DType::F32, {3}).input("i", DType::I64, {1}).output("y");
  mb.node("Gather", {"x", "i"}, {"y"});
  Session s(mb.model);
  for (int64_t bad : {3, -4}) {
    try {
      s.run(NamedTensors{{"x", rand_f32({3})}, {"i", i64s({bad})}});
      ADD_FAILURE() << "expected an error for index " << bad;
    } catch (const Error& e) {
      EXPECT_NE(e.message().find("Gather_0"), std::string::npos) << e.message();
      EXPECT_NE(e.message().find("out of range"), std::string::npos) << e.message();
    }
  }
}

}  // namespace
}  // namespace tinyq::test
