// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// Graph-level optimisation (src/runtime/passes): each fusion pattern on a small built model,
// fused (SessionOptions::optimize, the default) against unfused (optimize = false, the nodes
// as written), and the real models of ../shared the same way. Integer chains must agree bit for
// bit (the fused epilogues repeat the graph's float operations in order); fp32 chains within
// rounding. Also: the patterns actually fire (the fused node types appear), a file cannot use
// the internal domain, and threads do not change results.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "model_builder.h"
#include "test_support.h"
#include "tinyq/error.h"
#include "tinyq/model_io.h"
#include "tinyq/session.h"

namespace tinyq {
namespace {

using test::ModelBuilder;

std::vector<std::string> op_types(const Session& s) {
  std::vector<std::string> out;
  for (const Node& n : s.model().graph.nodes) out.push_back(n.op_type);
  return out;
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const std::string& x : v) s += (s.empty() ? "" : " ") + x;
  return s;
}

// Runs the model fused and unfused; expects outputs equal within `tol` (0: bit for bit).
// Returns the fused session's op types.
std::vector<std::string> expect_fused_matches(const Model& model, const std::vector<Tensor>& feeds, double tol,
                                              int threads = 1) {
  SessionOptions fused_opts;
  fused_opts.threads = threads;
  SessionOptions plain_opts;
  plain_opts.optimize = false;
  Session fused(model, fused_opts);
  Session plain(model, plain_opts);
  const std::vector<Tensor> a = fused.run(feeds);
  const std::vector<Tensor> b = plain.run(feeds);
  EXPECT_EQ(a.size(), b.size());
  for (size_t k = 0; k < a.size() && k < b.size(); ++k) {
    EXPECT_EQ(shape_to_string(a[k].shape()), shape_to_string(b[k].shape())) << "output " << k;
    if (a[k].shape() != b[k].shape()) continue;
    if (tol == 0.0) {
      EXPECT_TRUE(a[k].bit_equal(b[k])) << "output " << k << " differs from the unfused graph; max |diff| "
                                        << test::max_abs_diff(a[k], b[k]) << " (fused: " << joined(op_types(fused)) << ")";
    } else {
      EXPECT_LE(test::max_abs_diff(a[k], b[k]), tol * std::max(1.0, test::max_abs(b[k]))) << "output " << k;
    }
  }
  return op_types(fused);
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  for (const std::string& x : v)
    if (x == s) return true;
  return false;
}

Attribute ints(const std::string& name, std::vector<int64_t> v) { return Attribute::make_ints(name, std::move(v)); }

// --- fp32 -------------------------------------------------------------------------------------

TEST(FusedGraph, ConvAddReluBecomesOneNode) {
  std::mt19937 rng(1);
  ModelBuilder mb;
  mb.input("x", DType::F32, {1, 3, 9, 11}).input("r", DType::F32, {1, 4, 9, 11});
  mb.initializer("w", test::random_f32(rng, {4, 3, 3, 3})).initializer("b", test::random_f32(rng, {4}));
  mb.node("Conv", {"x", "w", "b"}, {"c"}, {ints("pads", {1, 1, 1, 1})});
  mb.node("Add", {"r", "c"}, {"s"});
  mb.node("Relu", {"s"}, {"y"});
  mb.output("y");
  const auto ops = expect_fused_matches(mb.model, {test::random_f32(rng, {1, 3, 9, 11}), test::random_f32(rng, {1, 4, 9, 11})},
                                        1e-5);
  EXPECT_EQ(joined(ops), "FusedConv");
}

// A residual block (3x3 + Relu, then 3x3 + the block's input) becomes one ConvStack, run in
// bands on one thread with the Relu output in a ring of rows: within rounding of the unfused
// graph, and bit for bit what 2 and 3 threads give (there the layers run one by one), with the
// Relu output watched too (measured in its ring, or stored whole for a tensor observer), each
// range exactly a pass over the tensor. Sizes: one and two rows, smaller than a ring, a few
// rings, many; odd heights end in part of a tile.
TEST(FusedGraph, ResidualBlockRunsAsAConvStack) {
  std::mt19937 rng(8);
  // 16 channels: Winograd layers, the ring; 4: the direct kernels, bands of whole tensors.
  for (const auto& [h, w, c] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{
           {1, 5, 16}, {2, 3, 16}, {9, 13, 16}, {61, 30, 16}, {203, 37, 16}, {61, 30, 4}}) {
    SCOPED_TRACE(std::to_string(h) + "x" + std::to_string(w) + " c" + std::to_string(c));
    ModelBuilder mb;
    mb.input("x", DType::F32, {2, c, h, w});
    mb.initializer("w1", test::random_f32(rng, {c, c, 3, 3}, -0.2f, 0.2f)).initializer("b1", test::random_f32(rng, {c}));
    mb.initializer("w2", test::random_f32(rng, {c, c, 3, 3}, -0.2f, 0.2f)).initializer("b2", test::random_f32(rng, {c}));
    mb.node("Conv", {"x", "w1", "b1"}, {"c1"}, {ints("pads", {1, 1, 1, 1})});
    mb.node("Relu", {"c1"}, {"r1"});
    mb.node("Conv", {"r1", "w2", "b2"}, {"c2"}, {ints("pads", {1, 1, 1, 1})});
    mb.node("Add", {"x", "c2"}, {"y"});
    mb.output("y");
    const Tensor x = test::random_f32(rng, {2, c, h, w});
    EXPECT_EQ(joined(expect_fused_matches(mb.model, {x}, 1e-4)), "ConvStack");
    std::vector<Tensor> first;
    for (int threads : {1, 2, 3}) {
      SessionOptions o;
      o.threads = threads;
      const std::vector<Tensor> y = Session(mb.model, o).run({x});
      if (first.empty()) first = y;
      EXPECT_TRUE(y[0].bit_equal(first[0])) << "threads " << threads;
    }
    // Watched: measured while written (the ring), or stored whole for a tensor observer.
    for (int threads : {1, 3}) {
      SessionOptions measured;
      measured.threads = threads;
      measured.observe = {"r1", "c2", "y"};
      std::map<std::string, ObservedRange> got;
      measured.on_range = [&](const std::string& name, const ObservedRange& r) { got[name] = r; };
      SessionOptions stored = measured;
      stored.on_range = nullptr;
      std::map<std::string, Tensor> tensors;
      stored.on_tensor = [&](const std::string& name, const Tensor& t) { tensors[name] = t.clone(); };
      EXPECT_TRUE(Session(mb.model, measured).run({x})[0].bit_equal(first[0]));
      EXPECT_TRUE(Session(mb.model, stored).run({x})[0].bit_equal(first[0]));
      ASSERT_EQ(got.size(), 3u);
      ASSERT_EQ(tensors.size(), 3u);
      for (const auto& [name, t] : tensors) {
        float lo = std::numeric_limits<float>::infinity(), hi = -lo;
        for (int64_t i = 0; i < t.numel(); ++i) {
          lo = std::min(lo, t.data<float>()[i]);
          hi = std::max(hi, t.data<float>()[i]);
        }
        EXPECT_EQ(got[name].min, lo) << name << " threads " << threads;
        EXPECT_EQ(got[name].max, hi) << name << " threads " << threads;
        EXPECT_EQ(got[name].count, t.numel()) << name << " threads " << threads;
      }
    }
  }
}

TEST(FusedGraph, ConvClipStridedGroupedAndBroadcastResidual) {
  std::mt19937 rng(2);
  {
    ModelBuilder mb(13);
    mb.input("x", DType::F32, {2, 4, 10, 7});
    mb.initializer("w", test::random_f32(rng, {6, 2, 3, 2})).initializer("lo", Tensor::scalar<float>(-0.25f));
    mb.initializer("hi", Tensor::scalar<float>(0.5f));
    mb.node("Conv", {"x", "w"}, {"c"},
            {ints("pads", {1, 0, 2, 1}), ints("strides", {2, 1}), Attribute::make_int("group", 2)});
    mb.node("Clip", {"c", "lo", "hi"}, {"y"});
    mb.output("y");
    EXPECT_EQ(joined(expect_fused_matches(mb.model, {test::random_f32(rng, {2, 4, 10, 7})}, 1e-5)), "FusedConv");
  }
  {
    // A residual that broadcasts ([4,1,1] against [1,4,5,5]) still fuses, through the slow add.
    ModelBuilder mb;
    mb.input("x", DType::F32, {1, 2, 5, 5}).input("r", DType::F32, {4, 1, 1});
    mb.initializer("w", test::random_f32(rng, {4, 2, 3, 3}));
    mb.node("Conv", {"x", "w"}, {"c"}, {ints("pads", {1, 1, 1, 1})});
    mb.node("Add", {"c", "r"}, {"s"});
    mb.node("Relu", {"s"}, {"y"});
    mb.output("y");
    expect_fused_matches(mb.model, {test::random_f32(rng, {1, 2, 5, 5}), test::random_f32(rng, {4, 1, 1})}, 1e-5);
  }
}

TEST(FusedGraph, GemmAndMatMulWithBiasAndActivation) {
  std::mt19937 rng(3);
  ModelBuilder mb;
  mb.input("x", DType::F32, {5, 6});
  mb.initializer("w1", test::random_f32(rng, {8, 6})).initializer("b1", test::random_f32(rng, {8}));
  mb.initializer("w2", test::random_f32(rng, {8, 3})).initializer("b2", test::random_f32(rng, {3}));
  mb.node("Gemm", {"x", "w1", "b1"}, {"h"},
          {Attribute::make_int("transB", 1), Attribute::make_float("alpha", 0.5f), Attribute::make_float("beta", 2.0f)});
  mb.node("Relu", {"h"}, {"hr"});
  mb.node("MatMul", {"hr", "w2"}, {"m"});
  mb.node("Add", {"m", "b2"}, {"y"});
  mb.output("y");
  const auto ops = expect_fused_matches(mb.model, {test::random_f32(rng, {5, 6})}, 1e-5);
  EXPECT_TRUE(contains(ops, "Mlp")) << joined(ops);
}

// --- dynamic quantisation ---------------------------------------------------------------------

TEST(FusedGraph, DynamicConvChainsAreBitExact) {
  std::mt19937 rng(4);
  ModelBuilder mb;
  mb.input("x", DType::F32, {1, 3, 13, 17});
  test::add_dynamic_conv_relu(mb, rng, "x", "a", {8, 3, 3, 3}, 0.0123f, 1, {1, 1}, "");
  test::add_dynamic_conv_relu(mb, rng, "a", "b", {8, 8, 3, 3}, 0.0123f, 1, {1, 1}, "a");   // with a residual add
  test::add_dynamic_conv_relu(mb, rng, "b", "c", {8, 1, 3, 3}, 0.0123f, 8, {2, 2}, "");    // depthwise, stride 2
  test::add_dynamic_conv_relu(mb, rng, "c", "y", {1, 8, 3, 3}, 0.0123f, 1, {1, 1}, "");    // one output channel
  mb.output("y");
  const auto ops = expect_fused_matches(mb.model, {test::random_f32(rng, {1, 3, 13, 17}, -2.0f, 3.0f)}, 0.0);
  EXPECT_EQ(joined(ops), "DynQConv DynQConv DynQConv DynQConv");
}

// Each DynQConv takes its input's {min, max} from the DynQConv that wrote it (the c4 tiles
// measure it while writing, Op::run_measured) instead of scanning the tensor again. Bit for
// bit the unfused graph, with an infinity or a NaN in the input and with flat planes, on one
// thread and two.
TEST(FusedGraph, DynamicConvsHandTheirRangesOn) {
  std::mt19937 rng(6);
  ModelBuilder mb;
  mb.input("x", DType::F32, {1, 4, 19, 23});
  test::add_dynamic_conv_relu(mb, rng, "x", "a", {16, 4, 3, 3}, 0.0123f, 1, {1, 1}, "");
  test::add_dynamic_conv_relu(mb, rng, "a", "b", {16, 16, 3, 3}, 0.0123f, 1, {1, 1}, "a");
  test::add_dynamic_conv_relu(mb, rng, "b", "y", {8, 16, 3, 3}, 0.0123f, 1, {1, 1}, "");
  mb.output("y");
  const float inf = std::numeric_limits<float>::infinity();
  for (int input = 0; input < 4; ++input) {
    Tensor x = test::random_f32(rng, {1, 4, 19, 23}, -2.0f, 3.0f);
    float* px = x.data<float>();
    if (input == 1) px[37] = inf;
    if (input == 2) px[200] = std::numeric_limits<float>::quiet_NaN();
    if (input == 3) std::fill(px, px + x.numel(), 0.25f);  // flat planes
    for (int threads : {1, 2}) {
      SCOPED_TRACE("input " + std::to_string(input) + " threads " + std::to_string(threads));
      const auto ops = expect_fused_matches(mb.model, {x}, 0.0, threads);
      EXPECT_EQ(joined(ops), "DynQConv DynQConv DynQConv");
    }
  }
}

TEST(FusedGraph, DynamicMlpIsBitExactAndOneNode) {
  std::mt19937 rng(5);
  ModelBuilder mb;
  mb.input("x", DType::F32, {7, 6});
  mb.initializer("mean", test::random_f32(rng, {6})).initializer("std", test::random_f32(rng, {6}, 0.5f, 2.0f));
  mb.node("Sub", {"x", "mean"}, {"xs"});
  mb.node("Div", {"xs", "std"}, {"xn"});
  std::string cur = "xn";
  const int64_t widths[] = {6, 9, 4, 1};
  for (int l = 0; l < 3; ++l) {
    const std::string p = "l" + std::to_string(l) + "_";
    mb.initializer(p + "w", test::random_int8(rng, {widths[l], widths[l + 1]})).initializer(p + "wz", Tensor::scalar<int8_t>(0));
    mb.initializer(p + "ws", Tensor::scalar<float>(0.01f * static_cast<float>(l + 1)));
    mb.initializer(p + "b", test::random_f32(rng, {widths[l + 1]}));
    mb.node("DynamicQuantizeLinear", {cur}, {p + "q", p + "s", p + "z"});
    mb.node("Mul", {p + "s", p + "ws"}, {p + "scale"});
    mb.node("MatMulInteger", {p + "q", p + "w", p + "z", p + "wz"}, {p + "acc"});
    mb.node("Cast", {p + "acc"}, {p + "f"}, {Attribute::make_int("to", 1)});
    mb.node("Mul", {p + "f", p + "scale"}, {p + "scaled"});
    mb.node("Add", {p + "scaled", p + "b"}, {p + "out"});
    cur = p + "out";
    if (l < 2) {
      mb.node("Relu", {cur}, {p + "relu"});
      cur = p + "relu";
    }
  }
  mb.node("Identity", {cur}, {"y"});
  mb.output("y");
  for (int64_t rows : {1, 7}) {
    Model m = mb.model;
    m.graph.inputs[0].dims[0].value = rows;
    const auto ops = expect_fused_matches(m, {test::random_f32(rng, {rows, 6}, -3.0f, 3.0f)}, 0.0);
    EXPECT_EQ(joined(ops), "Mlp Identity") << rows << " rows";
  }
}

// --- QDQ --------------------------------------------------------------------------------------

TEST(FusedGraph, QdqResidualAddIsBitExact) {
  std::mt19937 rng(6);
  ModelBuilder mb;
  mb.input("a", DType::F32, {2, 3, 33}).input("b", DType::F32, {2, 3, 33});
  mb.initializer("sa", Tensor::scalar<float>(0.02f)).initializer("za", Tensor::scalar<int8_t>(3));
  mb.initializer("sb", Tensor::scalar<float>(0.03f)).initializer("zb", Tensor::scalar<int8_t>(-7));
  mb.initializer("sy", Tensor::scalar<float>(0.04f)).initializer("zy", Tensor::scalar<uint8_t>(120));
  mb.node("QuantizeLinear", {"a", "sa", "za"}, {"qa"});
  mb.node("QuantizeLinear", {"b", "sb", "zb"}, {"qb"});
  mb.node("DequantizeLinear", {"qa", "sa", "za"}, {"da"});
  mb.node("DequantizeLinear", {"qb", "sb", "zb"}, {"db"});
  mb.node("Add", {"da", "db"}, {"s"});
  mb.node("QuantizeLinear", {"s", "sy", "zy"}, {"qs"});
  mb.node("DequantizeLinear", {"qs", "sy", "zy"}, {"y"});
  mb.output("y");
  const auto ops = expect_fused_matches(mb.model, {test::random_f32(rng, {2, 3, 33}, -3, 3), test::random_f32(rng, {2, 3, 33}, -3, 3)}, 0.0);
  EXPECT_TRUE(contains(ops, "QAdd")) << joined(ops);
}

// --- convolution chains (ConvChain) -----------------------------------------------------------

// A MobileNet-style body: entry convolution (3 channels, stride 2), depthwise / pointwise pairs,
// then the global average pool as ReduceMean; fp32, activations Clip (ReLU6) and Relu.
TEST(FusedGraph, Fp32ConvChainWithMeanIsOneNode) {
  std::mt19937 rng(20);
  for (int64_t keepdims : {1, 0}) {
    ModelBuilder mb(13);
    mb.input("x", DType::F32, {2, 3, 19, 22});
    mb.initializer("lo", Tensor::scalar<float>(0.0f)).initializer("hi", Tensor::scalar<float>(6.0f));
    struct L {
      int64_t m, cg, k, s, g;
    };
    const L layers[] = {{16, 3, 3, 2, 1}, {16, 1, 3, 1, 16}, {24, 16, 1, 1, 1}, {24, 1, 3, 2, 24}, {40, 24, 1, 1, 1}};
    std::string cur = "x";
    for (int i = 0; i < 5; ++i) {
      const L& l = layers[i];
      const std::string p = "l" + std::to_string(i);
      mb.initializer(p + "w", test::random_f32(rng, {l.m, l.cg, l.k, l.k})).initializer(p + "b", test::random_f32(rng, {l.m}));
      const int64_t pad = l.k / 2;
      mb.node("Conv", {cur, p + "w", p + "b"}, {p + "c"},
              {ints("pads", {pad, pad, pad, pad}), ints("strides", {l.s, l.s}), Attribute::make_int("group", l.g)});
      if (i % 2 == 0)
        mb.node("Clip", {p + "c", "lo", "hi"}, {p + "a"});
      else
        mb.node("Relu", {p + "c"}, {p + "a"});
      cur = p + "a";
    }
    mb.node("ReduceMean", {cur}, {"y"}, {ints("axes", {2, 3}), Attribute::make_int("keepdims", keepdims)});
    mb.output("y");
    const auto ops = expect_fused_matches(mb.model, {test::random_f32(rng, {2, 3, 19, 22})}, 1e-4);
    EXPECT_EQ(joined(ops), "ConvChain") << "keepdims " << keepdims;
  }
}

TEST(FusedGraph, DynamicConvChainIsBitExact) {
  std::mt19937 rng(21);
  for (int threads : {1, 3}) {
    ModelBuilder mb(18);
    mb.input("x", DType::F32, {1, 2, 17, 15});
    test::add_dynamic_conv_relu(mb, rng, "x", "a", {16, 2, 3, 3}, 0.0123f, 1, {2, 2}, "");
    test::add_dynamic_conv_relu(mb, rng, "a", "b", {16, 1, 3, 3}, 0.0123f, 16, {1, 1}, "");
    test::add_dynamic_conv_relu(mb, rng, "b", "c", {32, 16, 1, 1}, 0.0123f, 1, {1, 1}, "");
    test::add_dynamic_conv_relu(mb, rng, "c", "d", {32, 1, 3, 3}, 0.0123f, 32, {2, 2}, "");
    test::add_dynamic_conv_relu(mb, rng, "d", "e", {20, 32, 1, 1}, 0.0123f, 1, {1, 1}, "");
    mb.initializer("axes", Tensor::from_vector<int64_t>({2}, {-1, -2}));
    mb.node("ReduceMean", {"e", "axes"}, {"y"});
    mb.output("y");
    const auto ops = expect_fused_matches(mb.model, {test::random_f32(rng, {1, 2, 17, 15}, -2.0f, 3.0f)}, 0.0, threads);
    EXPECT_EQ(joined(ops), "ConvChain");
  }
}

// QDQ: DequantizeLinear(x) -> Conv(DQ(w), DQ(b)) -> QuantizeLinear per layer (QLinearConv once
// fused), int8 or uint8 activations, weights per tensor or per channel; the static chain ends
// in DequantizeLinear -> ReduceMean, or in its 8-bit output.
void add_qdq_conv(ModelBuilder& mb, std::mt19937& rng, const std::string& xq, const std::string& x_scale,
                  const std::string& x_zp, const std::string& y, const Shape& w_shape, int64_t group, int64_t stride,
                  bool u8, bool per_channel) {
  const std::string p = y + "_";
  const int64_t m = w_shape[0];
  std::vector<float> ws;
  std::uniform_real_distribution<float> sd(0.002f, 0.01f);
  for (int64_t i = 0; i < (per_channel ? m : 1); ++i) ws.push_back(sd(rng));
  mb.initializer(p + "w", test::random_int8(rng, w_shape));
  if (per_channel)
    mb.initializer(p + "ws", Tensor::from_vector<float>({m}, ws)).initializer(p + "wz", Tensor::from_vector<int8_t>({m}, std::vector<int8_t>(static_cast<size_t>(m), 0)));
  else
    mb.initializer(p + "ws", Tensor::scalar<float>(ws[0])).initializer(p + "wz", Tensor::scalar<int8_t>(0));
  std::vector<int32_t> b;
  std::uniform_int_distribution<int32_t> bd(-3000, 3000);
  for (int64_t i = 0; i < m; ++i) b.push_back(bd(rng));
  mb.initializer(p + "b", Tensor::from_vector<int32_t>({m}, b)).initializer(p + "bs", Tensor::scalar<float>(1e-4f));
  mb.initializer(p + "bz", Tensor::scalar<int32_t>(0));
  mb.initializer(p + "ys", Tensor::scalar<float>(0.05f + 0.01f * static_cast<float>(m % 7)));
  if (u8)
    mb.initializer(p + "yz", Tensor::scalar<uint8_t>(static_cast<uint8_t>(100 + m % 50)));
  else
    mb.initializer(p + "yz", Tensor::scalar<int8_t>(static_cast<int8_t>(-20 + m % 40)));
  mb.node("DequantizeLinear", {xq, x_scale, x_zp}, {p + "xd"});
  mb.node("DequantizeLinear", {p + "w", p + "ws", p + "wz"}, {p + "wd"}, {Attribute::make_int("axis", 0)});
  mb.node("DequantizeLinear", {p + "b", p + "bs", p + "bz"}, {p + "bd"});
  const int64_t pad = w_shape[2] / 2;
  mb.node("Conv", {p + "xd", p + "wd", p + "bd"}, {p + "c"},
          {ints("pads", {pad, pad, pad, pad}), ints("strides", {stride, stride}), Attribute::make_int("group", group)});
  mb.node("QuantizeLinear", {p + "c", p + "ys", p + "yz"}, {y});
}

TEST(FusedGraph, StaticConvChainIsBitExact) {
  std::mt19937 rng(22);
  for (bool u8 : {false, true}) {
    for (bool per_channel : {false, true}) {
      for (bool mean : {true, false}) {
        ModelBuilder mb(13);
        mb.input("x", DType::F32, {2, 1, 21, 18});
        mb.initializer("xs", Tensor::scalar<float>(0.01f));
        if (u8)
          mb.initializer("xz", Tensor::scalar<uint8_t>(3));
        else
          mb.initializer("xz", Tensor::scalar<int8_t>(-100));
        mb.node("QuantizeLinear", {"x", "xs", "xz"}, {"xq"});
        add_qdq_conv(mb, rng, "xq", "xs", "xz", "a", {16, 1, 3, 3}, 1, 2, u8, per_channel);
        add_qdq_conv(mb, rng, "a", "a_ys", "a_yz", "b", {16, 1, 3, 3}, 16, 1, u8, per_channel);
        add_qdq_conv(mb, rng, "b", "b_ys", "b_yz", "c", {32, 16, 1, 1}, 1, 1, u8, per_channel);
        add_qdq_conv(mb, rng, "c", "c_ys", "c_yz", "d", {32, 1, 3, 3}, 32, 2, u8, per_channel);
        add_qdq_conv(mb, rng, "d", "d_ys", "d_yz", "e", {48, 32, 1, 1}, 1, 1, u8, per_channel);
        if (mean) {
          mb.node("DequantizeLinear", {"e", "e_ys", "e_yz"}, {"ed"});
          mb.node("ReduceMean", {"ed"}, {"y"}, {ints("axes", {2, 3})});
        } else {
          mb.node("Identity", {"e"}, {"y"});
        }
        mb.output("y");
        const auto ops = expect_fused_matches(mb.model, {test::random_f32(rng, {2, 1, 21, 18}, -1.0f, 2.0f)}, 0.0);
        // The input's QuantizeLinear, the layers and the mean tail in one node.
        EXPECT_EQ(joined(ops), mean ? "ConvChain" : "ConvChain Identity");
      }
    }
  }
}

// A layer the chain kernels do not take (grouped, not depthwise) ends the chain; a value read
// twice ends it too; what is left runs as before.
TEST(FusedGraph, ConvChainsStopWhereTheKernelsDecline) {
  std::mt19937 rng(23);
  ModelBuilder mb;
  mb.input("x", DType::F32, {1, 8, 9, 9});
  mb.initializer("w0", test::random_f32(rng, {8, 1, 3, 3})).initializer("w1", test::random_f32(rng, {16, 8, 1, 1}));
  mb.initializer("w2", test::random_f32(rng, {16, 8, 3, 3})).initializer("w3", test::random_f32(rng, {16, 1, 3, 3}));
  mb.node("Conv", {"x", "w0"}, {"a"}, {ints("pads", {1, 1, 1, 1}), Attribute::make_int("group", 8)});
  mb.node("Conv", {"a", "w1"}, {"b"});
  mb.node("Conv", {"b", "w2"}, {"c"}, {ints("pads", {1, 1, 1, 1}), Attribute::make_int("group", 2)});
  mb.node("Conv", {"c", "w3"}, {"d"}, {ints("pads", {1, 1, 1, 1}), Attribute::make_int("group", 16)});
  mb.node("Add", {"d", "c"}, {"y"});
  mb.output("y");
  const auto ops = expect_fused_matches(mb.model, {test::random_f32(rng, {1, 8, 9, 9})}, 1e-4);
  EXPECT_EQ(joined(ops), "ConvChain FusedConv FusedConv") << joined(ops);
}

// --- guards -----------------------------------------------------------------------------------

TEST(FusedGraph, FilesCannotUseTheInternalDomain) {
  ModelBuilder mb;
  mb.input("x", DType::F32, {1, 4});
  mb.node("Relu", {"x"}, {"y"});
  mb.model.graph.nodes[0].domain = "ai.tinyq.fused";
  mb.model.graph.nodes[0].op_type = "FusedGemm";
  mb.output("y");
  for (bool optimize : {true, false}) {
    SessionOptions o;
    o.optimize = optimize;
    try {
      Session s(mb.model, o);
      ADD_FAILURE() << "a node in the internal domain was accepted";
    } catch (const Error& e) {
      EXPECT_NE(e.message().find("domain"), std::string::npos) << e.message();
    }
  }
}

TEST(FusedGraph, ThreadsGiveTheSameResult) {
  std::mt19937 rng(7);
  ModelBuilder mb;
  mb.input("x", DType::F32, {1, 16, 40, 37});
  mb.initializer("w", test::random_f32(rng, {16, 16, 3, 3})).initializer("b", test::random_f32(rng, {16}));
  mb.node("Conv", {"x", "w", "b"}, {"c"}, {ints("pads", {1, 1, 1, 1})});
  mb.node("Relu", {"c"}, {"y"});
  mb.output("y");
  const std::vector<Tensor> feeds = {test::random_f32(rng, {1, 16, 40, 37})};
  SessionOptions one, three;
  three.threads = 3;
  Session s1(mb.model, one), s3(mb.model, three);
  EXPECT_TRUE(s1.run(feeds)[0].bit_equal(s3.run(feeds)[0]));
}

// --- the real models --------------------------------------------------------------------------

TEST(FusedGraph, RealModelsMatchTheirUnfusedGraphs) {
  TINYQ_REQUIRE_SHARED();
  const std::string real = test::shared_dir() + "/models/real/", ref = test::shared_dir() + "/reference/ort-1.30/";
  struct Case {
    std::string path;
    double tol;  // 0: bit for bit
    const char* must_have;
  };
  const Case cases[] = {
      {real + "vmaf_tiny_v3.int8.onnx", 0.0, "Mlp"},
      {real + "vmaf_tiny_v4.onnx", 1e-5, "Mlp"},
      {real + "nr_metric_v1.int8.onnx", 0.0, "ConvChain"},
      {real + "nr_metric_v1.onnx", 1e-4, "ConvChain"},
      {ref + "nr_metric_v1.ort_dyn.int8.onnx", 0.0, "ConvChain"},
      {ref + "nr_metric_v1.ort_qdq.int8.onnx", 0.0, "ConvChain"},
      {real + "learned_filter_v1.int8.onnx", 0.0, "DynQConv"},
      {real + "learned_filter_v1.onnx", 1e-4, "FusedConv"},
      {ref + "learned_filter_v1.ort_qdq.int8.onnx", 0.0, "QAdd"},
      {ref + "nr_metric_v1.ort_qdqpc.int8.onnx", 0.0, "ConvChain"},
  };
  std::mt19937 rng(8);
  for (const Case& c : cases) {
    SCOPED_TRACE(c.path);
    Model m = load_model(c.path);
    std::vector<Tensor> feeds;
    for (ValueInfo& in : m.graph.inputs) {
      if (m.graph.find_initializer(in.name)) continue;
      if (in.dims.size() == 4) in.dims[2].value = in.dims[3].value = 64;  // keep the image models quick
      Shape shape;
      for (const Dim& d : in.dims) shape.push_back(d.known() ? d.value : 1);
      feeds.push_back(test::random_f32(rng, shape, 0.0f, 1.0f));
    }
    const auto ops = expect_fused_matches(m, feeds, c.tol);
    EXPECT_TRUE(contains(ops, c.must_have)) << joined(ops);
  }
}

}  // namespace
}  // namespace tinyq
