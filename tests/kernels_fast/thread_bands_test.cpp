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

TEST(ThreadBands, DynamicIntegerConvsGiveTheSameBitsOnAnyThreadCount) {
  std::mt19937 rng(11);
  const Shape in_shape{1, 16, 181, 179};
  ModelBuilder mb;
  mb.input("x", DType::F32, in_shape);
  test::add_dynamic_conv_relu(mb, rng, "x", "a", {16, 16, 3, 3}, 0.0071f, 1, {1, 1}, "");
  test::add_dynamic_conv_relu(mb, rng, "a", "b", {16, 16, 3, 3}, 0.0071f, 1, {1, 1}, "a");  // with a residual add
  test::add_dynamic_conv_relu(mb, rng, "b", "y", {1, 16, 3, 3}, 0.0071f, 1, {1, 1}, "");    // one output channel
  mb.output("y");
  const std::vector<Tensor> feeds = {test::random_f32(rng, in_shape, -2.0f, 3.0f)};
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
