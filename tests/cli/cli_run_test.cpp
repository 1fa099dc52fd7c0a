// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "model_builder.h"
#include "test_support.h"
#include "tinyq/model_io.h"
#include "tinyq/npz.h"
#include "tinyq/tinyq.h"

namespace tinyq {
namespace {

// Saves b's model as dir/<name>.onnx and runs it with `tinyq run` on x = one float.
test::CommandResult run_built(const std::string& dir, const std::string& name, const test::ModelBuilder& b) {
  save_model(b.model, dir + "/" + name + ".onnx");
  write_npz(dir + "/in.npz", {{"x", Tensor(DType::F32, {1})}});
  return test::run_cli("run " + dir + "/" + name + ".onnx --input " + dir + "/in.npz --output " + dir + "/o.npz");
}

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
  auto r = run_built(dir, "fancy", b);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("FancyOp node 'FancyOp_0': unsupported op 'FancyOp'"), std::string::npos) << r.err;
  test::ModelBuilder d;
  d.input("x", DType::F32, {1}).output("y").node("Relu", {"x"}, {"y"});
  d.model.graph.nodes[0].domain = "com.example";
  auto dom = run_built(dir, "domain", d);
  EXPECT_EQ(dom.exit_code, 2);
  EXPECT_NE(dom.err.find("domain 'com.example' is not supported"), std::string::npos) << dom.err;
}

// Names come from the file; a hostile one (a newline, a control character, bytes that are not
// UTF-8) must not break the error into several lines or put raw bytes on the terminal.
TEST(CliRun, NamesFromTheFileStayOnTheErrorLine) {
  std::string dir = test::temp_dir();
  test::ModelBuilder b;
  b.input("x\nsecond line", DType::F32, {1}).output("y").node("Fancy\rOp\x01\xff", {"x\nsecond line"}, {"y"});
  b.model.graph.nodes[0].name = "n\tode";
  auto r = run_built(dir, "hostile", b);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "error: " + dir + "/hostile.onnx: Fancy\\rOp\\x01\\xff node 'n\\tode': unsupported op 'Fancy\\rOp\\x01\\xff' at opset 17\n");
  tinyq_session* s = nullptr;  // the C API's message too
  EXPECT_NE(tinyq_session_create_by_path((dir + "/hostile.onnx").c_str(), nullptr, &s), TINYQ_OK);
  const std::string c_error = tinyq_last_error();
  EXPECT_EQ(c_error.find('\n'), std::string::npos) << c_error;
  EXPECT_NE(c_error.find("op type 'Fancy\\rOp\\x01\\xff' is not on tinyq's op allowlist"), std::string::npos) << c_error;
  test::ModelBuilder c;
  c.input("x\nsecond line", DType::F32, {1}).output("y").node("Relu", {"x\nsecond line"}, {"y"});
  auto m = run_built(dir, "names", c);
  EXPECT_EQ(m.exit_code, 2);
  EXPECT_EQ(std::count(m.err.begin(), m.err.end(), '\n'), 1) << m.err;
  EXPECT_NE(m.err.find("input 'x\\nsecond line': is missing"), std::string::npos) << m.err;
}

// A model whose shapes ask for a huge tensor gets one error line, not an allocation the
// system grants lazily and kills the process for when it is filled (12.8 GB on a 24 GB
// machine did that).
TEST(CliRun, HugeTensorsAreRefusedBeforeAllocating) {
  std::string dir = test::temp_dir();
  test::ModelBuilder b;
  Tensor shape(DType::I64, {3});
  const int64_t dims[] = {40000, 40000, 8};  // 51 GB of floats
  std::copy(dims, dims + 3, shape.data<int64_t>());
  b.input("x", DType::F32, {1}).initializer("shape", shape).output("y").node("Expand", {"x", "shape"}, {"y"});
  auto r = run_built(dir, "expand", b);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("Expand node 'Expand_0': a tensor of 51200000000 bytes is over the limit of 4294967296"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir + "/o.npz"));
}

}  // namespace
}  // namespace tinyq
