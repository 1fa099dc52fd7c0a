// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// `tinyq registry set`: one entry changes, every other byte of meaning stays, the write is atomic,
// and an edit that would make the registry invalid writes nothing.

#include <sys/stat.h>

#include <filesystem>

#include "registry_test_util.h"

namespace tinyq::test {
namespace {

namespace fs = std::filesystem;

ino_t inode_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0);
  return st.st_ino;
}

// Files in dir other than the ones named.
std::vector<std::string> stray_files(const std::string& dir, const std::vector<std::string>& expected) {
  std::vector<std::string> out;
  for (const auto& f : fs::directory_iterator(dir)) {
    std::string name = f.path().filename().string();
    if (std::find(expected.begin(), expected.end(), name) == expected.end()) out.push_back(name);
  }
  return out;
}

// A copy of the real registry, byte for byte, with vmaf_tiny_v2 (fp32, no int8) and vmaf_tiny_v4's
// files beside it.
std::string real_copy(const std::string& dir) {
  for (const char* f : {"registry.json", "registry.schema.json", "vmaf_tiny_v2.onnx", "vmaf_tiny_v4.onnx",
                        "vmaf_tiny_v4.int8.onnx"})
    copy_real(dir, f);
  return dir + "/registry.json";
}

TEST(RegistrySet, SameValuesRewriteTheFileByteForByte) {
  TINYQ_REQUIRE_SHARED();
  std::string dir = temp_dir();
  std::string path = real_copy(dir);
  std::string before = read_file_bounded(path, 1 << 20);
  auto res = run_cli("registry set vmaf_tiny_v4 --quant-mode dynamic --budget 0.01 --registry " + path);
  EXPECT_EQ(res.exit_code, 0) << res.out << res.err;
  EXPECT_EQ(res.out, path + ": vmaf_tiny_v4 set to quant_mode dynamic, int8_sha256 "
                            "203a25905a3797b1cc3e3f347f4f6f491b491000d4424017beef64219767a9e9\n");
  EXPECT_EQ(read_file_bounded(path, 1 << 20), before);
}

TEST(RegistrySet, QuantiseAnFp32EntryKeepsEverythingElse) {
  TINYQ_REQUIRE_SHARED();
  std::string dir = temp_dir();
  std::string path = real_copy(dir);
  ojson before = read_ojson(path);
  ino_t old_inode = inode_of(path);
  // Any valid model will do as the int8 file; it lives elsewhere and is copied beside the model.
  std::string elsewhere = temp_dir() + "/new.int8.onnx";
  std::string sha = write_identity_model(elsewhere);
  auto res = run_cli("registry set vmaf_tiny_v2 --quant-mode dynamic --budget 0.02 --int8 " + elsewhere +
                     " --registry " + path);
  ASSERT_EQ(res.exit_code, 0) << res.out << res.err;
  EXPECT_EQ(sha256_file(dir + "/vmaf_tiny_v2.int8.onnx"), sha);

  ojson after = read_ojson(path);
  size_t i = entry_index(before, "vmaf_tiny_v2");
  ojson expected = before;
  ojson& e = expected["models"][i];
  // The new keys slot into the entry's sorted key order, as the fork writes them.
  ojson rebuilt = ojson::object();
  for (auto it = e.begin(); it != e.end(); ++it) {
    if (it.key() == "kind") rebuilt["int8_sha256"] = sha;
    rebuilt[it.key()] = it.value();
    if (it.key() == "opset") {
      rebuilt["quant_accuracy_budget_plcc"] = 0.02;
      rebuilt["quant_mode"] = "dynamic";
    }
  }
  e = rebuilt;
  EXPECT_EQ(after.dump(), expected.dump());
  // Written by rename (a new inode), leaving no temp file behind.
  EXPECT_NE(inode_of(path), old_inode);
  EXPECT_EQ(stray_files(dir, {"registry.json", "registry.schema.json", "vmaf_tiny_v2.onnx", "vmaf_tiny_v4.onnx",
                              "vmaf_tiny_v4.int8.onnx", "vmaf_tiny_v2.int8.onnx"}),
            std::vector<std::string>{});
  EXPECT_TRUE(validate_registry(path).ok());
  // The loader now redirects, and checks the new digest.
  Registry reg = load_registry(path);
  EXPECT_EQ(load_verified_model(reg, "vmaf_tiny_v2").path, dir + "/vmaf_tiny_v2.int8.onnx");
}

TEST(RegistrySet, StaticNeedsACalibrationSet) {
  TINYQ_REQUIRE_SHARED();
  std::string dir = temp_dir();
  std::string path = real_copy(dir);
  std::string before = read_file_bounded(path, 1 << 20);
  size_t i = entry_index(read_ojson(path), "vmaf_tiny_v4");
  auto res = run_cli("registry set vmaf_tiny_v4 --quant-mode static --registry " + path);
  EXPECT_EQ(res.exit_code, 1);
  EXPECT_EQ(res.out, path + ": models[" + std::to_string(i) +
                         "] (vmaf_tiny_v4): quant_calibration_set is required when quant_mode is \"static\"\n");
  EXPECT_EQ(read_file_bounded(path, 1 << 20), before);

  res = run_cli("registry set vmaf_tiny_v4 --quant-mode static --calibration-set calib/v4.npz --registry " + path);
  EXPECT_EQ(res.exit_code, 0) << res.out << res.err;
  ojson after = read_ojson(path);
  EXPECT_EQ(after["models"][i]["quant_mode"], "static");
  EXPECT_EQ(after["models"][i]["quant_calibration_set"], "calib/v4.npz");
  ojson expected = read_ojson(real_registry());
  expected["models"][i]["quant_mode"] = "static";
  after["models"][i].erase("quant_calibration_set");
  EXPECT_EQ(after.dump(), expected.dump());
}

TEST(RegistrySet, BadArgumentsWriteNothing) {
  TINYQ_REQUIRE_SHARED();
  std::string dir = temp_dir();
  std::string path = real_copy(dir);
  std::string before = read_file_bounded(path, 1 << 20);
  struct Case {
    std::string args;
    std::string err;
  };
  const Case cases[] = {
      {"vmaf_tiny_v4 --quant-mode dynamic --budget 1.5",
       "error: --budget: quant_accuracy_budget_plcc must be in [0, 1], got 1.5\n"},
      {"vmaf_tiny_v4 --quant-mode int4", "error: --quant-mode: \"int4\" is not one of fp32, dynamic, static, qat\n"},
      {"nope --quant-mode fp32", "error: " + path + ": no model with id 'nope'\n"},
      {"vmaf_tiny_v4 --quant-mode static --calibration-set ../../etc/passwd",
       "error: --calibration-set: \"../../etc/passwd\" must be a relative path inside the repo root\n"},
      // No int8 sibling exists for vmaf_tiny_v2 and none is given.
      {"vmaf_tiny_v2 --quant-mode qat",
       "error: " + dir + "/vmaf_tiny_v2.int8.onnx: no such file: quant_mode qat loads it; produce it first or pass --int8 FILE\n"},
      // Not a model.
      {"vmaf_tiny_v2 --quant-mode dynamic --int8 " + dir + "/registry.schema.json", ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.args);
    auto res = run_cli("registry set " + c.args + " --registry " + path);
    EXPECT_EQ(res.exit_code, 2) << res.out << res.err;
    if (!c.err.empty()) {
      EXPECT_EQ(res.err, c.err);
    }
    EXPECT_EQ(read_file_bounded(path, 1 << 20), before);
  }
  EXPECT_EQ(stray_files(dir, {"registry.json", "registry.schema.json", "vmaf_tiny_v2.onnx", "vmaf_tiny_v4.onnx",
                              "vmaf_tiny_v4.int8.onnx"}),
            std::vector<std::string>{});
}

TEST(RegistrySet, BackToFp32KeepsTheInt8Digest) {
  TINYQ_REQUIRE_SHARED();
  std::string dir = temp_dir();
  std::string path = real_copy(dir);
  size_t i = entry_index(read_ojson(path), "vmaf_tiny_v4");
  auto res = run_cli("registry set vmaf_tiny_v4 --quant-mode fp32 --registry " + path);
  EXPECT_EQ(res.exit_code, 0) << res.out << res.err;
  EXPECT_EQ(res.out, path + ": vmaf_tiny_v4 set to quant_mode fp32\n");
  ojson after = read_ojson(path);
  ojson expected = read_ojson(real_registry());
  expected["models"][i]["quant_mode"] = "fp32";
  EXPECT_EQ(after.dump(), expected.dump());
  Registry reg = load_registry(path);
  EXPECT_EQ(load_verified_model(reg, "vmaf_tiny_v4").path, dir + "/vmaf_tiny_v4.onnx");
}

}  // namespace
}  // namespace tinyq::test
