// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// MaxPool, AveragePool and the global pools against ONNX Runtime: one model per table, every
// case a node of its own (pads, strides, dilations, ceil_mode, count_include_pad, auto_pad,
// 1-D/2-D/3-D).

#include <random>

#include "nn_test_util.h"

namespace tinyq::test {
namespace {

struct PoolCase {
  const char* op;
  const char* name;
  Shape x;
  std::vector<Attribute> attrs;
};

void run_pool_table(const std::vector<PoolCase>& cases, int64_t opset = 17) {
  TINYQ_REQUIRE_ORT();
  std::mt19937 rng(99);
  ModelBuilder mb(opset);
  NamedTensors feeds;
  std::vector<std::pair<std::string, std::string>> labels;
  for (size_t i = 0; i < cases.size(); ++i) {
    const PoolCase& c = cases[i];
    const std::string s = std::to_string(i);
    mb.input("x" + s, DType::F32, c.x);
    feeds.emplace_back("x" + s, random_tensor(rng, c.x));
    mb.node(c.op, {"x" + s}, {"y" + s}, c.attrs);
    mb.output("y" + s);
    labels.emplace_back("y" + s, std::string(c.op) + " " + c.name);
  }
  expect_matches_ort(mb.model, feeds, labels);
}

Attribute k(std::vector<int64_t> v) { return attr_is("kernel_shape", std::move(v)); }
Attribute st(std::vector<int64_t> v) { return attr_is("strides", std::move(v)); }
Attribute pd(std::vector<int64_t> v) { return attr_is("pads", std::move(v)); }
Attribute dl(std::vector<int64_t> v) { return attr_is("dilations", std::move(v)); }
Attribute ceil_on() { return attr_i("ceil_mode", 1); }

TEST(OpsNnPool, MaxPool) {
  std::vector<PoolCase> cases = {
      {"MaxPool", "2x2 s2", {1, 2, 6, 6}, {k({2, 2}), st({2, 2})}},
      {"MaxPool", "2x2 s2 odd input (floor)", {1, 2, 7, 5}, {k({2, 2}), st({2, 2})}},
      {"MaxPool", "3x3 s2 ceil (LPIPS)", {1, 2, 8, 9}, {k({3, 3}), st({2, 2}), ceil_on()}},
      {"MaxPool", "ceil, last window would start in the end pad", {1, 1, 3, 3},
       {k({2, 2}), st({3, 3}), pd({0, 0, 1, 1}), ceil_on()}},
      {"MaxPool", "ceil with pads", {1, 1, 7, 6}, {k({3, 2}), st({2, 2}), pd({1, 0, 1, 1}), ceil_on()}},
      {"MaxPool", "pads strides", {2, 1, 7, 7}, {k({3, 3}), st({2, 2}), pd({1, 1, 1, 1})}},
      {"MaxPool", "asymmetric pads", {1, 2, 5, 6}, {k({2, 3}), pd({0, 1, 1, 2})}},
      {"MaxPool", "dilations", {1, 1, 9, 9}, {k({2, 3}), dl({2, 2})}},
      {"MaxPool", "dilations strides ceil", {1, 1, 10, 9}, {k({2, 2}), dl({3, 2}), st({2, 2}), ceil_on()}},
      {"MaxPool", "SAME_UPPER", {1, 1, 7, 8}, {k({3, 3}), st({2, 2}), attr_s("auto_pad", "SAME_UPPER")}},
      {"MaxPool", "SAME_LOWER", {1, 1, 5, 6}, {k({2, 2}), attr_s("auto_pad", "SAME_LOWER")}},
      {"MaxPool", "VALID", {1, 1, 7, 6}, {k({3, 2}), st({2, 2}), attr_s("auto_pad", "VALID")}},
      {"MaxPool", "1-D", {1, 2, 10}, {k({3}), st({2}), pd({1, 1})}},
      {"MaxPool", "3-D", {1, 1, 4, 5, 6}, {k({2, 2, 3}), st({2, 1, 2})}},
      {"MaxPool", "SAME dilated", {1, 1, 8, 8}, {k({3, 3}), dl({2, 2}), attr_s("auto_pad", "SAME_UPPER")}},
      {"MaxPool", "SAME dilated s2", {1, 1, 9, 8}, {k({3, 2}), dl({2, 3}), st({2, 2}), attr_s("auto_pad", "SAME_LOWER")}},
      {"MaxPool", "storage_order ignored", {1, 1, 4, 4}, {k({2, 2}), attr_i("storage_order", 1)}},
  };
  run_pool_table(cases);
}

TEST(OpsNnPool, AveragePool) {
  std::vector<PoolCase> cases = {
      {"AveragePool", "2x2 s2", {1, 2, 6, 6}, {k({2, 2}), st({2, 2})}},
      {"AveragePool", "pads, padding not counted", {1, 2, 7, 7}, {k({3, 3}), st({2, 2}), pd({1, 1, 1, 1})}},
      {"AveragePool", "pads, padding counted", {1, 2, 7, 7},
       {k({3, 3}), st({2, 2}), pd({1, 1, 1, 1}), attr_i("count_include_pad", 1)}},
      {"AveragePool", "asymmetric pads counted", {1, 1, 5, 6},
       {k({3, 2}), pd({2, 0, 1, 1}), attr_i("count_include_pad", 1)}},
      {"AveragePool", "ceil", {1, 1, 7, 7}, {k({3, 3}), st({2, 2}), ceil_on()}},
      {"AveragePool", "ceil, pads counted (window cut at the padded edge)", {1, 1, 6, 6},
       {k({3, 3}), st({2, 2}), pd({1, 1, 1, 1}), ceil_on(), attr_i("count_include_pad", 1)}},
      {"AveragePool", "ceil, pads not counted", {1, 1, 6, 5},
       {k({3, 3}), st({2, 2}), pd({1, 1, 1, 1}), ceil_on()}},
      {"AveragePool", "SAME_UPPER", {1, 1, 7, 8}, {k({3, 3}), st({2, 2}), attr_s("auto_pad", "SAME_UPPER")}},
      {"AveragePool", "SAME_LOWER counted", {1, 1, 5, 6},
       {k({2, 3}), attr_s("auto_pad", "SAME_LOWER"), attr_i("count_include_pad", 1)}},
      {"AveragePool", "VALID", {1, 1, 7, 6}, {k({3, 2}), st({2, 2}), attr_s("auto_pad", "VALID")}},
      {"AveragePool", "1-D", {1, 2, 10}, {k({3}), st({2}), pd({1, 1}), attr_i("count_include_pad", 1)}},
      {"AveragePool", "3-D", {1, 1, 4, 5, 6}, {k({2, 2, 3}), st({2, 1, 2}), pd({0, 1, 1, 1, 0, 1})}},
  };
  run_pool_table(cases);
}

TEST(OpsNnPool, GlobalPools) {
  std::vector<PoolCase> cases = {
      {"GlobalAveragePool", "2-D", {2, 3, 5, 4}, {}},
      {"GlobalAveragePool", "1-D", {1, 2, 7}, {}},
      {"GlobalAveragePool", "3-D", {1, 2, 2, 3, 4}, {}},
      {"GlobalMaxPool", "2-D", {2, 3, 5, 4}, {}},
      {"GlobalMaxPool", "1-D", {1, 2, 7}, {}},
      {"GlobalMaxPool", "3-D", {1, 2, 2, 3, 4}, {}},
  };
  run_pool_table(cases);
}

// Opset 11 models (before MaxPool took int8) behave the same.
TEST(OpsNnPool, Opset11) {
  std::vector<PoolCase> cases = {
      {"MaxPool", "ceil", {1, 2, 7, 7}, {k({3, 3}), st({2, 2}), ceil_on()}},
      {"AveragePool", "pads counted", {1, 2, 5, 5}, {k({2, 2}), pd({1, 1, 1, 1}), attr_i("count_include_pad", 1)}},
  };
  run_pool_table(cases, 11);
}

TEST(OpsNnPool, BuildErrors) {
  auto model = [](const char* op, std::vector<Attribute> attrs, std::vector<std::string> outs = {"y"}) {
    ModelBuilder mb(17);
    mb.input("x", DType::F32, {1, 1, 6, 6});
    mb.node(op, {"x"}, outs, std::move(attrs));
    for (const auto& o : outs) mb.output(o, o == "idx" ? DType::I64 : DType::F32);
    return mb.model;
  };
  expect_build_error(model("MaxPool", {}), "kernel_shape");
  expect_build_error(model("MaxPool", {k({2, 2}), attr_i("ceil_mode", 2)}), "ceil_mode");
  expect_build_error(model("MaxPool", {k({2, 2})}, {"y", "idx"}), "Indices");
  expect_build_error(model("AveragePool", {k({2, 2}), st({1})}), "strides");
  expect_build_error(model("AveragePool", {k({0, 2})}), "kernel_shape");
  expect_build_error(model("AveragePool", {k({2, 2}), attr_s("auto_pad", "same")}), "auto_pad");
  expect_build_error(model("MaxPool", {k({2, 2}), pd({0, 2, 0, 0})}), "smaller than kernel_shape");
  expect_build_error(model("MaxPool", {k({2, 2}), pd({0, 1, 0, int64_t{1} << 40})}), "2^31");
}

}  // namespace
}  // namespace tinyq::test
