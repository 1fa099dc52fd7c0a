// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// Elementwise ops against ONNX Runtime: broadcasting binary arithmetic (float and integer),
// Pow, the unary maths and activations, Clip in both forms, the variadic ops, Softmax before
// and after opset 13, BitShift, Gelu, Dropout.

#include <limits>

#include "op_batch.h"

namespace tinyq::test {
namespace {

using A = Attribute;

// Shapes that broadcast in every way numpy allows.
const std::vector<std::pair<Shape, Shape>> kBroadcastCases = {
    {{2, 3, 4}, {2, 3, 4}}, {{2, 3, 4}, {4}},    {{2, 1, 4}, {3, 1}}, {{}, {2, 3}},
    {{1}, {5}},             {{3, 1, 2}, {1, 4, 1}}, {{2, 3, 1, 5}, {1, 3, 4, 1}}, {{0, 3}, {3}},
};

TEST(OpsElementwise, BinaryFloatBroadcast) {
  OpBatch b(17);
  for (const char* op : {"Add", "Sub", "Mul", "Div"}) {
    for (const auto& [sa, sb] : kBroadcastCases) {
      b.op(op, {b.feed(rand_f32(sa)), b.feed(rand_f32(sb, 0.5f, 3.0f))});
      b.op(op, {b.feed(rand_f32(sb)), b.feed(rand_f32(sa, 0.5f, 3.0f))});  // swapped sides
    }
    // A constant operand (initializer), as exported models mostly have.
    b.op(op, {b.feed(rand_f32({2, 3})), b.constant(rand_f32({3}, 1.0f, 2.0f))});
  }
  b.check();
}

TEST(OpsElementwise, BinaryIntegers) {
  OpBatch b(13);
  for (const char* op : {"Add", "Sub", "Mul", "Div"}) {
    // Div on integers truncates toward zero: mixed signs on both sides; no zero divisors.
    Tensor d32 = rand_int<int32_t>({4, 5}, 1, 7);
    Tensor d64 = rand_int<int64_t>({5}, -7, -1);
    b.op(op, {b.feed(rand_int<int32_t>({3, 4, 5}, -50, 50)), b.feed(d32)});
    b.op(op, {b.feed(rand_int<int64_t>({2, 5}, -1000, 1000)), b.feed(d64)});
  }
  // Shape arithmetic as exporters write it: Shape -> Gather -> Mul/Div by a constant.
  std::string shape = b.hidden("Shape", {b.feed(rand_f32({2, 6, 4}))});
  std::string dim = b.hidden("Gather", {shape, b.constant(Tensor::scalar<int64_t>(1))}, {A::make_int("axis", 0)});
  b.op("Div", {dim, b.constant(Tensor::scalar<int64_t>(4))});
  b.op("Mul", {dim, b.constant(Tensor::scalar<int64_t>(-3))});
  b.check();
}

TEST(OpsElementwise, Pow) {
  OpBatch b(15);
  b.op("Pow", {b.feed(rand_f32({2, 3, 4}, 0.1f, 3.0f)), b.feed(rand_f32({4}, -2.0f, 2.0f))});
  b.op("Pow", {b.feed(rand_f32({3, 4})), b.constant(Tensor::scalar<float>(2.0f))});
  b.op("Pow", {b.feed(rand_f32({3, 4}, 0.0f, 5.0f)), b.constant(Tensor::scalar<float>(0.5f))});
  b.op("Pow", {b.feed(rand_f32({3, 4})), b.constant(Tensor::scalar<float>(3.0f))});
  // Integer exponent with a float base (opset 12+ mixed types), negative bases included.
  b.op("Pow", {b.feed(rand_f32({3, 4})), b.feed(rand_int<int64_t>({3, 4}, -3, 4))});
  b.op("Pow", {b.feed(rand_f32({2, 2})), b.feed(rand_int<int32_t>({1}, 0, 3))});
  b.op("Pow", {b.feed(rand_int<int64_t>({3, 4}, -5, 5)), b.feed(rand_int<int64_t>({4}, 0, 5))});
  b.check();
}

struct UnaryCase {
  const char* op;
  float lo, hi;  // input range (kept inside each op's domain)
  std::vector<A> attrs;
};

TEST(OpsElementwise, UnaryFloat) {
  const std::vector<UnaryCase> cases = {
      {"Neg", -3, 3, {}},
      {"Abs", -3, 3, {}},
      {"Sqrt", 0, 9, {}},
      {"Exp", -10, 10, {}},
      {"Log", 0.01f, 100, {}},
      {"Reciprocal", 0.1f, 4, {}},
      {"Relu", -3, 3, {}},
      {"LeakyRelu", -3, 3, {}},
      {"LeakyRelu", -3, 3, {A::make_float("alpha", 0.3f)}},
      {"Sigmoid", -12, 12, {}},
      {"Tanh", -6, 6, {}},
      {"Elu", -4, 4, {}},
      {"Elu", -4, 4, {A::make_float("alpha", 0.4f)}},
      {"Selu", -4, 4, {}},
      {"Selu", -4, 4, {A::make_float("alpha", 1.5f), A::make_float("gamma", 2.0f)}},
      {"Softplus", -30, 30, {}},
      {"Softsign", -5, 5, {}},
      {"Erf", -3, 3, {}},
      {"HardSigmoid", -5, 5, {}},
      {"HardSigmoid", -5, 5, {A::make_float("alpha", 0.4f), A::make_float("beta", 0.3f)}},
      {"HardSwish", -5, 5, {}},
  };
  OpBatch b(17);
  for (const auto& c : cases) {
    b.op(c.op, {b.feed(rand_f32({2, 3, 7}, c.lo, c.hi))}, c.attrs);
    b.op(c.op, {b.feed(rand_f32({}, c.lo, c.hi))}, c.attrs);  // scalar
  }
  // Integer forms: Neg/Abs on int32/int64; Relu on int32 (opset 14+).
  for (const char* op : {"Neg", "Abs"}) {
    b.op(op, {b.feed(rand_int<int32_t>({4, 5}, -100, 100))});
    b.op(op, {b.feed(rand_int<int64_t>({4, 5}, -100, 100))});
  }
  b.op("Relu", {b.feed(rand_int<int32_t>({4, 5}, -100, 100))});
  b.check();
}

TEST(OpsElementwise, NaNPropagatesAsInOnnxRuntime) {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  OpBatch b(14);
  auto x = [&] { return b.feed(Tensor::from_vector<float>({6}, {1.0f, nan, -1.0f, 2.0f, inf, -inf})); };
  auto y = [&] { return b.feed(Tensor::from_vector<float>({6}, {nan, 0.0f, 5.0f, -3.0f, 1.0f, 1.0f})); };
  b.op("Max", {x(), y()});
  b.op("Min", {x(), y()});
  b.op("Clip", {x(), b.constant(Tensor::scalar<float>(0.0f)), b.constant(Tensor::scalar<float>(1.0f))});
  for (const char* op : {"Relu", "LeakyRelu", "HardSigmoid", "HardSwish", "Sigmoid", "Tanh", "Abs", "Neg", "Softsign"})
    b.op(op, {x()});
  b.op("Softmax", {x()});
  b.check();
}

TEST(OpsElementwise, PReluBroadcastSlope) {
  OpBatch b(16);
  b.op("PRelu", {b.feed(rand_f32({2, 3, 4, 4})), b.constant(rand_f32({3, 1, 1}, 0.0f, 0.5f))});
  b.op("PRelu", {b.feed(rand_f32({2, 3, 4, 4})), b.constant(rand_f32({4}, -0.5f, 0.5f))});
  b.op("PRelu", {b.feed(rand_f32({2, 5})), b.constant(rand_f32({1}, 0.0f, 0.5f))});
  b.op("PRelu", {b.feed(rand_f32({2, 5})), b.feed(rand_f32({2, 5}))});
  b.check();
}

TEST(OpsElementwise, ClipOpset11And13) {
  for (int64_t opset : {11, 13}) {
    OpBatch b(opset);
    auto lo = [&] { return b.constant(Tensor::scalar<float>(-0.5f)); };
    auto hi = [&] { return b.constant(Tensor::scalar<float>(1.25f)); };
    b.op("Clip", {b.feed(rand_f32({3, 4}))});                // no bounds: identity
    b.op("Clip", {b.feed(rand_f32({3, 4})), lo()});          // min only
    b.op("Clip", {b.feed(rand_f32({3, 4})), "", hi()});      // max only, min omitted
    b.op("Clip", {b.feed(rand_f32({3, 4})), lo(), hi()});    // both
    b.op("Clip", {b.feed(rand_f32({3, 4})), b.feed(Tensor::scalar<float>(0.2f)), b.feed(Tensor::scalar<float>(0.9f))});
    if (opset >= 13) {  // integer Clip (opset 12+)
      b.op("Clip", {b.feed(rand_int<int32_t>({10}, -20, 20)), b.constant(Tensor::scalar<int32_t>(-5)),
                    b.constant(Tensor::scalar<int32_t>(7))});
      b.op("Clip", {b.feed(rand_int<int64_t>({10}, -20, 20)), "", b.constant(Tensor::scalar<int64_t>(3))});
    }
    SCOPED_TRACE("opset " + std::to_string(opset));
    b.check();
  }
}

TEST(OpsElementwise, ClipOpset10Attributes) {
  OpBatch b(10);
  b.op("Clip", {b.feed(rand_f32({3, 4}))}, {A::make_float("min", -1.0f), A::make_float("max", 0.5f)});
  b.op("Clip", {b.feed(rand_f32({3, 4}))}, {A::make_float("max", 0.0f)});
  b.op("Clip", {b.feed(rand_f32({3, 4}))});
  b.check();
}

TEST(OpsElementwise, VariadicBroadcast) {
  OpBatch b(13);
  for (const char* op : {"Min", "Max", "Sum", "Mean"}) {
    b.op(op, {b.feed(rand_f32({2, 3, 4})), b.feed(rand_f32({4})), b.feed(rand_f32({3, 1}))});
    b.op(op, {b.feed(rand_f32({3, 2}))});  // one input
    b.op(op, {b.feed(rand_f32({1, 5})), b.feed(rand_f32({4, 1}))});
  }
  b.op("Max", {b.feed(rand_int<int32_t>({6}, -9, 9)), b.feed(rand_int<int32_t>({2, 1}, -9, 9))});
  b.op("Min", {b.feed(rand_int<int64_t>({6}, -9, 9)), b.feed(rand_int<int64_t>({6}, -9, 9))});
  b.check();
}

TEST(OpsElementwise, SoftmaxAxisSemantics) {
  // Before 13 the input is coerced to 2-D at axis; from 13 only that axis is normalised.
  for (int64_t opset : {11, 13}) {
    OpBatch b(opset);
    b.op("Softmax", {b.feed(rand_f32({2, 3, 4}, -5, 5))});
    b.op("Softmax", {b.feed(rand_f32({2, 3, 4}, -5, 5))}, {A::make_int("axis", 0)});
    b.op("Softmax", {b.feed(rand_f32({2, 3, 4}, -5, 5))}, {A::make_int("axis", 1)});
    b.op("Softmax", {b.feed(rand_f32({2, 3, 4}, -5, 5))}, {A::make_int("axis", -1)});
    b.op("Softmax", {b.feed(rand_f32({2, 3, 4, 5}, -50, 50))}, {A::make_int("axis", -2)});
    b.op("Softmax", {b.feed(rand_f32({7}, -5, 5))}, {A::make_int("axis", -1)});
    SCOPED_TRACE("opset " + std::to_string(opset));
    b.check();
  }
}

TEST(OpsElementwise, BitShift) {
  OpBatch b(13);
  for (const char* dir : {"LEFT", "RIGHT"}) {
    b.op("BitShift", {b.feed(rand_int<uint8_t>({3, 4}, 0, 255)), b.feed(rand_int<uint8_t>({4}, 0, 7))},
         {A::make_string("direction", dir)});
    // uint32/uint64 do not cross the npy bridge: cast in and out inside the graph.
    for (DType t : {DType::U32, DType::U64}) {
      std::string x = b.hidden("Cast", {b.feed(rand_int<int64_t>({5}, 0, 1 << 20))}, {A::make_int("to", static_cast<int64_t>(t))});
      std::string s = b.hidden("Cast", {b.feed(rand_int<int64_t>({5}, 0, 11))}, {A::make_int("to", static_cast<int64_t>(t))});
      std::string y = b.hidden("BitShift", {x, s}, {A::make_string("direction", dir)});
      b.op("Cast", {y}, {A::make_int("to", static_cast<int64_t>(DType::I64))});
    }
  }
  b.check();
}

TEST(OpsElementwise, DropoutIsIdentityAtEveryOpset) {
  OpBatch b13(13);
  b13.node("Dropout", {b13.feed(rand_f32({3, 4}))}, {}, 2);  // output and mask
  b13.node("Dropout", {b13.feed(rand_f32({3, 4})), b13.constant(Tensor::scalar<float>(0.3f))}, {A::make_int("seed", 1)}, 1);
  b13.check();
  // Before opset 12 ONNX Runtime returns a cleared mask (bool at 10-11, the data's type before).
  for (int64_t opset : {9, 11}) {
    OpBatch b(opset);
    b.node("Dropout", {b.feed(rand_f32({3, 4}))}, {A::make_float("ratio", 0.2f)}, 2);
    b.check();
  }
}

TEST(OpsElementwise, GeluMatchesErfAndTanhFormulas) {
  // ONNX Runtime only runs Gelu at opset 20, beyond tinyq's range: compare with the formula
  // written in ops ONNX Runtime does run.
  for (const std::string approx : {"none", "tanh"}) {
    Tensor x = rand_f32({4, 9}, -6, 6);
    ModelBuilder ours(17);
    ours.input("x", DType::F32, x.shape()).output("y");
    ours.node("Gelu", {"x"}, {"y"}, {A::make_string("approximate", approx)});
    NamedTensors got = Session(ours.model).run(NamedTensors{{"x", x}});

    OpBatch ref(17);
    std::string in = ref.feed(x);
    std::string inner;
    if (approx == "none") {  // erf(x / sqrt 2)
      inner = ref.hidden("Erf", {ref.hidden("Mul", {in, ref.constant(Tensor::scalar<float>(0.70710678f))})});
    } else {  // tanh(sqrt(2/pi) (x + 0.044715 x^3))
      std::string cube = ref.hidden("Mul", {in, ref.hidden("Mul", {in, in})});
      std::string sum = ref.hidden("Add", {in, ref.hidden("Mul", {cube, ref.constant(Tensor::scalar<float>(0.044715f))})});
      inner = ref.hidden("Tanh", {ref.hidden("Mul", {sum, ref.constant(Tensor::scalar<float>(0.7978845608f))})});
    }
    std::string one_plus = ref.hidden("Add", {inner, ref.constant(Tensor::scalar<float>(1.0f))});
    ref.op("Mul", {ref.hidden("Mul", {in, one_plus}), ref.constant(Tensor::scalar<float>(0.5f))});
    const std::string path = temp_dir() + "/gelu_ref.onnx";
    save_model(ref.model(), path);
    TINYQ_REQUIRE_ORT();
    NamedTensors want = ort_run(path, {{ref.model().graph.inputs[0].name, x}});
    ASSERT_EQ(want.size(), 1u);
    EXPECT_LE(max_abs_diff(got[0].second, want[0].second), 1e-5 * std::max(1.0, max_abs(want[0].second))) << approx;
  }
}

TEST(OpsElementwise, IntegerDivisionByZeroIsAnError) {
  ModelBuilder mb(13);
  mb.input("a", DType::I32, {3}).input("b", DType::I32, {3}).output("y", DType::I32);
  mb.node("Div", {"a", "b"}, {"y"});
  Session s(mb.model);
  NamedTensors feeds{{"a", Tensor::from_vector<int32_t>({3}, {1, 2, 3})},
                     {"b", Tensor::from_vector<int32_t>({3}, {1, 0, 3})}};
  try {
    s.run(feeds);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(e.message().find("Div_0"), std::string::npos) << e.message();
    EXPECT_NE(e.message().find("division by zero"), std::string::npos) << e.message();
  }
  // INT_MIN / -1 wraps instead of trapping.
  feeds[0].second = Tensor::from_vector<int32_t>({3}, {std::numeric_limits<int32_t>::min(), 7, -7});
  feeds[1].second = Tensor::from_vector<int32_t>({3}, {-1, -2, 2});
  Tensor y = s.run(feeds)[0].second;
  EXPECT_EQ(y.to_vector<int32_t>(), (std::vector<int32_t>{std::numeric_limits<int32_t>::min(), -3, -3}));
}

TEST(OpsElementwise, BuildErrorsNameTheNode) {
  {
    ModelBuilder mb(13);
    mb.input("x", DType::F32, {2}).output("y");
    mb.node("Relu", {"x"}, {"y"}, {A::make_float("alpha", 1.0f)});
    expect_build_error(mb.model, "Relu_0", "unknown attribute 'alpha'");
  }
  {
    ModelBuilder mb(13);
    mb.input("x", DType::U8, {2}).output("y", DType::U8);
    mb.node("BitShift", {"x", "x"}, {"y"}, {A::make_string("direction", "UP")});
    expect_build_error(mb.model, "BitShift_0", "direction");
  }
  {
    ModelBuilder mb(17);
    mb.input("x", DType::F32, {2}).output("y");
    mb.node("Gelu", {"x"}, {"y"}, {A::make_string("approximate", "fast")});
    expect_build_error(mb.model, "Gelu_0", "approximate");
  }
  {
    ModelBuilder mb(13);
    mb.input("x", DType::F32, {2}).output("y");
    mb.node("Clip", {"x"}, {"y"}, {A::make_float("min", 0.0f)});  // an attribute only before opset 11
    expect_build_error(mb.model, "Clip_0", "unknown attribute 'min'");
  }
  {
    ModelBuilder mb(13);
    mb.input("x", DType::F32, {2}).output("y");
    mb.node("Add", {"x"}, {"y"});
    expect_build_error(mb.model, "Add_0", "inputs");
  }
}

}  // namespace
}  // namespace tinyq::test
