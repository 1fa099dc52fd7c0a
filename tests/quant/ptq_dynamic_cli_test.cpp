// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// `tinyq ptq-dynamic`: its two output lines, the default sibling output, the --report-out JSON
// (each number checked against the files), and the refusals (exit 2, one `error:` line, no file
// written).

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "common/file_util.h"
#include "common/sha256.h"
#include "model_builder.h"
#include "quant_test_util.h"
#include "tinyq/model_io.h"
#include "tinyq/quantize.h"
#include "tinyq/registry.h"

namespace tinyq {
namespace {

namespace fs = std::filesystem;

// A small fp32 MLP (Gemm -> Relu -> MatMul) in `dir`.
std::string write_mlp(const std::string& dir, const std::string& name = "mlp.onnx") {
  test::ModelBuilder b;
  ValueInfo x;
  x.name = "x";
  x.dtype = DType::F32;
  x.has_shape = true;
  x.dims = {Dim{-1, "N"}, Dim{4, ""}};
  b.model.graph.inputs.push_back(x);
  std::vector<float> w1(4 * 8), w2(8 * 2);
  for (size_t i = 0; i < w1.size(); ++i) w1[i] = 0.1f * static_cast<float>(i % 7) - 0.3f;
  for (size_t i = 0; i < w2.size(); ++i) w2[i] = 0.05f * static_cast<float>(i % 5) - 0.1f;
  b.initializer("w1", Tensor::from_vector<float>({8, 4}, w1)).initializer("b1", Tensor(DType::F32, {8}));
  b.initializer("w2", Tensor::from_vector<float>({8, 2}, w2));
  b.node("Gemm", {"x", "w1", "b1"}, {"h"}, {Attribute::make_int("transB", 1)})
      .node("Relu", {"h"}, {"r"})
      .node("MatMul", {"r", "w2"}, {"y"})
      .output("y");
  std::string path = dir + "/" + name;
  save_model(b.model, path);
  return path;
}

std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

std::set<std::string> files_in(const std::string& dir) {
  std::set<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.insert(e.path().filename().string());
  return out;
}

std::string with_commas(uint64_t v) {
  std::string d = std::to_string(v), out;
  for (size_t i = 0; i < d.size(); ++i) {
    if (i && (d.size() - i) % 3 == 0) out += ',';
    out += d[i];
  }
  return out;
}

// Exit 2 and exactly one line on stderr, `error: <subject>: ...` containing `needle`.
void expect_one_error(const test::CommandResult& r, const std::string& needle) {
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  std::vector<std::string> err = lines(r.err);
  ASSERT_EQ(err.size(), 1u) << r.err;
  EXPECT_EQ(err[0].rfind("error: ", 0), 0u) << err[0];
  EXPECT_NE(err[0].find(needle), std::string::npos) << err[0];
}

TEST(PtqDynamicCli, WritesTheSiblingAndPrintsTwoLines) {
  const std::string dir = test::temp_dir();
  const std::string model = write_mlp(dir);
  const std::string sha = sha256_file(model);
  auto r = test::run_cli("ptq-dynamic " + model);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string out = dir + "/mlp.int8.onnx";
  ASSERT_TRUE(file_exists(out));
  std::vector<std::string> l = lines(r.out);
  ASSERT_EQ(l.size(), 2u) << r.out;
  EXPECT_EQ(l[0], "[ptq-dynamic] " + model + " -> " + out + " per-channel=false");
  const uint64_t a = file_size(model), b = file_size(out);
  char ratio[32];
  std::snprintf(ratio, sizeof ratio, "%.2f", static_cast<double>(b) / static_cast<double>(a));
  EXPECT_EQ(l[1], "done — " + with_commas(a) + " -> " + with_commas(b) + " bytes (" + ratio + "×)");
  EXPECT_EQ(sha256_file(model), sha);
  EXPECT_EQ(files_in(dir), (std::set<std::string>{"mlp.onnx", "mlp.int8.onnx"}));
  Model q = load_model(out);
  EXPECT_EQ(test::op_count(q, "MatMulInteger"), 2);
  EXPECT_EQ(test::op_count(q, "Gemm") + test::op_count(q, "MatMul"), 0);
}

TEST(PtqDynamicCli, DefaultOutputIsTheRegistrysSidecar) {
  // One naming rule (common/file_util) serves the quantisers and the registry's loader.
  EXPECT_EQ(int8_sibling_path("a/b/model.onnx"), "a/b/model.int8.onnx");
  EXPECT_EQ(int8_sibling_path("./x.y.onnx"), "./x.y.int8.onnx");
  EXPECT_EQ(int8_sibling_path("noext"), "noext.int8.onnx");
}

TEST(PtqDynamicCli, PerChannelAndOpTypes) {
  const std::string dir = test::temp_dir();
  const std::string model = write_mlp(dir);
  auto r = test::run_cli("ptq-dynamic " + model + " --output " + dir + "/only_matmul.onnx --per-channel --op-types MatMul");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("per-channel=true"), std::string::npos) << r.out;
  Model q = load_model(dir + "/only_matmul.onnx");
  EXPECT_EQ(test::op_count(q, "MatMulInteger"), 1);
  EXPECT_EQ(test::op_count(q, "Gemm"), 1);
  EXPECT_EQ(q.graph.find_initializer("w2_s")->tensor.shape(), (Shape{2}));
  r = test::run_cli("ptq-dynamic " + model + " --output " + dir + "/both.onnx --op-types 'Gemm, MatMul'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(test::op_count(load_model(dir + "/both.onnx"), "MatMulInteger"), 2);
}

TEST(PtqDynamicCli, ReportNumbersMatchTheFiles) {
  const std::string dir = test::temp_dir();
  const std::string model = write_mlp(dir);
  const std::string out = dir + "/q.onnx", report = dir + "/report.json";
  auto r = test::run_cli("ptq-dynamic " + model + " --output " + out + " --report-out " + report);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::ifstream in(report);
  nlohmann::json j = nlohmann::json::parse(in);
  EXPECT_EQ(j["mode"], "dynamic");
  EXPECT_EQ(j["input"], model);
  EXPECT_EQ(j["output"], out);
  EXPECT_EQ(j["fp32_bytes"].get<uint64_t>(), file_size(model));
  EXPECT_EQ(j["int8_bytes"].get<uint64_t>(), file_size(out));
  EXPECT_DOUBLE_EQ(j["size_ratio"].get<double>(),
                   static_cast<double>(file_size(out)) / static_cast<double>(file_size(model)));
  EXPECT_EQ(j["per_channel"], false);
  EXPECT_EQ(j["op_types"], (nlohmann::json{"MatMul", "Gemm", "Conv"}));
  Model q = load_model(out);
  EXPECT_EQ(j["nodes_rewritten"].get<int>(), test::op_count(q, "MatMulInteger"));
  EXPECT_EQ(j["rewritten_by_op_type"], (nlohmann::json{{"Gemm", 1}, {"MatMul", 1}}));
  EXPECT_EQ(j["left_fp32"].size(), 0u);
  // Provenance: the command, and the digests of exactly the files read and written.
  const nlohmann::json& p = j["run_provenance"];
  ASSERT_TRUE(p.is_object()) << j.dump(2);
  EXPECT_NE(p["command_line"].get<std::string>().find("ptq-dynamic"), std::string::npos);
  EXPECT_FALSE(p["timestamp_utc"].get<std::string>().empty());
  EXPECT_TRUE(p.contains("host"));
  EXPECT_TRUE(p.contains("libraries"));
  ASSERT_EQ(p["inputs"].size(), 1u);
  ASSERT_EQ(p["outputs"].size(), 1u);
  EXPECT_EQ(p["inputs"][0]["sha256"], sha256_file(model));
  EXPECT_EQ(p["inputs"][0]["bytes"].get<uint64_t>(), file_size(model));
  EXPECT_EQ(p["outputs"][0]["sha256"], sha256_file(out));
  EXPECT_EQ(p["outputs"][0]["bytes"].get<uint64_t>(), file_size(out));
}

TEST(PtqDynamicCli, ReportListsNodesLeftFp32) {
  const std::string dir = test::temp_dir();
  test::ModelBuilder b;
  b.input("x", DType::F32, {2, 4}).input("v", DType::F32, {4, 3});
  b.node("MatMul", {"x", "v"}, {"y"}).output("y");
  save_model(b.model, dir + "/act.onnx");
  auto r = test::run_cli("ptq-dynamic " + dir + "/act.onnx --report-out " + dir + "/r.json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("warning:"), std::string::npos) << r.err;
  std::ifstream in(dir + "/r.json");
  nlohmann::json j = nlohmann::json::parse(in);
  EXPECT_EQ(j["nodes_rewritten"], 0);
  ASSERT_EQ(j["left_fp32"].size(), 1u);
  EXPECT_EQ(j["left_fp32"][0]["op_type"], "MatMul");
  EXPECT_EQ(j["left_fp32"][0]["reason"], "input B is not a constant initializer");
}

TEST(PtqDynamicCli, ExternalDataIsInlinedAndReported) {
  TINYQ_REQUIRE_SHARED();
  const std::string dir = test::temp_dir();
  for (const char* f : {"vmaf_tiny_v1.onnx", "vmaf_tiny_v1.onnx.data"})
    fs::copy_file(test::shared_dir() + "/models/real/" + f, dir + "/" + f);
  const std::string model = dir + "/vmaf_tiny_v1.onnx", data = dir + "/vmaf_tiny_v1.onnx.data";
  // Overwriting the input's data file is refused like overwriting the input.
  expect_one_error(test::run_cli("ptq-dynamic " + model + " --output " + data), "external data file");
  auto r = test::run_cli("ptq-dynamic " + model + " --report-out " + dir + "/r.json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string out = dir + "/vmaf_tiny_v1.int8.onnx";
  EXPECT_TRUE(load_model_file(out).external_data.empty());  // one self-contained file
  std::ifstream in(dir + "/r.json");
  nlohmann::json j = nlohmann::json::parse(in);
  EXPECT_EQ(j["fp32_bytes"].get<uint64_t>(), file_size(model) + file_size(data));
  EXPECT_EQ(j["external_data"], (nlohmann::json{data}));
  const nlohmann::json& inputs = j["run_provenance"]["inputs"];
  ASSERT_EQ(inputs.size(), 2u);
  EXPECT_EQ(inputs[1]["sha256"], sha256_file(data));
  EXPECT_EQ(test::op_count(load_model(out), "MatMulInteger"), 3);
}

TEST(PtqDynamicCli, MissingInput) {
  const std::string dir = test::temp_dir();
  expect_one_error(test::run_cli("ptq-dynamic " + dir + "/nope.onnx"), dir + "/nope.onnx: no such file");
  EXPECT_TRUE(files_in(dir).empty());
}

TEST(PtqDynamicCli, NotAnOnnxFile) {
  const std::string dir = test::temp_dir();
  std::ofstream(dir + "/model.txt") << "hello";
  expect_one_error(test::run_cli("ptq-dynamic " + dir + "/model.txt"), "model.txt: expected an .onnx");
  // A file named .onnx that is not a model.
  std::ofstream(dir + "/junk.onnx") << "not protobuf at all \xff\xff\xff";
  auto r = test::run_cli("ptq-dynamic " + dir + "/junk.onnx");
  expect_one_error(r, "junk.onnx");
  EXPECT_EQ(files_in(dir), (std::set<std::string>{"model.txt", "junk.onnx"}));
}

TEST(PtqDynamicCli, OutputEqualToInputIsRefused) {
  const std::string dir = test::temp_dir();
  const std::string model = write_mlp(dir);
  const std::string sha = sha256_file(model);
  expect_one_error(test::run_cli("ptq-dynamic " + model + " --output " + model), "is the input model");
  // The same file under another spelling.
  fs::create_directories(dir + "/sub");
  expect_one_error(test::run_cli("ptq-dynamic " + model + " --output " + dir + "/sub/../mlp.onnx"), "is the input model");
  EXPECT_EQ(sha256_file(model), sha);
  EXPECT_EQ(files_in(dir), (std::set<std::string>{"mlp.onnx", "sub"}));
}

TEST(PtqDynamicCli, AlreadyQuantisedIsRefused) {
  const std::string dir = test::temp_dir();
  const std::string model = write_mlp(dir);
  ASSERT_EQ(test::run_cli("ptq-dynamic " + model).exit_code, 0);
  const std::string int8 = dir + "/mlp.int8.onnx";
  expect_one_error(test::run_cli("ptq-dynamic " + int8 + " --output " + dir + "/again.onnx"), "already quantised");
  EXPECT_FALSE(file_exists(dir + "/again.onnx"));
  if (!test::shared_dir().empty()) {
    // The fork's shipped sidecar (made by ONNX Runtime).
    expect_one_error(test::run_cli("ptq-dynamic " + test::shared_dir() + "/models/real/vmaf_tiny_v3.int8.onnx --output " +
                                   dir + "/again.onnx"),
                     "already quantised");
    EXPECT_FALSE(file_exists(dir + "/again.onnx"));
  }
}

TEST(PtqDynamicCli, UnknownOpTypeIsRefused) {
  const std::string dir = test::temp_dir();
  const std::string model = write_mlp(dir);
  expect_one_error(test::run_cli("ptq-dynamic " + model + " --op-types MatMul,Relu"), "'Relu' has no dynamic quantiser");
  EXPECT_EQ(files_in(dir), (std::set<std::string>{"mlp.onnx"}));
}

TEST(PtqDynamicCli, ReportPathMustNotBeAModel) {
  const std::string dir = test::temp_dir();
  const std::string model = write_mlp(dir);
  const std::string sha = sha256_file(model);
  expect_one_error(test::run_cli("ptq-dynamic " + model + " --report-out " + model), "--report-out");
  EXPECT_EQ(sha256_file(model), sha);
  EXPECT_EQ(files_in(dir), (std::set<std::string>{"mlp.onnx"}));
}

}  // namespace
}  // namespace tinyq
