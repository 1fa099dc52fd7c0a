// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// Gemm (transA/transB, alpha/beta, every broadcast form of C, C absent) and MatMul (numpy
// semantics: 1-D promotion, batch broadcasting) against ONNX Runtime.

#include <random>

#include "nn_test_util.h"

namespace tinyq::test {
namespace {

struct GemmCase {
  const char* name;
  Shape a, b;
  bool has_c;
  Shape c;
  std::vector<Attribute> attrs;
};

TEST(OpsNnGemm, Table) {
  TINYQ_REQUIRE_ORT();
  const std::vector<GemmCase> cases = {
      {"plain, C [N]", {3, 4}, {4, 5}, true, {5}, {}},
      {"transA", {4, 3}, {4, 5}, true, {5}, {attr_i("transA", 1)}},
      {"transB, alpha, beta, C [M,N]", {3, 4}, {5, 4}, true, {3, 5},
       {attr_i("transB", 1), attr_f("alpha", 0.5f), attr_f("beta", 2.0f)}},
      {"both transposed, C [M,1]", {4, 3}, {5, 4}, true, {3, 1}, {attr_i("transA", 1), attr_i("transB", 1)}},
      {"C scalar", {2, 3}, {3, 4}, true, {}, {attr_f("beta", -1.5f)}},
      {"C [1,N]", {2, 3}, {3, 4}, true, {1, 4}, {}},
      {"C [1]", {2, 3}, {3, 4}, true, {1}, {}},
      {"C [1,1]", {2, 3}, {3, 4}, true, {1, 1}, {attr_f("alpha", 3.0f)}},
      {"no C", {3, 6}, {6, 2}, false, {}, {attr_f("alpha", -2.0f)}},
      {"beta 0 ignores C", {3, 4}, {4, 5}, true, {3, 5}, {attr_f("beta", 0.0f)}},
      {"PyTorch Linear", {2, 16}, {8, 16}, true, {8}, {attr_i("transB", 1)}},
  };
  std::mt19937 rng(5);
  ModelBuilder mb(17);
  NamedTensors feeds;
  std::vector<std::pair<std::string, std::string>> labels;
  for (size_t i = 0; i < cases.size(); ++i) {
    const GemmCase& c = cases[i];
    const std::string s = std::to_string(i);
    mb.input("a" + s, DType::F32, c.a);
    feeds.emplace_back("a" + s, random_tensor(rng, c.a));
    // Alternate constant and fed B so both paths run.
    if (i % 2 == 0) {
      mb.initializer("b" + s, random_tensor(rng, c.b));
    } else {
      mb.input("b" + s, DType::F32, c.b);
      feeds.emplace_back("b" + s, random_tensor(rng, c.b));
    }
    std::vector<std::string> ins = {"a" + s, "b" + s};
    if (c.has_c) {
      mb.initializer("c" + s, random_tensor(rng, c.c));
      ins.push_back("c" + s);
    }
    mb.node("Gemm", ins, {"y" + s}, c.attrs);
    mb.output("y" + s);
    labels.emplace_back("y" + s, c.name);
  }
  expect_matches_ort(mb.model, feeds, labels);
}

TEST(OpsNnMatMul, Table) {
  TINYQ_REQUIRE_ORT();
  const std::vector<std::pair<Shape, Shape>> cases = {
      {{3, 4}, {4, 5}},          {{2, 3, 4}, {2, 4, 5}},       {{2, 1, 3, 4}, {5, 4, 6}},
      {{4}, {2, 4, 5}},          {{2, 3, 4}, {4}},             {{4}, {4}},
      {{2, 3, 4}, {4, 5}},       {{3, 4}, {2, 4, 5}},          {{1, 2, 3, 4}, {3, 1, 4, 2}},
      {{1, 7}, {7, 1}},          {{4}, {4, 3}},                {{2, 5}, {5}},
  };
  std::mt19937 rng(6);
  ModelBuilder mb(13);
  NamedTensors feeds;
  std::vector<std::pair<std::string, std::string>> labels;
  for (size_t i = 0; i < cases.size(); ++i) {
    const std::string s = std::to_string(i);
    mb.input("a" + s, DType::F32, cases[i].first);
    mb.input("b" + s, DType::F32, cases[i].second);
    feeds.emplace_back("a" + s, random_tensor(rng, cases[i].first));
    feeds.emplace_back("b" + s, random_tensor(rng, cases[i].second));
    mb.node("MatMul", {"a" + s, "b" + s}, {"y" + s});
    mb.output("y" + s);
    labels.emplace_back("y" + s, shape_to_string(cases[i].first) + " x " + shape_to_string(cases[i].second));
  }
  expect_matches_ort(mb.model, feeds, labels);
}

TEST(OpsNnGemm, Errors) {
  ModelBuilder mb(17);
  mb.input("a", DType::F32, {3, 4});
  mb.initializer("b", Tensor(DType::F32, {4, 5, 1}));
  mb.node("Gemm", {"a", "b"}, {"y"});
  mb.output("y");
  expect_build_error(mb.model, "matrix");

  ModelBuilder bad_trans(17);
  bad_trans.input("a", DType::F32, {3, 4});
  bad_trans.initializer("b", Tensor(DType::F32, {4, 5}));
  bad_trans.node("Gemm", {"a", "b"}, {"y"}, {attr_i("transA", 2)});
  bad_trans.output("y");
  expect_build_error(bad_trans.model, "transA");

  // Mismatched inner dims and a C that does not broadcast are run-time errors naming the node.
  auto run_model = [](Shape a, Shape b, Shape c) {
    ModelBuilder m(17);
    m.input("a", DType::F32, a);
    m.input("b", DType::F32, b);
    m.initializer("c", Tensor(DType::F32, c));
    m.node("Gemm", {"a", "b", "c"}, {"y"});
    m.output("y");
    Session s(m.model);
    try {
      s.run(std::vector<Tensor>{Tensor(DType::F32, a), Tensor(DType::F32, b)});
    } catch (const Error& e) {
      EXPECT_NE(e.message().find("Gemm"), std::string::npos) << e.message();
      return e.message();
    }
    return std::string("no error");
  };
  EXPECT_NE(run_model({3, 4}, {5, 5}, {5}).find("inner dimensions"), std::string::npos);
  EXPECT_NE(run_model({3, 5}, {5, 5}, {2, 5}).find("broadcast"), std::string::npos);
}

TEST(OpsNnMatMul, Errors) {
  ModelBuilder mb(13);
  mb.input("a", DType::F32, {2, 3, 4});
  mb.input("b", DType::F32, {3, 4, 5});
  mb.node("MatMul", {"a", "b"}, {"y"});
  mb.output("y");
  Session s(mb.model);
  EXPECT_THROW(s.run(std::vector<Tensor>{Tensor(DType::F32, {2, 3, 4}), Tensor(DType::F32, {3, 4, 5})}), Error);
}

}  // namespace
}  // namespace tinyq::test
