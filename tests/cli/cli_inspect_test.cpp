// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/file_util.h"
#include "test_support.h"

namespace fs = std::filesystem;

namespace tinyq {
namespace {

// Exactly one line on stderr, `error: <file>: ...`, and exit code 2.
void expect_clean_error(const test::CommandResult& r, const std::string& file, const std::string& what) {
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.err.rfind("error: " + file + ": ", 0), 0u) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find(what), std::string::npos) << r.err;
}

TEST(CliBasics, VersionHelpAndUsage) {
  auto v = test::run_cli("--version");
  EXPECT_EQ(v.exit_code, 0);
  EXPECT_EQ(v.out.rfind("tinyq ", 0), 0u);
  auto h = test::run_cli("--help");
  EXPECT_EQ(h.exit_code, 0);
  EXPECT_NE(h.out.find("inspect"), std::string::npos);
  auto sub = test::run_cli("inspect --help");
  EXPECT_EQ(sub.exit_code, 0);
  EXPECT_NE(sub.out.find("--json"), std::string::npos);
  auto none = test::run_cli("");
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_EQ(none.err.rfind("error: ", 0), 0u);
  auto bad = test::run_cli("frobnicate");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_EQ(bad.err.rfind("error: ", 0), 0u);
}

TEST(CliInspect, EveryRealModelAndReference) {
  TINYQ_REQUIRE_SHARED();
  int n = 0;
  for (const char* sub : {"/models/real", "/reference/ort-1.30"}) {
    for (const auto& e : fs::directory_iterator(test::shared_dir() + sub)) {
      if (e.path().extension() != ".onnx") continue;
      std::string path = e.path().string();
      auto r = test::run_cli("inspect --json " + path);
      if (path.find("vmaf_tiny_v1_medium.onnx") != std::string::npos) {
        expect_clean_error(r, path, "mlp_medium_final.onnx.data' does not exist");
        continue;
      }
      ASSERT_EQ(r.exit_code, 0) << path << ": " << r.err;
      auto j = nlohmann::json::parse(r.out);
      EXPECT_GT(j["node_count"].get<int>(), 0) << path;
      EXPECT_FALSE(j["inputs"].empty()) << path;
      bool int8 = path.find(".int8.onnx") != std::string::npos;
      EXPECT_EQ(j["quantised"].get<bool>(), int8) << path;
      ++n;
    }
  }
  EXPECT_GE(n, 30);
}

TEST(CliInspect, ReportsFormatsAndExternalData) {
  TINYQ_REQUIRE_SHARED();
  std::string ref = test::shared_dir() + "/reference/ort-1.30/";
  auto dyn = nlohmann::json::parse(test::run_cli("inspect --json " + ref + "nr_metric_v1.ort_dyn.int8.onnx").out);
  EXPECT_NE(dyn["quant_format"].get<std::string>().find("dynamic"), std::string::npos);
  EXPECT_EQ(dyn["ops"]["ConvInteger"], 11);
  EXPECT_EQ(dyn["opset"], 18);
  auto qdq = nlohmann::json::parse(test::run_cli("inspect --json " + ref + "vmaf_tiny_v3.ort_qdq.int8.onnx").out);
  EXPECT_NE(qdq["quant_format"].get<std::string>().find("QDQ"), std::string::npos);
  auto ext = nlohmann::json::parse(test::run_cli("inspect --json " + test::shared_dir() + "/models/real/fr_regressor_v1.onnx").out);
  EXPECT_EQ(ext["external_data_files"][0], "fr_regressor_v1.onnx.data");
  EXPECT_EQ(ext["inputs"][0]["shape"][0], "batch");
  EXPECT_EQ(ext["inputs"][0]["shape"][1], 6);
  auto text = test::run_cli("inspect " + test::shared_dir() + "/models/real/vmaf_tiny_v3.onnx");
  EXPECT_EQ(text.exit_code, 0);
  EXPECT_NE(text.out.find("input  features float [N,6]"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("782 parameters (initializer elements)"), std::string::npos) << text.out;
}

TEST(CliInspect, BadFilesGiveOneErrorLineAndExit2) {
  std::string dir = test::temp_dir();
  write_file_atomic(dir + "/empty.onnx", "");
  write_file_atomic(dir + "/random.onnx", std::string("\x08\x07\x12\xff\xff\xff\xff\x0f garbage", 17));
  write_file_atomic(dir + "/model.txt", "hello");
  expect_clean_error(test::run_cli("inspect " + dir + "/empty.onnx"), dir + "/empty.onnx", "not a valid ONNX model");
  expect_clean_error(test::run_cli("inspect " + dir + "/random.onnx"), dir + "/random.onnx", "not a valid ONNX model");
  expect_clean_error(test::run_cli("inspect " + dir + "/missing.onnx"), dir + "/missing.onnx", "no such file");
  expect_clean_error(test::run_cli("inspect " + dir + "/model.txt"), dir + "/model.txt", "expected an .onnx");
  if (!test::shared_dir().empty()) {
    std::string real = read_file_bounded(test::shared_dir() + "/models/real/nr_metric_v1.onnx", 1 << 24);
    for (size_t cut : {size_t{1}, real.size() / 3, real.size() - 1}) {
      std::string path = dir + "/cut" + std::to_string(cut) + ".onnx";
      write_file_atomic(path, real.substr(0, cut));
      expect_clean_error(test::run_cli("inspect " + path), path, "not a valid ONNX model");
    }
  }
}

}  // namespace
}  // namespace tinyq
