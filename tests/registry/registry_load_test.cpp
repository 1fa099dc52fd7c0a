// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// Loading by id: the redirect to the int8 sibling, the sha256 check of the bytes opened, missing
// files, `tinyq registry resolve`, and the op allowlist against the runtime's op table.

#include <cmath>
#include <filesystem>

#include "registry_test_util.h"
#include "runtime/op.h"
#include "runtime/op_allowlist.h"
#include "tinyq/npz.h"

namespace tinyq::test {
namespace {

namespace fs = std::filesystem;

TEST(RegistryLoad, RealRegistryEntriesAndRedirect) {
  TINYQ_REQUIRE_SHARED();
  Registry reg = load_registry(real_registry());
  ASSERT_EQ(reg.models.size(), 24u);
  EXPECT_EQ(reg.schema_version, 1);
  const RegistryEntry& v4 = reg.at("vmaf_tiny_v4");
  EXPECT_EQ(v4.index, 23u);
  EXPECT_EQ(v4.quant_mode, QuantMode::Dynamic);
  EXPECT_EQ(v4.int8_sha256, "203a25905a3797b1cc3e3f347f4f6f491b491000d4424017beef64219767a9e9");
  EXPECT_DOUBLE_EQ(v4.quant_accuracy_budget_plcc, 0.01);
  EXPECT_EQ(reg.fp32_path(v4), real_dir() + "/vmaf_tiny_v4.onnx");
  EXPECT_EQ(reg.int8_path(v4), real_dir() + "/vmaf_tiny_v4.int8.onnx");
  EXPECT_EQ(reg.resolved_path(v4), reg.int8_path(v4));
  EXPECT_EQ(reg.resolved_sha256(v4), v4.int8_sha256);
  EXPECT_EQ(reg.sidecar_path(v4), real_dir() + "/vmaf_tiny_v4.json");
  const RegistryEntry& v2 = reg.at("vmaf_tiny_v2");
  EXPECT_EQ(v2.quant_mode, QuantMode::Fp32);
  EXPECT_EQ(reg.resolved_path(v2), real_dir() + "/vmaf_tiny_v2.onnx");
  EXPECT_TRUE(reg.at("smoke_v0").smoke);
  EXPECT_EQ(reg.at("lpips_sq_v1").opset, 18);
  EXPECT_EQ(reg.calibration_path(v4), "");
  EXPECT_EQ(int8_sibling_path("a/b/model.onnx"), "a/b/model.int8.onnx");
  try {
    reg.at("nope");
    ADD_FAILURE();
  } catch (const RegistryError& e) {
    EXPECT_EQ(e.kind(), RegistryError::Kind::NotFound);
    EXPECT_EQ(e.message(), real_registry() + ": no model with id 'nope'");
  }
}

TEST(RegistryLoad, VerifiedModelsOfTheRealRegistry) {
  TINYQ_REQUIRE_SHARED();
  Registry reg = load_registry(real_registry());
  for (const char* id : {"vmaf_tiny_v3", "vmaf_tiny_v4", "nr_metric_v1", "learned_filter_v1"}) {
    SCOPED_TRACE(id);
    const RegistryEntry& e = reg.at(id);
    VerifiedModel int8 = load_verified_model(reg, id);
    EXPECT_EQ(int8.path, reg.int8_path(e));
    EXPECT_EQ(int8.sha256, e.int8_sha256);
    EXPECT_EQ(sha256_file(int8.path), e.int8_sha256);
    VerifiedModel fp32 = load_verified_model(reg, id, ModelFile::Fp32);
    EXPECT_EQ(fp32.path, reg.fp32_path(e));
    EXPECT_EQ(fp32.sha256, e.sha256);
    EXPECT_FALSE(fp32.model.graph.nodes.empty());
  }
  try {
    open_model(reg, "fastdvdnet_pre");
    ADD_FAILURE();
  } catch (const RegistryError& e) {
    EXPECT_EQ(e.kind(), RegistryError::Kind::MissingFile);
    EXPECT_EQ(e.message(), real_dir() + "/fastdvdnet_pre.onnx: no such file (" + real_registry() +
                               ": models[1] (fastdvdnet_pre) names it)");
  }
}

// The redirected int8 model opened by id gives ONNX Runtime's outputs on the stored gate inputs.
TEST(RegistryLoad, OpenModelByIdRunsTheInt8Sibling) {
  TINYQ_REQUIRE_SHARED();
  Registry reg = load_registry(real_registry());
  const std::string ref = shared_dir() + "/reference/ort-1.30/vmaf_tiny_v4";
  NamedTensors inputs = read_npz(ref + ".gate_inputs.npz");
  for (auto [file, tag] : {std::pair{ModelFile::Resolved, "dyn"}, std::pair{ModelFile::Fp32, "fp32"}}) {
    SCOPED_TRACE(tag);
    NamedTensors want = read_npz(ref + ".gate_" + tag + "_out.npz");
    Session s = file == ModelFile::Resolved ? open_model(reg, "vmaf_tiny_v4")
                                            : Session(load_verified_model(reg, "vmaf_tiny_v4", file).model);
    ASSERT_EQ(s.inputs().size(), 1u);
    EXPECT_EQ(s.inputs()[0].name, "features");
    for (int i = 0; i < 16; ++i) {
      const Tensor* x = find_array(inputs, "features__" + std::to_string(i));
      const Tensor* y = find_array(want, "arr_" + std::to_string(i));
      ASSERT_TRUE(x && y);
      std::vector<Tensor> out = s.run(std::vector<Tensor>{*x});
      ASSERT_EQ(out.size(), 1u);
      EXPECT_LE(max_abs_diff(out[0], *y), 1e-4 * std::max(1.0, max_abs(*y))) << "sample " << i;
    }
  }
}

TEST(RegistryLoad, ShaMismatchRefusesNamingBothDigests) {
  std::string dir = temp_dir();
  std::string sha = write_identity_model(dir + "/m.onnx");
  std::string int8_sha = write_identity_model(dir + "/m.int8.onnx");
  ojson e = test_entry("m", "m.onnx", sha);
  e["quant_mode"] = "dynamic";
  e["int8_sha256"] = int8_sha;
  std::string path = write_registry(dir, registry_of({e}), false);
  Registry reg = load_registry(path);

  // Both files as recorded: the int8 sibling opens and runs.
  Session s = open_model(reg, "m");
  std::vector<Tensor> out = s.run(std::vector<Tensor>{Tensor::from_vector<float>({1, 4}, {1, 2, 3, 4})});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].to_vector<float>(), (std::vector<float>{1, 2, 3, 4}));

  // One byte of the int8 file changed (a different graph name): refused, both digests named.
  ModelBuilder b(17);
  b.input("x", DType::F32, {1, 4}).output("y").node("Identity", {"x"}, {"y"});
  b.model.graph.name = "tampered";
  save_model(b.model, dir + "/m.int8.onnx");
  std::string got = sha256_file(dir + "/m.int8.onnx");
  try {
    open_model(reg, "m");
    ADD_FAILURE() << "opened a tampered file";
  } catch (const RegistryError& err) {
    EXPECT_EQ(err.kind(), RegistryError::Kind::Integrity);
    EXPECT_EQ(err.message(), dir + "/m.int8.onnx: refusing to load: sha256 of the file is " + got +
                                 ", the registry's int8_sha256 for models[0] (m) is " + int8_sha);
  }
  // The fp32 file still matches its own digest.
  EXPECT_EQ(load_verified_model(reg, "m", ModelFile::Fp32).sha256, sha);
}

TEST(RegistryLoad, PathSafetyAtLoad) {
  std::string dir = temp_dir();
  fs::create_directories(dir + "/reg");
  std::string sha = write_identity_model(dir + "/outside.onnx");
  // A Registry built by hand (not through validation) still may not escape its folder.
  Registry reg;
  reg.path = dir + "/reg/registry.json";
  reg.dir = dir + "/reg";
  RegistryEntry e;
  e.id = "escape";
  e.onnx = "../outside.onnx";
  e.sha256 = sha;
  reg.models.push_back(e);
  try {
    open_model(reg, "escape");
    ADD_FAILURE();
  } catch (const RegistryError& err) {
    EXPECT_EQ(err.kind(), RegistryError::Kind::Refused);
    EXPECT_NE(err.message().find("escapes the registry's folder"), std::string::npos) << err.message();
  }
}

TEST(RegistryLoad, ResolveCommand) {
  TINYQ_REQUIRE_SHARED();
  auto res = run_cli("registry resolve vmaf_tiny_v4 --registry " + real_registry());
  EXPECT_EQ(res.exit_code, 0) << res.err;
  auto lines = split_lines(res.out);
  ASSERT_EQ(lines.size(), 2u) << res.out;
  EXPECT_EQ(lines[0], real_dir() + "/vmaf_tiny_v4.int8.onnx");
  EXPECT_NE(lines[1].find("quant_mode dynamic"), std::string::npos);
  EXPECT_NE(lines[1].find("regression baseline"), std::string::npos);
  res = run_cli("registry resolve vmaf_tiny_v2 --registry " + real_registry());
  EXPECT_EQ(res.exit_code, 0);
  EXPECT_EQ(split_lines(res.out)[0], real_dir() + "/vmaf_tiny_v2.onnx");
  EXPECT_NE(res.out.find("quant_mode fp32"), std::string::npos);
  res = run_cli("registry resolve nope --registry " + real_registry());
  EXPECT_EQ(res.exit_code, 2);
  EXPECT_EQ(res.err, "error: " + real_registry() + ": no model with id 'nope'\n");
}

// One allowlist, shared with the runtime: every allowlisted op has a row in the op table, and
// the op table implements nothing the allowlist refuses (Identity through QLinearConv).
TEST(RegistryLoad, AllowlistMatchesTheRuntimeOpTable) {
  EXPECT_EQ(rt::op_allowlist().size(), 66u + 7u);
  for (const auto& op : rt::op_allowlist()) {
    bool found = false;
    for (const auto& def : rt::op_table()) found = found || op == def.op_type;
    EXPECT_TRUE(found) << op << " is allowlisted but the runtime has no row for it";
  }
  for (const auto& def : rt::op_table()) EXPECT_TRUE(rt::op_allowed(def.op_type)) << def.op_type;
  EXPECT_FALSE(rt::op_allowed("Loop"));
  EXPECT_FALSE(rt::op_allowed("identity"));
  EXPECT_TRUE(rt::is_default_domain("ai.onnx"));
  EXPECT_FALSE(rt::is_default_domain("com.microsoft"));
}

}  // namespace
}  // namespace tinyq::test
