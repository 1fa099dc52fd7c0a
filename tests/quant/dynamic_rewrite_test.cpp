// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// The dynamic rewriter on small models built here: the structure each per-op quantiser emits,
// the nodes it leaves fp32 and why, what it refuses, and — for a table of MatMul / Gemm / Conv
// cases built into one model so ONNX Runtime starts once per mode — that ONNX Runtime and
// tinyq's Session agree on the int8 model and both stay close to the fp32 answer.

#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "model_builder.h"
#include "quant_test_util.h"
#include "tinyq/error.h"
#include "tinyq/model_io.h"
#include "tinyq/quantize.h"

namespace tinyq {
namespace {

using test::ModelBuilder;
using test::op_count;

// Deterministic values in [lo, hi) (a fixed LCG: the test must not depend on a library's RNG).
std::vector<float> ramp(size_t n, float lo, float hi, uint32_t seed) {
  std::vector<float> v(n);
  uint32_t s = seed * 2654435761u + 1;
  for (auto& x : v) {
    s = s * 1664525u + 1013904223u;
    x = lo + (hi - lo) * static_cast<float>(s >> 8) / 16777216.0f;
  }
  return v;
}
Tensor random_tensor(const Shape& shape, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  return Tensor::from_vector<float>(shape, ramp(static_cast<size_t>(shape_numel(shape)), lo, hi, seed));
}

Attribute ints(const char* name, std::vector<int64_t> v) { return Attribute::make_ints(name, std::move(v)); }

const Initializer* find_init(const Model& m, const std::string& name) { return m.graph.find_initializer(name); }

// ---------------------------------------------------------------------------------------------
// Structure of each quantiser's output.

TEST(DynamicRewrite, MatMulChain) {
  ModelBuilder b;
  b.input("x", DType::F32, {2, 4}).initializer("w", random_tensor({4, 3}, 1));
  b.node("MatMul", {"x", "w"}, {"y"}).output("y");
  DynamicQuantResult r = quantize_dynamic(b.model);
  const Model& m = r.model;
  EXPECT_EQ(op_count(m, "DynamicQuantizeLinear"), 1);
  EXPECT_EQ(op_count(m, "MatMulInteger"), 1);
  EXPECT_EQ(op_count(m, "Cast"), 1);
  EXPECT_EQ(op_count(m, "Mul"), 2);
  EXPECT_EQ(op_count(m, "MatMul"), 0);
  EXPECT_EQ(m.graph.nodes.size(), 5u);
  ASSERT_EQ(r.rewritten.size(), 1u);
  EXPECT_EQ(r.rewritten[0].op_type, "MatMul");
  EXPECT_TRUE(r.left_fp32.empty());
  // The fp32 weight is gone; int8 weight, float scale, int8 zero point remain.
  EXPECT_EQ(find_init(m, "w"), nullptr);
  const Initializer* wq = find_init(m, "w_q");
  ASSERT_NE(wq, nullptr);
  EXPECT_EQ(wq->tensor.dtype(), DType::I8);
  EXPECT_EQ(wq->tensor.shape(), (Shape{4, 3}));
  ASSERT_NE(find_init(m, "w_s"), nullptr);
  EXPECT_EQ(find_init(m, "w_s")->tensor.shape(), Shape{});
  // The graph output keeps its name and is what the last node writes.
  EXPECT_EQ(m.graph.nodes.back().outputs[0], "y");
  EXPECT_EQ(m.producer_name, "tinyq");
}

TEST(DynamicRewrite, MatMulPerChannelScalesPerColumn) {
  ModelBuilder b;
  b.input("x", DType::F32, {2, 4}).initializer("w", random_tensor({4, 3}, 2));
  b.node("MatMul", {"x", "w"}, {"y"}).output("y");
  DynamicQuantOptions o;
  o.per_channel = true;
  DynamicQuantResult r = quantize_dynamic(b.model, o);
  const Initializer* s = find_init(r.model, "w_s");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->tensor.shape(), (Shape{3}));
  // Symmetric: the zero point stays one scalar 0 even per channel.
  const Initializer* zp = find_init(r.model, "w_zp");
  ASSERT_NE(zp, nullptr);
  EXPECT_EQ(zp->tensor.shape(), Shape{});
  EXPECT_EQ(zp->tensor.dtype(), DType::I8);
  EXPECT_EQ(zp->tensor.data<int8_t>()[0], 0);
}

TEST(DynamicRewrite, GemmFoldsTransBAlphaAndBeta) {
  ModelBuilder b;
  Tensor w = random_tensor({3, 4}, 3);  // [N, K] with transB
  Tensor c = random_tensor({3}, 4);
  b.input("x", DType::F32, {2, 4}).initializer("w", w).initializer("c", c);
  b.node("Gemm", {"x", "w", "c"}, {"y"},
         {Attribute::make_float("alpha", 0.5f), Attribute::make_float("beta", 2.0f), Attribute::make_int("transB", 1)})
      .output("y");
  DynamicQuantResult r = quantize_dynamic(b.model);
  const Model& m = r.model;
  EXPECT_EQ(op_count(m, "Gemm"), 0);
  EXPECT_EQ(op_count(m, "MatMulInteger"), 1);
  EXPECT_EQ(op_count(m, "Add"), 1);
  // Stored as [K, N] = alpha * w^T: dequantised values within half a step of it.
  const Tensor& q = find_init(m, "w_q")->tensor;
  const float scale = find_init(m, "w_s")->tensor.data<float>()[0];
  ASSERT_EQ(q.shape(), (Shape{4, 3}));
  for (int k = 0; k < 4; ++k)
    for (int n = 0; n < 3; ++n)
      EXPECT_NEAR(q.data<int8_t>()[k * 3 + n] * scale, 0.5f * w.data<float>()[n * 4 + k], scale * 0.5001f);
  // beta folded into a new bias initializer.
  const Node& add = m.graph.nodes.back();
  ASSERT_EQ(add.op_type, "Add");
  const Initializer* bias = find_init(m, add.inputs[1]);
  ASSERT_NE(bias, nullptr);
  for (int n = 0; n < 3; ++n) EXPECT_EQ(bias->tensor.data<float>()[n], 2.0f * c.data<float>()[n]);
}

TEST(DynamicRewrite, GemmTransAAddsTranspose) {
  ModelBuilder b;
  b.input("x", DType::F32, {4, 2}).initializer("w", random_tensor({4, 3}, 5));
  b.node("Gemm", {"x", "w"}, {"y"}, {Attribute::make_int("transA", 1)}).output("y");
  DynamicQuantResult r = quantize_dynamic(b.model);
  EXPECT_EQ(op_count(r.model, "Transpose"), 1);
  EXPECT_EQ(op_count(r.model, "Add"), 0);  // no C
  EXPECT_EQ(r.model.graph.nodes[0].op_type, "Transpose");
  EXPECT_EQ(r.model.graph.nodes[1].op_type, "DynamicQuantizeLinear");
  EXPECT_EQ(r.model.graph.nodes[1].inputs[0], r.model.graph.nodes[0].outputs[0]);
}

TEST(DynamicRewrite, ConvBiasStoredAsChannelShape) {
  ModelBuilder b;
  b.input("x", DType::F32, {1, 2, 5, 5})
      .initializer("w", random_tensor({4, 2, 3, 3}, 6))
      .initializer("bias", random_tensor({4}, 7));
  b.node("Conv", {"x", "w", "bias"}, {"y"}, {ints("pads", {1, 1, 1, 1}), ints("strides", {2, 2})}).output("y");
  for (bool per_channel : {false, true}) {
    DynamicQuantOptions o;
    o.per_channel = per_channel;
    DynamicQuantResult r = quantize_dynamic(b.model, o);
    const Model& m = r.model;
    EXPECT_EQ(op_count(m, "ConvInteger"), 1);
    EXPECT_EQ(op_count(m, "Conv"), 0);
    EXPECT_EQ(op_count(m, "Reshape"), 0);  // the bias is stored already shaped
    const Initializer* bias = find_init(m, "bias");
    ASSERT_NE(bias, nullptr);
    EXPECT_EQ(bias->tensor.shape(), (Shape{1, 4, 1, 1}));
    EXPECT_EQ(find_init(m, "w_s")->tensor.shape(), per_channel ? (Shape{1, 4, 1, 1}) : Shape{});
    const Node* conv = nullptr;
    for (const auto& n : m.graph.nodes)
      if (n.op_type == "ConvInteger") conv = &n;
    ASSERT_NE(conv, nullptr);
    EXPECT_EQ(conv->attr_ints("pads"), (std::vector<int64_t>{1, 1, 1, 1}));
    EXPECT_EQ(conv->attr_ints("strides"), (std::vector<int64_t>{2, 2}));
  }
  // The caller's model is untouched: still the [4] bias.
  EXPECT_EQ(b.model.graph.find_initializer("bias")->tensor.shape(), (Shape{4}));
}

TEST(DynamicRewrite, ConvComputedBiasIsReshaped) {
  ModelBuilder b;
  b.input("x", DType::F32, {1, 2, 5, 5}).input("bias", DType::F32, {4}).initializer("w", random_tensor({4, 2, 3, 3}, 17));
  b.node("Conv", {"x", "w", "bias"}, {"y"}).output("y");
  DynamicQuantResult r = quantize_dynamic(b.model);
  ASSERT_EQ(op_count(r.model, "Reshape"), 1);
  const Node* reshape = nullptr;
  for (const auto& n : r.model.graph.nodes)
    if (n.op_type == "Reshape") reshape = &n;
  ASSERT_NE(reshape, nullptr);
  EXPECT_EQ(reshape->inputs[0], "bias");
  const Initializer* shape = find_init(r.model, reshape->inputs[1]);
  ASSERT_NE(shape, nullptr);
  EXPECT_EQ(shape->tensor.to_vector<int64_t>(), (std::vector<int64_t>{1, -1, 1, 1}));
}

TEST(DynamicRewrite, SharedActivationQuantisedOnce) {
  ModelBuilder b;
  b.input("x", DType::F32, {2, 4}).initializer("w1", random_tensor({4, 3}, 8)).initializer("w2", random_tensor({4, 5}, 9));
  b.node("MatMul", {"x", "w1"}, {"y1"}).node("MatMul", {"x", "w2"}, {"y2"}).output("y1").output("y2");
  DynamicQuantResult r = quantize_dynamic(b.model);
  EXPECT_EQ(op_count(r.model, "DynamicQuantizeLinear"), 1);
  EXPECT_EQ(op_count(r.model, "MatMulInteger"), 2);
}

TEST(DynamicRewrite, SharedWeightStoredOnce) {
  ModelBuilder b;
  b.input("x", DType::F32, {2, 4}).input("z", DType::F32, {2, 4}).initializer("w", random_tensor({4, 3}, 10));
  b.node("MatMul", {"x", "w"}, {"y1"}).node("MatMul", {"z", "w"}, {"y2"}).output("y1").output("y2");
  DynamicQuantResult r = quantize_dynamic(b.model);
  EXPECT_EQ(op_count(r.model, "MatMulInteger"), 2);
  int int8_weights = 0;
  for (const auto& i : r.model.graph.initializers) int8_weights += i.tensor.dtype() == DType::I8 && i.tensor.rank() > 0;
  EXPECT_EQ(int8_weights, 1);
}

TEST(DynamicRewrite, LeavesFp32WithReasons) {
  ModelBuilder b;
  b.input("x", DType::F32, {2, 4}).input("v", DType::F32, {4, 3});
  b.initializer("nan_w", Tensor::from_vector<float>({4, 1}, {1.0f, NAN, 0.0f, 2.0f}));
  b.node("MatMul", {"x", "v"}, {"y1"})       // B is an activation
      .node("MatMul", {"x", "nan_w"}, {"y2"})  // B holds NaN
      .node("Relu", {"x"}, {"y3"})             // not a quantised op type
      .output("y1").output("y2").output("y3");
  // An initializer that is also a graph input can be overridden by a feed: not a constant.
  b.initializer("over", random_tensor({4, 2}, 11)).input("over", DType::F32, {4, 2});
  b.node("MatMul", {"x", "over"}, {"y4"}).output("y4");
  DynamicQuantResult r = quantize_dynamic(b.model);
  EXPECT_TRUE(r.rewritten.empty());
  ASSERT_EQ(r.left_fp32.size(), 3u);
  EXPECT_EQ(r.left_fp32[0].reason, "input B is not a constant initializer");
  EXPECT_EQ(r.left_fp32[1].reason, "weight holds NaN or infinity");
  EXPECT_EQ(r.left_fp32[2].reason, "input B is not a constant initializer");
  EXPECT_EQ(op_count(r.model, "MatMul"), 3);
  EXPECT_EQ(op_count(r.model, "DynamicQuantizeLinear"), 0);
}

TEST(DynamicRewrite, OpTypesSelectWhatIsRewritten) {
  ModelBuilder b;
  b.input("x", DType::F32, {1, 1, 4, 4}).initializer("w", random_tensor({2, 1, 1, 1}, 12));
  b.initializer("g", random_tensor({2, 16}, 13)).initializer("shape", Tensor::from_vector<int64_t>({2}, {1, 32}));
  b.node("Conv", {"x", "w"}, {"c"}).node("Reshape", {"c", "shape"}, {"f"}).node("Gemm", {"f", "g"}, {"y"},
                                                                                 {Attribute::make_int("transB", 1)});
  b.output("y");
  DynamicQuantOptions o;
  o.op_types = {"Conv"};
  DynamicQuantResult r = quantize_dynamic(b.model, o);
  EXPECT_EQ(op_count(r.model, "ConvInteger"), 1);
  EXPECT_EQ(op_count(r.model, "Gemm"), 1);
  EXPECT_EQ(op_count(r.model, "MatMulInteger"), 0);
  EXPECT_TRUE(r.left_fp32.empty());  // Gemm was not asked for, so it is not "left"
  o.op_types = {"Relu"};
  EXPECT_THROW(quantize_dynamic(b.model, o), Error);
  o.op_types = {};
  EXPECT_THROW(quantize_dynamic(b.model, o), Error);
}

TEST(DynamicRewrite, PreflightDropsValueInfoNamingInitializers) {
  ModelBuilder b;
  b.input("x", DType::F32, {2, 4}).initializer("w", random_tensor({4, 3}, 14));
  b.node("MatMul", {"x", "w"}, {"y"}).output("y");
  ValueInfo vi;
  vi.name = "w";
  vi.dtype = DType::F32;
  b.model.graph.value_info.push_back(vi);
  vi.name = "y";
  b.model.graph.value_info.push_back(vi);
  DynamicQuantResult r = quantize_dynamic(b.model);
  EXPECT_EQ(r.value_info_removed, 1u);
  ASSERT_EQ(r.model.graph.value_info.size(), 1u);
  EXPECT_EQ(r.model.graph.value_info[0].name, "y");
}

TEST(DynamicRewrite, RefusesQuantisedAndOldModels) {
  ModelBuilder q;
  q.input("x", DType::F32, {2, 4}).node("DynamicQuantizeLinear", {"x"}, {"a", "b", "c"}).output("a", DType::U8);
  try {
    quantize_dynamic(q.model);
    FAIL() << "expected a refusal";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("already quantised"), std::string::npos) << e.what();
  }
  ModelBuilder old(10);
  old.input("x", DType::F32, {2, 4}).initializer("w", random_tensor({4, 3}, 15));
  old.node("MatMul", {"x", "w"}, {"y"}).output("y");
  EXPECT_THROW(quantize_dynamic(old.model), Error);
}

TEST(DynamicRewrite, NamesDoNotCollide) {
  // Values already called like the quantiser's picks: it must choose others.
  ModelBuilder b;
  b.input("x", DType::F32, {2, 4}).initializer("w", random_tensor({4, 3}, 16));
  b.node("Relu", {"x"}, {"x_q"}).node("Relu", {"x"}, {"y_i"}).node("MatMul", {"x", "w"}, {"y"});
  b.output("y").output("x_q").output("y_i");
  DynamicQuantResult r = quantize_dynamic(b.model);
  std::map<std::string, int> producers;
  for (const auto& n : r.model.graph.nodes)
    for (const auto& o : n.outputs) ++producers[o];
  for (const auto& [name, count] : producers) EXPECT_EQ(count, 1) << name;
}

// ---------------------------------------------------------------------------------------------
// Numerics: a table of cases, each a branch of one model (own input, own output), so ONNX
// Runtime runs once per mode for all of them.

struct NumericCase {
  const char* name;
  Shape input;
  std::function<void(ModelBuilder&, const std::string& x, const std::string& y, uint32_t seed)> build;
};

const std::vector<NumericCase>& numeric_cases() {
  static const std::vector<NumericCase> cases = {
      {"matmul_2d", {3, 8}, [](ModelBuilder& b, const std::string& x, const std::string& y, uint32_t s) {
         b.initializer(y + "_w", random_tensor({8, 5}, s)).node("MatMul", {x, y + "_w"}, {y});
       }},
      {"matmul_3d", {2, 3, 8}, [](ModelBuilder& b, const std::string& x, const std::string& y, uint32_t s) {
         b.initializer(y + "_w", random_tensor({8, 4}, s)).node("MatMul", {x, y + "_w"}, {y});
       }},
      {"gemm_transb_alpha_beta", {3, 6}, [](ModelBuilder& b, const std::string& x, const std::string& y, uint32_t s) {
         b.initializer(y + "_w", random_tensor({5, 6}, s)).initializer(y + "_c", random_tensor({5}, s + 1));
         b.node("Gemm", {x, y + "_w", y + "_c"}, {y},
                {Attribute::make_float("alpha", 0.75f), Attribute::make_float("beta", 1.5f), Attribute::make_int("transB", 1)});
       }},
      {"gemm_transa_no_c", {6, 3}, [](ModelBuilder& b, const std::string& x, const std::string& y, uint32_t s) {
         b.initializer(y + "_w", random_tensor({6, 4}, s)).node("Gemm", {x, y + "_w"}, {y}, {Attribute::make_int("transA", 1)});
       }},
      {"gemm_c_computed", {3, 6}, [](ModelBuilder& b, const std::string& x, const std::string& y, uint32_t s) {
         // C is computed at run time (here by another MatMul), so beta becomes a Mul node.
         b.initializer(y + "_w", random_tensor({6, 3}, s)).initializer(y + "_k", random_tensor({6, 3}, s + 1));
         b.node("MatMul", {x, y + "_k"}, {y + "_p"});
         b.node("Relu", {x}, {y + "_r"});
         b.node("Gemm", {y + "_r", y + "_w", y + "_p"}, {y}, {Attribute::make_float("beta", 0.5f)});
       }},
      {"conv_bias_group_stride", {1, 4, 9, 9}, [](ModelBuilder& b, const std::string& x, const std::string& y, uint32_t s) {
         b.initializer(y + "_w", random_tensor({6, 2, 3, 3}, s)).initializer(y + "_b", random_tensor({6}, s + 1));
         b.node("Conv", {x, y + "_w", y + "_b"}, {y},
                {Attribute::make_int("group", 2), ints("pads", {1, 1, 1, 1}), ints("strides", {2, 2})});
       }},
      {"conv_depthwise_then_pointwise", {1, 3, 7, 7}, [](ModelBuilder& b, const std::string& x, const std::string& y, uint32_t s) {
         b.initializer(y + "_dw", random_tensor({3, 1, 3, 3}, s)).initializer(y + "_db", random_tensor({3}, s + 1));
         b.initializer(y + "_pw", random_tensor({5, 3, 1, 1}, s + 2));
         b.node("Conv", {x, y + "_dw", y + "_db"}, {y + "_d"}, {Attribute::make_int("group", 3), ints("pads", {1, 1, 1, 1})});
         b.node("Relu", {y + "_d"}, {y + "_r"});
         b.node("Conv", {y + "_r", y + "_pw"}, {y});  // no bias
       }},
      {"conv_bias_computed", {1, 2, 6, 6}, [](ModelBuilder& b, const std::string& x, const std::string& y, uint32_t s) {
         b.initializer(y + "_w", random_tensor({3, 2, 3, 3}, s)).initializer(y + "_b0", random_tensor({3}, s + 1));
         b.node("Relu", {y + "_b0"}, {y + "_b"});
         b.node("Conv", {x, y + "_w", y + "_b"}, {y});
       }},
      {"conv_1d", {1, 2, 10}, [](ModelBuilder& b, const std::string& x, const std::string& y, uint32_t s) {
         b.initializer(y + "_w", random_tensor({3, 2, 3}, s)).initializer(y + "_b", random_tensor({3}, s + 1));
         b.node("Conv", {x, y + "_w", y + "_b"}, {y});
       }},
  };
  return cases;
}

struct NumericModel {
  Model model;
  NamedTensors feeds;
};

NumericModel numeric_model() {
  ModelBuilder b(13);
  NumericModel nm;
  uint32_t seed = 100;
  for (const auto& c : numeric_cases()) {
    std::string x = std::string(c.name) + "_x", y = std::string(c.name) + "_y";
    b.input(x, DType::F32, c.input);
    c.build(b, x, y, seed);
    b.output(y);
    // Inputs in [-0.5, 1.5): both signs, so the activation zero point is not 0.
    nm.feeds.emplace_back(x, random_tensor(c.input, seed + 50, -0.5f, 1.5f));
    seed += 10;
  }
  nm.model = b.model;
  return nm;
}

const Tensor& output_named(const NamedTensors& outs, const std::string& name) {
  for (const auto& [n, t] : outs)
    if (n == name) return t;
  static const Tensor none;
  ADD_FAILURE() << "no output " << name;
  return none;
}

TEST(DynamicRewriteNumerics, OrtAndSessionAgreeAndStayNearFp32) {
  TINYQ_REQUIRE_ORT();
  NumericModel nm = numeric_model();
  const std::string dir = test::temp_dir();
  const std::string fp32_path = dir + "/cases.onnx";
  save_model(nm.model, fp32_path);
  NamedTensors fp32 = test::ort_run(fp32_path, nm.feeds);

  for (bool per_channel : {false, true}) {
    SCOPED_TRACE(per_channel ? "per-channel" : "per-tensor");
    DynamicQuantOptions o;
    o.per_channel = per_channel;
    DynamicQuantResult r = quantize_dynamic(nm.model, o);
    EXPECT_TRUE(r.left_fp32.empty());
    EXPECT_EQ(op_count(r.model, "MatMul") + op_count(r.model, "Gemm") + op_count(r.model, "Conv"), 0);
    const std::string path = dir + (per_channel ? "/cases.pc.int8.onnx" : "/cases.int8.onnx");
    save_model(r.model, path);
    NamedTensors ort = test::ort_run(path, nm.feeds);
    NamedTensors ours;
    try {
      ours = Session::from_file(path).run(nm.feeds);
    } catch (const Error& e) {
      ADD_FAILURE() << "tinyq's runtime refused the int8 model: " << e.message();
    }
    for (const auto& c : numeric_cases()) {
      SCOPED_TRACE(c.name);
      const std::string y = std::string(c.name) + "_y";
      const Tensor& ref = output_named(fp32, y);
      const Tensor& q = output_named(ort, y);
      // Quantisation error: a few percent of the output's magnitude (a wrong layout or scale
      // would be off by the magnitude itself).
      EXPECT_LE(test::max_abs_diff(q, ref), 0.04 * std::max(1.0, test::max_abs(ref)));
      if (ours.empty()) continue;
      const Tensor& mine = output_named(ours, y);
      std::vector<double> a = tensor_to_doubles(mine), bq = tensor_to_doubles(q);
      double worst = 0;
      EXPECT_EQ(test::count_disagreements(a, bq, &worst), 0u) << "worst |diff| / tol = " << worst;
    }
  }
}

}  // namespace
}  // namespace tinyq
