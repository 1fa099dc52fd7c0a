// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/file_util.h"
#include "common/sha256.h"
#include "test_support.h"
#include "tinyq/model_io.h"

namespace tinyq {
namespace {

const char* kFiles[] = {"mlp_regressor.onnx", "residual_filter.onnx", "registry.json", "sample_features.npz",
                        "sample_image.npz", "gate_data.npz"};

// The checked-in examples are exactly what the generator writes, byte for byte.
TEST(Examples, CheckedInFilesMatchTheGenerator) {
  std::string dir = test::temp_dir();
  auto r = test::run_command(test::binary_dir() + "/make_examples " + dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* f : kFiles) {
    std::string want = read_file_bounded(test::source_dir() + "/examples/" + f, 1 << 20);
    std::string got = read_file_bounded(dir + "/" + f, 1 << 20);
    EXPECT_EQ(sha256_hex(want), sha256_hex(got)) << f << " differs: rerun build/make_examples examples";
  }
}

TEST(Examples, RegistryDigestsMatchAndModelsRunInOnnxRuntime) {
  std::string dir = test::source_dir() + "/examples/";
  auto registry = nlohmann::json::parse(read_file_bounded(dir + "registry.json", 1 << 20));
  ASSERT_EQ(registry["models"].size(), 2u);
  for (const auto& entry : registry["models"]) {
    std::string path = dir + entry["onnx"].get<std::string>();
    EXPECT_EQ(sha256_file(path), entry["sha256"].get<std::string>()) << path;
  }
  TINYQ_REQUIRE_ORT();
  Tensor features = Tensor::from_vector<float>({2, 6}, {0.9f, 0.5f, 0.7f, 0.8f, 0.9f, 3.0f, 0.95f, 0.6f, 0.8f, 0.9f, 0.95f, 9.0f});
  NamedTensors mlp = test::ort_run(dir + "mlp_regressor.onnx", {{"features", features}});
  ASSERT_EQ(mlp.size(), 1u);
  EXPECT_EQ(shape_to_string(mlp[0].second.shape()), "[2]");
  Tensor image(DType::F32, {1, 1, 16, 16});
  for (int i = 0; i < 256; ++i) image.data<float>()[i] = static_cast<float>(i) / 255.0f;
  NamedTensors filt = test::ort_run(dir + "residual_filter.onnx", {{"degraded", image}});
  ASSERT_EQ(filt.size(), 1u);
  EXPECT_EQ(shape_to_string(filt[0].second.shape()), "[1,1,16,16]");
  EXPECT_LE(test::max_abs(filt[0].second), 1.0);
}

}  // namespace
}  // namespace tinyq
