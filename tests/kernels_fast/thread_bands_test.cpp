// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// Convolutions big enough to be split over threads: the dynamic int8 chain (DynQConv, whose
// range scan is split too, and whose one-group stride-1 layers run as bands of output rows, each
// with its own input planes) must give the same bits on 1, 2 and 3 threads as the unfused graph.
// The image is sized so that the 16-channel layers split three ways and the one-channel layer
// two ways, with bands of unequal height.

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "model_builder.h"
#include "test_support.h"
#include "tinyq/session.h"

namespace tinyq {
namespace {

using test::ModelBuilder;

Tensor band_random_f32(std::mt19937& rng, const Shape& shape, float lo, float hi) {
  Tensor t(DType::F32, shape);
  std::uniform_real_distribution<float> d(lo, hi);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = d(rng);
  return t;
}

Tensor band_random_i8(std::mt19937& rng, const Shape& shape) {
  Tensor t(DType::I8, shape);
  std::uniform_int_distribution<int> d(-127, 127);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<int8_t>()[i] = static_cast<int8_t>(d(rng));
  return t;
}

// DynamicQuantizeLinear -> ConvInteger (3x3, pads 1) -> Cast -> Mul -> Add(B) [-> Add(res)] -> Relu,
// as ONNX Runtime's quantize_dynamic writes it.
void add_band_conv(ModelBuilder& mb, std::mt19937& rng, const std::string& x, const std::string& y, const Shape& w_shape,
                   const std::string& residual) {
  const std::string p = y + "_";
  mb.initializer(p + "w", band_random_i8(rng, w_shape)).initializer(p + "wz", Tensor::scalar<int8_t>(0));
  mb.initializer(p + "ws", Tensor::scalar<float>(0.0071f))
      .initializer(p + "b", band_random_f32(rng, {1, w_shape[0], 1, 1}, -1.0f, 1.0f));
  mb.node("DynamicQuantizeLinear", {x}, {p + "q", p + "s", p + "z"});
  mb.node("Mul", {p + "s", p + "ws"}, {p + "scale"});
  mb.node("ConvInteger", {p + "q", p + "w", p + "z", p + "wz"}, {p + "acc"},
          {Attribute::make_ints("pads", {1, 1, 1, 1})});
  mb.node("Cast", {p + "acc"}, {p + "f"}, {Attribute::make_int("to", 1)});
  mb.node("Mul", {p + "f", p + "scale"}, {p + "scaled"});
  mb.node("Add", {p + "scaled", p + "b"}, {p + "biased"});
  std::string cur = p + "biased";
  if (!residual.empty()) {
    mb.node("Add", {cur, residual}, {p + "res"});
    cur = p + "res";
  }
  mb.node("Relu", {cur}, {y});
}

TEST(ThreadBands, DynamicIntegerConvsGiveTheSameBitsOnAnyThreadCount) {
  std::mt19937 rng(11);
  const Shape in_shape{1, 16, 181, 179};
  ModelBuilder mb;
  mb.input("x", DType::F32, in_shape);
  add_band_conv(mb, rng, "x", "a", {16, 16, 3, 3}, "");
  add_band_conv(mb, rng, "a", "b", {16, 16, 3, 3}, "a");  // with a residual add
  add_band_conv(mb, rng, "b", "y", {1, 16, 3, 3}, "");    // one output channel
  mb.output("y");
  const std::vector<Tensor> feeds = {band_random_f32(rng, in_shape, -2.0f, 3.0f)};
  SessionOptions plain_opts;
  plain_opts.optimize = false;
  const Tensor want = Session(mb.model, plain_opts).run(feeds)[0];
  for (int threads : {1, 2, 3}) {
    SessionOptions opts;
    opts.threads = threads;
    Session s(mb.model, opts);
    bool fused = false;
    for (const Node& n : s.model().graph.nodes) fused = fused || n.op_type == "DynQConv";
    EXPECT_TRUE(fused) << "threads " << threads;
    const Tensor got = s.run(feeds)[0];
    EXPECT_TRUE(got.bit_equal(want)) << "threads " << threads << ": max |diff| " << test::max_abs_diff(got, want);
  }
}

}  // namespace
}  // namespace tinyq
