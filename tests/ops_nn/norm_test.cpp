// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// BatchNormalization (inference), LayerNormalization and InstanceNormalization against ONNX
// Runtime, plus the training-mode and malformed-node refusals.

#include <random>

#include "nn_test_util.h"

namespace tinyq::test {
namespace {

// A positive variance vector (values in [0.2, 2)).
Tensor variance(std::mt19937& rng, int64_t c) { return random_tensor(rng, {c}, 0.2f, 2.0f); }

void add_batch_norm(ModelBuilder& mb, NamedTensors& feeds, std::mt19937& rng, const std::string& s, const Shape& x,
                    std::vector<Attribute> attrs) {
  const int64_t c = x[1];
  mb.input("x" + s, DType::F32, x);
  feeds.emplace_back("x" + s, random_tensor(rng, x, -3.0f, 3.0f));
  mb.initializer("scale" + s, random_tensor(rng, {c}));
  mb.initializer("bias" + s, random_tensor(rng, {c}));
  mb.initializer("mean" + s, random_tensor(rng, {c}));
  mb.initializer("var" + s, variance(rng, c));
  mb.node("BatchNormalization", {"x" + s, "scale" + s, "bias" + s, "mean" + s, "var" + s}, {"y" + s},
          std::move(attrs));
  mb.output("y" + s);
}

TEST(OpsNnNorm, BatchNormalization) {
  TINYQ_REQUIRE_ORT();
  for (int64_t opset : {9, 15}) {
    std::mt19937 rng(21);
    ModelBuilder mb(opset);
    NamedTensors feeds;
    add_batch_norm(mb, feeds, rng, "0", {2, 3, 4, 5}, {});
    add_batch_norm(mb, feeds, rng, "1", {3, 4}, {attr_f("epsilon", 1e-3f)});
    add_batch_norm(mb, feeds, rng, "2", {1, 2, 3, 4, 5}, {attr_f("momentum", 0.5f)});
    add_batch_norm(mb, feeds, rng, "3", {2, 5, 7}, {attr_f("epsilon", 0.1f)});
    SCOPED_TRACE("opset " + std::to_string(opset));
    expect_matches_ort(mb.model, feeds);
  }
}

TEST(OpsNnNorm, LayerNormalization) {
  TINYQ_REQUIRE_ORT();
  struct Case {
    const char* name;
    Shape x;
    int64_t axis;
    Shape scale;
    bool bias;
    bool stats;
  };
  const std::vector<Case> cases = {
      {"last axis + bias", {2, 3, 8}, -1, {8}, true, false},
      {"axis 1, no bias", {2, 3, 4}, 1, {3, 4}, false, false},
      {"axis 0", {3, 5}, 0, {3, 5}, true, false},
      {"mean and inv std outputs", {4, 6}, -1, {6}, true, true},
      {"axis -2 with stats", {2, 2, 3, 5}, -2, {3, 5}, true, true},
  };
  std::mt19937 rng(22);
  ModelBuilder mb(17);
  NamedTensors feeds;
  std::vector<std::pair<std::string, std::string>> labels;
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    const std::string s = std::to_string(i);
    mb.input("x" + s, DType::F32, c.x);
    feeds.emplace_back("x" + s, random_tensor(rng, c.x, -2.0f, 4.0f));
    mb.initializer("scale" + s, random_tensor(rng, c.scale));
    std::vector<std::string> ins = {"x" + s, "scale" + s};
    if (c.bias) {
      mb.initializer("bias" + s, random_tensor(rng, c.scale));
      ins.push_back("bias" + s);
    }
    std::vector<std::string> outs = {"y" + s};
    if (c.stats) {
      outs.push_back("mean" + s);
      outs.push_back("inv_std" + s);
    }
    mb.node("LayerNormalization", ins, outs, {attr_i("axis", c.axis), attr_f("epsilon", 1e-4f)});
    for (const auto& o : outs) {
      mb.output(o);
      labels.emplace_back(o, c.name);
    }
  }
  expect_matches_ort(mb.model, feeds, labels);
}

TEST(OpsNnNorm, InstanceNormalization) {
  TINYQ_REQUIRE_ORT();
  const std::vector<Shape> shapes = {{2, 3, 4, 5}, {1, 2, 6}, {1, 2, 3, 2, 4}};
  std::mt19937 rng(23);
  ModelBuilder mb(13);
  NamedTensors feeds;
  for (size_t i = 0; i < shapes.size(); ++i) {
    const std::string s = std::to_string(i);
    const int64_t c = shapes[i][1];
    mb.input("x" + s, DType::F32, shapes[i]);
    feeds.emplace_back("x" + s, random_tensor(rng, shapes[i], -1.0f, 3.0f));
    mb.initializer("scale" + s, random_tensor(rng, {c}));
    mb.initializer("bias" + s, random_tensor(rng, {c}));
    mb.node("InstanceNormalization", {"x" + s, "scale" + s, "bias" + s}, {"y" + s},
            {attr_f("epsilon", i == 1 ? 1e-2f : 1e-5f)});
    mb.output("y" + s);
  }
  expect_matches_ort(mb.model, feeds);
}

TEST(OpsNnNorm, BuildErrors) {
  auto bn = [](int64_t opset, std::vector<Attribute> attrs, std::vector<std::string> outs) {
    ModelBuilder mb(opset);
    mb.input("x", DType::F32, {1, 2, 3, 3});
    for (const char* n : {"s", "b", "m", "v"}) mb.initializer(n, Tensor(DType::F32, {2}));
    mb.node("BatchNormalization", {"x", "s", "b", "m", "v"}, outs, std::move(attrs));
    for (const auto& o : outs)
      if (!o.empty()) mb.output(o);
    return mb.model;
  };
  expect_build_error(bn(15, {attr_i("training_mode", 1)}, {"y"}), "training_mode");
  expect_build_error(bn(15, {}, {"y", "running_mean", "running_var"}), "training");
  expect_build_error(bn(7, {attr_i("spatial", 0)}, {"y"}), "spatial");

  ModelBuilder ln(17);
  ln.input("x", DType::F32, {2, 3});
  ln.initializer("s", Tensor(DType::F32, {3}));
  ln.node("LayerNormalization", {"x", "s"}, {"y"}, {attr_i("stash_type", 0)});
  ln.output("y");
  expect_build_error(ln.model, "stash_type");

  // LayerNormalization exists from opset 17 only.
  ModelBuilder old(16);
  old.input("x", DType::F32, {2, 3});
  old.initializer("s", Tensor(DType::F32, {3}));
  old.node("LayerNormalization", {"x", "s"}, {"y"});
  old.output("y");
  expect_build_error(old.model, "unsupported op");
}

TEST(OpsNnNorm, RunErrors) {
  ModelBuilder mb(15);
  mb.input("x", DType::F32, {1, 3, 2, 2});
  for (const char* n : {"s", "b", "m", "v"}) mb.initializer(n, Tensor(DType::F32, {2}));  // 2 != 3 channels
  mb.node("BatchNormalization", {"x", "s", "b", "m", "v"}, {"y"});
  mb.output("y");
  Session s(mb.model);
  try {
    s.run(std::vector<Tensor>{Tensor(DType::F32, {1, 3, 2, 2})});
    ADD_FAILURE() << "expected a shape error";
  } catch (const Error& e) {
    EXPECT_NE(e.message().find("scale must have shape [3]"), std::string::npos) << e.message();
  }

  ModelBuilder ln(17);
  ln.input("x", DType::F32, {2, 3});
  ln.initializer("s", Tensor(DType::F32, {4}));
  ln.node("LayerNormalization", {"x", "s"}, {"y"});
  ln.output("y");
  Session s2(ln.model);
  EXPECT_THROW(s2.run(std::vector<Tensor>{Tensor(DType::F32, {2, 3})}), Error);
}

}  // namespace
}  // namespace tinyq::test
