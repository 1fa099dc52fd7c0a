// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// The QDQ writer on small built models: which tensors get Q/DQ, folding of Relu/Clip, shared
// scales, weight and bias layouts (per tensor, per channel, Gemm's beta), graph-output naming,
// --exclude-nodes and uint8 activations. Every quantised model also runs in ONNX Runtime and in
// tinyq's runtime with the same answer (within 2% of the output range) and stays close to fp32.

#include <cmath>
#include <map>
#include <random>

#include "graph/model_summary.h"
#include "model_builder.h"
#include "static_test_util.h"
#include "tinyq/calibrate.h"
#include "tinyq/error.h"
#include "tinyq/model_io.h"
#include "tinyq/session.h"

namespace tinyq::test {
namespace {

Tensor random_tensor(const Shape& shape, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937_64 rng(seed);
  Tensor t(DType::F32, shape);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i)
    p[i] = lo + (hi - lo) * static_cast<float>(static_cast<double>(rng() >> 11) / 9007199254740992.0);
  return t;
}

int op_count(const Model& m, const std::string& op) {
  auto h = graph::summarize(m).op_histogram;
  auto it = h.find(op);
  return it == h.end() ? 0 : it->second;
}

const Node* producer(const Model& m, const std::string& value) {
  for (const auto& n : m.graph.nodes)
    for (const auto& o : n.outputs)
      if (o == value) return &n;
  return nullptr;
}

const Node* node_named(const Model& m, const std::string& name) {
  for (const auto& n : m.graph.nodes)
    if (n.name == name) return &n;
  return nullptr;
}

const Tensor& init(const Model& m, const std::string& name) {
  const Initializer* i = m.graph.find_initializer(name);
  if (!i) throw std::runtime_error("no initializer " + name);
  return i->tensor;
}

// Calibrates `m` on `n` random samples of its (single) input, quantises it, and checks that
// ONNX Runtime and tinyq's runtime agree on the result and that it stays near fp32.
StaticQuantResult quantise_and_run(const Model& m, const StaticQuantOptions& options = {},
                                   CalibrationMethod method = CalibrationMethod::MinMax, float lo = -1.0f,
                                   float hi = 1.0f) {
  const ValueInfo* in = m.graph.real_inputs().at(0);
  Shape stack = sample_shape(*in);
  const Shape one = stack;
  stack[0] = 16;
  NamedTensors arrays{{in->name, random_tensor(stack, 7, lo, hi)}};
  NpzCalibrationSource source(arrays, m, false, "calibration");
  CalibrationOptions copts;
  copts.method = method;
  const RangeTable table = calibrate(m, source, static_quant_calibration_tensors(m, options), copts);
  StaticQuantResult r = quantize_static(m, table, options);

  const NamedTensors feeds{{in->name, random_tensor(one, 11, lo, hi)}};
  Session fp32(m), ours(r.model);
  const std::vector<double> ref = values(fp32.run(feeds).at(0).second);
  const std::vector<double> mine = values(ours.run(feeds).at(0).second);
  const double tol = 0.02 * std::max(value_range(ref), 1e-3);
  EXPECT_LE(max_diff(mine, ref), 5 * tol) << "int8 strays far from fp32";
  if (ort_available()) {
    const std::string path = temp_dir() + "/q.onnx";
    save_model(r.model, path);
    NamedTensors theirs;
    try {
      theirs = ort_run(path, feeds);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "ONNX Runtime refused the quantised model: " << e.what();
      return r;
    }
    EXPECT_LE(max_diff(mine, values(theirs.at(0).second)), tol) << "tinyq's runtime vs ONNX Runtime";
  }
  return r;
}

const std::vector<Attribute> kPad1{Attribute::make_ints("pads", {1, 1, 1, 1})};

// x -> Conv -> Relu -> Conv -> y: the Relu folds into the first Conv's output quantisation,
// weights are symmetric int8, biases int32 at input scale x weight scale, and the graph output
// keeps its name on the last DequantizeLinear.
TEST(StaticPtqStructure, ConvReluConvFoldsReluAndNamesTheOutput) {
  ModelBuilder b;
  b.input("x", DType::F32, {1, 2, 6, 6});
  b.initializer("w1", random_tensor({4, 2, 3, 3}, 1)).initializer("b1", random_tensor({4}, 2));
  b.initializer("w2", random_tensor({3, 4, 3, 3}, 3)).initializer("b2", random_tensor({3}, 4));
  b.node("Conv", {"x", "w1", "b1"}, {"c1"}, kPad1).node("Relu", {"c1"}, {"r1"});
  b.node("Conv", {"r1", "w2", "b2"}, {"y"}, kPad1).output("y");
  const StaticQuantResult r = quantise_and_run(b.model);
  const Model& q = r.model;

  EXPECT_EQ(op_count(q, "Relu"), 0);
  ASSERT_EQ(r.folded.size(), 1u);
  EXPECT_EQ(r.quantised.size(), 2u);
  EXPECT_EQ(op_count(q, "QuantizeLinear"), 3);    // x, r1, y
  EXPECT_EQ(op_count(q, "DequantizeLinear"), 7);  // + 2 weights + 2 biases
  EXPECT_EQ(r.weights_quantised, 2u);
  EXPECT_EQ(r.biases_quantised, 2u);
  // The first Conv writes the Relu's output, quantised from 0: zero point -128.
  ASSERT_NE(producer(q, "r1"), nullptr);
  EXPECT_EQ(producer(q, "r1")->op_type, "Conv");
  EXPECT_EQ(init(q, "r1_zero_point").data<int8_t>()[0], -128);
  // The output: the Conv writes y_QuantizeLinear_Input, the DequantizeLinear writes y.
  EXPECT_EQ(producer(q, "y_QuantizeLinear_Input")->op_type, "Conv");
  EXPECT_EQ(producer(q, "y")->op_type, "DequantizeLinear");
  // Weights: int8 in [-127, 127], scalar scale and zero point 0.
  const Tensor& w = init(q, "w1_quantized");
  EXPECT_EQ(w.dtype(), DType::I8);
  for (int64_t i = 0; i < w.numel(); ++i) EXPECT_GE(w.data<int8_t>()[i], -127);
  EXPECT_EQ(init(q, "w1_scale").rank(), 0u);
  EXPECT_EQ(init(q, "w1_zero_point").data<int8_t>()[0], 0);
  // Bias: int32, scale = x_scale * w1_scale, shape [1], zero point 0.
  const float bias_scale = init(q, "b1_quantized_scale").data<float>()[0];
  EXPECT_EQ(bias_scale, init(q, "x_scale").data<float>()[0] * init(q, "w1_scale").data<float>()[0]);
  EXPECT_EQ(init(q, "b1_quantized").dtype(), DType::I32);
  EXPECT_EQ(producer(q, "b1")->op_type, "DequantizeLinear");
  EXPECT_EQ(q.graph.find_initializer("w1"), nullptr) << "the fp32 weight is dropped";
  // The activations' report rows.
  ASSERT_EQ(r.activations.size(), 3u);
  EXPECT_EQ(r.activations[0].tensor, "x");
}

// Per channel: Conv weights along axis 0, with per-channel int32 biases.
TEST(StaticPtqStructure, PerChannelConvScalesRunAlongOutputChannels) {
  ModelBuilder b;
  b.input("x", DType::F32, {1, 2, 5, 5});
  b.initializer("w", random_tensor({4, 2, 3, 3}, 21)).initializer("bias", random_tensor({4}, 22));
  b.node("Conv", {"x", "w", "bias"}, {"y"}, kPad1).output("y");
  StaticQuantOptions o;
  o.per_channel = true;
  const StaticQuantResult r = quantise_and_run(b.model, o);
  const Model& q = r.model;
  EXPECT_EQ(shape_to_string(init(q, "w_scale").shape()), "[4]");
  EXPECT_EQ(shape_to_string(init(q, "w_zero_point").shape()), "[4]");
  EXPECT_EQ(node_named(q, "w_DequantizeLinear")->attr_int("axis", -1), 0);
  EXPECT_EQ(shape_to_string(init(q, "bias_quantized_scale").shape()), "[4]");
  EXPECT_EQ(shape_to_string(init(q, "bias_quantized_zero_point").shape()), "[4]");
  EXPECT_EQ(node_named(q, "bias_DequantizeLinear")->attr_int("axis", -1), 0);
  for (int c = 0; c < 4; ++c)
    EXPECT_EQ(init(q, "bias_quantized_scale").data<float>()[c],
              init(q, "x_scale").data<float>()[0] * init(q, "w_scale").data<float>()[c]);
}

// Gemm without transB: per-channel scales along axis 1; the bias is at input x weight scale and
// beta stays on the Gemm (folding it into the bias scale as ONNX Runtime does changes results).
TEST(StaticPtqStructure, GemmKeepsBetaAndScalesWeightsAlongColumns) {
  ModelBuilder b;
  b.input("x", DType::F32, {1, 5});
  b.initializer("w", random_tensor({5, 3}, 31)).initializer("c", random_tensor({3}, 32));
  b.node("Gemm", {"x", "w", "c"}, {"y"}, {Attribute::make_float("beta", 0.5f)}).output("y");
  StaticQuantOptions o;
  o.per_channel = true;
  const StaticQuantResult r = quantise_and_run(b.model, o);
  const Model& q = r.model;
  EXPECT_EQ(node_named(q, "w_DequantizeLinear")->attr_int("axis", -1), 1);
  EXPECT_EQ(shape_to_string(init(q, "w_scale").shape()), "[3]");
  const Node* gemm = producer(q, "y_QuantizeLinear_Input");
  ASSERT_NE(gemm, nullptr);
  EXPECT_EQ(gemm->attr_float("beta", 0.0f), 0.5f);
  for (int c = 0; c < 3; ++c)
    EXPECT_EQ(init(q, "c_quantized_scale").data<float>()[c],
              init(q, "x_scale").data<float>()[0] * init(q, "w_scale").data<float>()[c]);
}

// MatMul: constant B per channel along its last axis; two activations get a pair each.
TEST(StaticPtqStructure, MatMulWeightsAndActivations) {
  ModelBuilder b;
  b.input("x", DType::F32, {1, 3, 4});
  b.initializer("w", random_tensor({4, 6}, 41));
  b.node("MatMul", {"x", "w"}, {"h"}).node("Transpose", {"h"}, {"ht"}, {Attribute::make_ints("perm", {0, 2, 1})});
  b.node("MatMul", {"h", "ht"}, {"y"}).output("y");
  StaticQuantOptions o;
  o.per_channel = true;
  const StaticQuantResult r = quantise_and_run(b.model, o);
  const Model& q = r.model;
  EXPECT_EQ(node_named(q, "w_DequantizeLinear")->attr_int("axis", -1), 1);
  EXPECT_EQ(shape_to_string(init(q, "w_scale").shape()), "[6]");
  // h is read by the second MatMul and the Transpose: one pair serves both, and the
  // Transpose's output reuses h's scale and zero point.
  const Node* tq = node_named(q, "ht_QuantizeLinear");
  ASSERT_NE(tq, nullptr);
  EXPECT_EQ(tq->inputs[1], "h_scale");
  EXPECT_EQ(tq->inputs[2], "h_zero_point");
  EXPECT_EQ(op_count(q, "QuantizeLinear"), 4);  // x, h, ht (shared), y
}

// A Relu whose input has another reader is kept (and both sides quantised); a Clip whose
// bounds exclude 0 is kept too (Q/DQ ranges always hold 0, so they could not do its clipping).
TEST(StaticPtqStructure, ActivationsThatCannotFoldStay) {
  ModelBuilder b;
  b.input("x", DType::F32, {1, 2, 4, 4});
  b.initializer("w", random_tensor({2, 2, 1, 1}, 51));
  b.initializer("lo", Tensor::scalar<float>(0.25f)).initializer("hi", Tensor::scalar<float>(0.75f));
  b.node("Conv", {"x", "w"}, {"c"}).node("Relu", {"c"}, {"r"}).node("Add", {"c", "r"}, {"s"});
  b.node("Conv", {"s", "w"}, {"d"}).node("Clip", {"d", "lo", "hi"}, {"y"}).output("y");
  const StaticQuantResult r = quantise_and_run(b.model);
  EXPECT_EQ(op_count(r.model, "Relu"), 1);
  EXPECT_EQ(op_count(r.model, "Clip"), 1);
  EXPECT_TRUE(r.folded.empty());
}

// Add with a constant operand: the constant is stored int8 (symmetric) with a DequantizeLinear;
// Softmax's output is quantised over [0, 1].
TEST(StaticPtqStructure, ConstantsAndSoftmax) {
  ModelBuilder b;
  b.input("x", DType::F32, {1, 8});
  b.initializer("k", random_tensor({8}, 61));
  b.node("Add", {"x", "k"}, {"a"}).node("Softmax", {"a"}, {"y"}).output("y");
  const StaticQuantResult r = quantise_and_run(b.model);
  const Model& q = r.model;
  EXPECT_EQ(init(q, "k_quantized").dtype(), DType::I8);
  EXPECT_EQ(init(q, "k_zero_point").data<int8_t>()[0], 0);
  EXPECT_FLOAT_EQ(init(q, "y_scale").data<float>()[0], 1.0f / 255.0f);
  EXPECT_EQ(init(q, "y_zero_point").data<int8_t>()[0], -128);
}

// uint8 activations: zero points are uint8 (a [0, max] range gets 0), weights stay int8.
TEST(StaticPtqStructure, Uint8Activations) {
  ModelBuilder b;
  b.input("x", DType::F32, {1, 2, 4, 4});
  b.initializer("w", random_tensor({3, 2, 3, 3}, 71));
  b.node("Conv", {"x", "w"}, {"c"}, kPad1).node("Relu", {"c"}, {"y"}).output("y");
  StaticQuantOptions o;
  o.activation_type = ActivationType::Uint8;
  const StaticQuantResult r = quantise_and_run(b.model, o, CalibrationMethod::MinMax, 0.0f, 1.0f);
  const Model& q = r.model;
  EXPECT_EQ(init(q, "x_zero_point").dtype(), DType::U8);
  EXPECT_EQ(init(q, "x_zero_point").data<uint8_t>()[0], 0);
  EXPECT_EQ(init(q, "w_quantized").dtype(), DType::I8);
}

// --exclude-nodes: the excluded Conv keeps its fp32 weight; its neighbours still get Q/DQ.
TEST(StaticPtqStructure, ExcludedNodesStayFp32) {
  ModelBuilder b;
  b.input("x", DType::F32, {1, 2, 4, 4});
  b.initializer("w1", random_tensor({2, 2, 3, 3}, 81)).initializer("w2", random_tensor({2, 2, 3, 3}, 82));
  b.node("Conv", {"x", "w1"}, {"c"}, kPad1).node("Conv", {"c", "w2"}, {"y"}, kPad1).output("y");
  StaticQuantOptions o;
  o.exclude_nodes = {b.model.graph.nodes[1].name};
  const StaticQuantResult r = quantise_and_run(b.model, o);
  ASSERT_NE(r.model.graph.find_initializer("w2"), nullptr);
  EXPECT_EQ(r.model.graph.find_initializer("w2")->tensor.dtype(), DType::F32);
  EXPECT_NE(r.model.graph.find_initializer("w1_quantized"), nullptr);
  ASSERT_EQ(r.left_fp32.size(), 1u);
  EXPECT_EQ(r.left_fp32[0].reason, "excluded (--exclude-nodes)");

  o.exclude_nodes = {"no_such_node"};
  EXPECT_THROW(quantize_static(b.model, RangeTable{}, o), Error);
}

// Already-quantised models and opsets without QuantizeLinear (or its axis, for per channel)
// are refused.
TEST(StaticPtqStructure, RefusesWhatItCannotRewrite) {
  ModelBuilder b;
  b.input("x", DType::F32, {1, 4});
  b.initializer("s", Tensor::scalar<float>(0.1f)).initializer("z", Tensor::scalar<int8_t>(0));
  b.node("QuantizeLinear", {"x", "s", "z"}, {"q"}).node("DequantizeLinear", {"q", "s", "z"}, {"y"}).output("y");
  EXPECT_THROW(quantize_static(b.model, RangeTable{}, {}), Error);

  ModelBuilder old(12);
  old.input("x", DType::F32, {1, 4}).initializer("w", random_tensor({4, 2}, 5));
  old.node("MatMul", {"x", "w"}, {"y"}).output("y");
  StaticQuantOptions pc;
  pc.per_channel = true;
  EXPECT_THROW(quantize_static(old.model, RangeTable{}, pc), Error);
  EXPECT_NO_THROW(quantize_static(old.model, RangeTable{}, {}));
}

}  // namespace
}  // namespace tinyq::test
