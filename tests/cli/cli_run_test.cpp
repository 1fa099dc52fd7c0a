// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include <gtest/gtest.h>

#include "model_builder.h"
#include "test_support.h"
#include "tinyq/model_io.h"
#include "tinyq/npz.h"

namespace tinyq {
namespace {

// A model with a symbolic batch dim: y = Identity(x), x: [N, 3] float.
std::string write_identity_model(const std::string& dir) {
  test::ModelBuilder b;
  ValueInfo x;
  x.name = "x";
  x.dtype = DType::F32;
  x.has_shape = true;
  x.dims = {Dim{-1, "N"}, Dim{3, ""}};
  b.model.graph.inputs.push_back(x);
  b.output("y").node("Identity", {"x"}, {"y"});
  std::string path = dir + "/identity.onnx";
  save_model(b.model, path);
  return path;
}

TEST(CliRun, RunsAndWritesOutputsByName) {
  std::string dir = test::temp_dir();
  std::string model = write_identity_model(dir);
  Tensor x = Tensor::from_vector<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  write_npz(dir + "/in.npz", {{"x", x}});
  auto r = test::run_cli("run " + model + " --input " + dir + "/in.npz --output " + dir + "/out.npz");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  NamedTensors out = read_npz(dir + "/out.npz");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].first, "y");
  EXPECT_TRUE(out[0].second.bit_equal(x));
}

TEST(CliRun, BadFeedsNameTheInputAndShapes) {
  std::string dir = test::temp_dir();
  std::string model = write_identity_model(dir);
  struct Case {
    const char* file;
    NamedTensors feeds;
    const char* message;
  } cases[] = {
      {"missing.npz", {{"z", Tensor(DType::F32, {1, 3})}}, "input 'x': is missing (expected shape [N,3], float)"},
      {"extra.npz", {{"x", Tensor(DType::F32, {1, 3})}, {"z", Tensor(DType::F32, {1})}}, "input 'z': is not an input of the model"},
      {"shape.npz", {{"x", Tensor(DType::F32, {2, 4})}}, "input 'x': expected shape [N,3] (float), got [2,4] (float)"},
      {"rank.npz", {{"x", Tensor(DType::F32, {3})}}, "expected shape [N,3] (float), got [3] (float)"},
      {"type.npz", {{"x", Tensor(DType::F64, {1, 3})}}, "got [1,3] (double)"},
  };
  for (const auto& c : cases) {
    std::string in = dir + "/" + c.file;
    write_npz(in, c.feeds);
    auto r = test::run_cli("run " + model + " --input " + in + " --output " + dir + "/out.npz");
    EXPECT_EQ(r.exit_code, 2) << c.file;
    EXPECT_EQ(r.err.rfind("error: " + in + ": ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  auto missing = test::run_cli("run " + model + " --input " + dir + "/nope.npz --output " + dir + "/o.npz");
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("nope.npz: no such file"), std::string::npos) << missing.err;
}

TEST(CliRun, UnknownOpIsRefusedAtLoadNamingTheNode) {
  std::string dir = test::temp_dir();
  test::ModelBuilder b;
  b.input("x", DType::F32, {1}).output("y").node("FancyOp", {"x"}, {"y"});
  save_model(b.model, dir + "/fancy.onnx");
  test::ModelBuilder d;
  d.input("x", DType::F32, {1}).output("y").node("Relu", {"x"}, {"y"});
  d.model.graph.nodes[0].domain = "com.example";
  save_model(d.model, dir + "/domain.onnx");
  write_npz(dir + "/in.npz", {{"x", Tensor(DType::F32, {1})}});
  auto r = test::run_cli("run " + dir + "/fancy.onnx --input " + dir + "/in.npz --output " + dir + "/o.npz");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("FancyOp node 'FancyOp_0': unsupported op 'FancyOp'"), std::string::npos) << r.err;
  auto dom = test::run_cli("run " + dir + "/domain.onnx --input " + dir + "/in.npz --output " + dir + "/o.npz");
  EXPECT_EQ(dom.exit_code, 2);
  EXPECT_NE(dom.err.find("domain 'com.example' is not supported"), std::string::npos) << dom.err;
}

}  // namespace
}  // namespace tinyq
