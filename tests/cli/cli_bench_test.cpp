// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// `tinyq bench`: what it reports (not how fast anything is: speed is bench/'s business), its
// note on dynamic convolution files, ONNX Runtime side by side, and its refusals.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "test_support.h"

namespace tinyq {
namespace {

namespace fs = std::filesystem;

// Copies an example into dir and writes its dynamic int8 sibling with `tinyq ptq-dynamic`.
// Returns the fp32 path; the int8 one is <dir>/<name>.int8.onnx.
std::string with_dynamic_int8(const std::string& dir, const std::string& name) {
  const std::string fp32 = dir + "/" + name + ".onnx";
  fs::copy_file(std::string(TINYQ_SOURCE_DIR) + "/examples/" + name + ".onnx", fp32);
  const test::CommandResult r = test::run_cli("ptq-dynamic " + fp32);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return fp32;
}

void expect_sane_row(const nlohmann::json& row, const std::string& runtime) {
  ASSERT_FALSE(row.contains("error")) << row.dump();
  EXPECT_EQ(row["runtime"], runtime);
  const double p10 = row["p10_us"], median = row["median_us"], p90 = row["p90_us"];
  EXPECT_GT(median, 0.0);
  EXPECT_LE(p10, median);
  EXPECT_LE(median, p90);
  EXPECT_GE(row["runs"].get<int64_t>(), 1);
}

TEST(CliBench, JsonHasBothModelsTheRatioAndTheCpu) {
  const std::string dir = test::temp_dir();
  const std::string fp32 = with_dynamic_int8(dir, "mlp_regressor");
  const test::CommandResult r =
      test::run_cli("bench " + fp32 + " --int8 " + dir + "/mlp_regressor.int8.onnx --seconds 0.05 --batch 4 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["results"].size(), 2u);
  expect_sane_row(j["results"][0], "tinyq");
  expect_sane_row(j["results"][1], "tinyq");
  EXPECT_EQ(j["results"][1]["model"], dir + "/mlp_regressor.int8.onnx");
  const double ratio = j["fp32_over_int8"];
  EXPECT_DOUBLE_EQ(ratio, j["results"][0]["median_us"].get<double>() / j["results"][1]["median_us"].get<double>());
  EXPECT_EQ(j["batch"], 4);
  EXPECT_FALSE(j["features"].get<std::string>().empty());
  EXPECT_TRUE(j["int8_dot_product"].is_boolean());
  // An MLP's dynamic file quantises MatMul inputs only: no note about convolutions.
  EXPECT_FALSE(j.contains("note")) << j.dump();
}

TEST(CliBench, NotesThatADynamicConvolutionFileQuantisesAtRunTime) {
  const std::string dir = test::temp_dir();
  const std::string fp32 = with_dynamic_int8(dir, "residual_filter");
  const test::CommandResult r = test::run_cli("bench " + fp32 + " --int8 " + dir +
                                              "/residual_filter.int8.onnx --seconds 0.05 --shape degraded=1,1,16,16");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("tinyq fp32 / int8 latency: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("note: residual_filter.int8.onnx quantises the input of its 3 convolutions at run time"),
            std::string::npos)
      << r.out;
  // The fp32 file given as --int8: nothing to note.
  const test::CommandResult plain =
      test::run_cli("bench " + fp32 + " --int8 " + fp32 + " --seconds 0.05 --shape degraded=1,1,16,16");
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_EQ(plain.out.find("note:"), std::string::npos) << plain.out;
}

TEST(CliBench, OnnxRuntimeSideBySide) {
  TINYQ_REQUIRE_ORT();
  const std::string dir = test::temp_dir();
  const std::string fp32 = with_dynamic_int8(dir, "mlp_regressor");
  const test::CommandResult r =
      test::run_cli("bench " + fp32 + " --int8 " + dir + "/mlp_regressor.int8.onnx --seconds 0.05 --ort --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["results"].size(), 4u);
  expect_sane_row(j["results"][2], "onnxruntime");
  expect_sane_row(j["results"][3], "onnxruntime");
  EXPECT_GT(j["ort_fp32_over_tinyq_fp32"].get<double>(), 0.0);
  EXPECT_GT(j["ort_fp32_over_tinyq_int8"].get<double>(), 0.0);
}

// TINYQ_PROFILE=1 prints the mean time per step when the session ends, and a convolution
// chain's time per layer (and per quantisation between layers) under its step.
TEST(CliBench, ProfileShowsEachLayerOfAConvChain) {
  TINYQ_REQUIRE_SHARED();
  const std::string model = test::shared_dir() + "/models/real/nr_metric_v1.int8.onnx";
  ::setenv("TINYQ_PROFILE", "1", 1);
  const test::CommandResult r = test::run_cli("bench " + model + " --seconds 0.05");
  ::unsetenv("TINYQ_PROFILE");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* line : {"tinyq profile: ", "ConvChain node ", "layer 0: 3x3 conv, stride 2x2, 1 -> 16 channels",
                           "layer 1: depthwise 3x3 conv, stride 2x2, 16 -> 16 channels",
                           "layer 9: its output quantised (DynamicQuantizeLinear)",
                           "layer 10: 1x1 conv, 64 -> 128 channels"})
    EXPECT_NE(r.err.find(line), std::string::npos) << line << "\n" << r.err;
  // The last layer's output is the chain's: nothing quantises it.
  EXPECT_EQ(r.err.find("layer 10: its output quantised"), std::string::npos) << r.err;
  // Without the variable, no profile.
  const test::CommandResult quiet = test::run_cli("bench " + model + " --seconds 0.05");
  ASSERT_EQ(quiet.exit_code, 0) << quiet.err;
  EXPECT_EQ(quiet.err.find("tinyq profile"), std::string::npos) << quiet.err;
}

TEST(CliBench, BadInputIsOneErrorLineAndExit2) {
  const std::string dir = test::temp_dir();
  const std::string fp32 = dir + "/mlp_regressor.onnx";
  fs::copy_file(std::string(TINYQ_SOURCE_DIR) + "/examples/mlp_regressor.onnx", fp32);
  {
    std::ofstream junk(dir + "/junk.onnx", std::ios::binary);
    junk << "not a protobuf at all \x01\x02\x03";
  }
  const std::string cases[] = {
      "bench " + dir + "/missing.onnx",
      "bench " + dir + "/junk.onnx",
      "bench " + fp32 + " --int8 " + dir + "/missing.int8.onnx",
      "bench " + fp32 + " --shape features=1,x",
      "bench " + fp32 + " --shape features",
      "bench " + fp32 + " --shape features=2,7 --seconds 0.05",  // the model takes [N, 6]
  };
  for (const std::string& args : cases) {
    const test::CommandResult r = test::run_cli(args);
    EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.out << r.err;
    EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << args << "\n" << r.err;
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << args << "\n" << r.err;
  }
}

}  // namespace
}  // namespace tinyq
