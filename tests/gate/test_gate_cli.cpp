// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// The gate end to end: the seed's four published drops on the fork's shipped sidecars, and
// `tinyq measure-quant-drop` on registries written here (exit codes, rows, JSON, HTML).

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>

#include "common/file_util.h"
#include "common/provenance.h"
#include "common/sha256.h"
#include "model_builder.h"
#include "test_support.h"
#include "tinyq/gate.h"
#include "tinyq/model_io.h"
#include "tinyq/npz.h"
#include "tinyq/registry.h"
#include "tinyq/stats.h"
#include "tinyq/version.h"
#include "xml_check.h"

namespace fs = std::filesystem;

namespace tinyq {
namespace {

std::string real(const std::string& name) { return test::shared_dir() + "/models/real/" + name; }
std::string ort_ref(const std::string& name) { return test::shared_dir() + "/reference/ort-1.30/" + name; }

// arr_0..arr_15 of an output npz, flattened and concatenated as the seed does.
std::vector<double> stored_outputs(const std::string& path) {
  NamedTensors all = read_npz(path);
  std::vector<double> out;
  for (int i = 0; i < 16; ++i) {
    const Tensor* t = find_array(all, "arr_" + std::to_string(i));
    EXPECT_NE(t, nullptr) << path << " arr_" << i;
    if (!t) return {};
    std::vector<double> v = tensor_to_doubles(*t);
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

// The seed's published drops (rounded to 6 places) are ONNX Runtime's; tinyq's runtime on the
// same shipped sidecars must land within 1e-6 of ORT's exact drop, computed here from its
// stored outputs.
TEST(GateShared, ReproducesThePublishedDrops) {
  TINYQ_REQUIRE_SHARED();
  struct Case {
    const char* id;
    double published;
  } cases[] = {{"vmaf_tiny_v3", 0.000120}, {"vmaf_tiny_v4", 0.000145}, {"nr_metric_v1", 0.007674},
               {"learned_filter_v1", 0.000117}};
  Registry reg = load_registry(real("registry.json"));
  GateOptions opt;
  opt.keep_values = true;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.id);
    std::vector<double> f = stored_outputs(ort_ref(std::string(c.id) + ".gate_fp32_out.npz"));
    std::vector<double> q = stored_outputs(ort_ref(std::string(c.id) + ".gate_dyn_out.npz"));
    ASSERT_EQ(f.size(), q.size());
    double ort_drop = 1.0 - pearson(f, q);
    EXPECT_NEAR(ort_drop, c.published, 5e-7) << "ORT's stored outputs disagree with the published drop";
    double ort_worst = 0;
    for (size_t i = 0; i < f.size(); ++i) ort_worst = std::max(ort_worst, std::fabs(f[i] - q[i]));

    const RegistryEntry* e = reg.find(c.id);
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->quant_mode, QuantMode::Dynamic);
    std::vector<GateRow> rows = gate_registry_entry(reg, *e, opt);
    ASSERT_EQ(rows.size(), 1u);
    const GateRow& r = rows[0];
    ASSERT_TRUE(r.has_numbers) << r.reason;
    EXPECT_EQ(r.status, GateStatus::Pass);
    EXPECT_EQ(r.values, static_cast<int64_t>(f.size()));
    EXPECT_NEAR(r.drop, ort_drop, 1e-6);
    EXPECT_NEAR(r.plcc, 1.0 - ort_drop, 1e-6);
    EXPECT_NEAR(r.worst_abs, ort_worst, 1e-3 * std::max(1.0, ort_worst));
    EXPECT_EQ(r.budget, 0.01);
    // Our fp32 outputs are ORT's on the same seed inputs (the inputs are bit-exact; the maths
    // may differ in the last bits).
    double fp32_err = 0, scale = 0;
    for (size_t i = 0; i < f.size(); ++i) {
      fp32_err = std::max(fp32_err, std::fabs(r.fp32_values[i] - f[i]));
      scale = std::max(scale, std::fabs(f[i]));
    }
    EXPECT_LE(fp32_err, 1e-4 * std::max(1.0, scale));
  }
}

// ---------------------------------------------------------------------------------------------
// The CLI on registries written here.

struct Entry {
  std::string id, onnx, mode = "dynamic";
  double budget = 0.01;
};

// A registry in `dir` over models already there; digests are the files' own (a placeholder
// when the int8 file is absent, which the gate must report, not the registry loader).
std::string write_registry(const std::string& dir, const std::vector<Entry>& entries) {
  nlohmann::json reg;
  reg["schema_version"] = 1;
  reg["models"] = nlohmann::json::array();
  for (const Entry& e : entries) {
    nlohmann::json m;
    m["id"] = e.id;
    m["kind"] = "fr";
    m["license"] = "BSD-3-Clause-Plus-Patent";
    m["onnx"] = e.onnx;
    m["opset"] = 17;
    std::string fp32 = dir + "/" + e.onnx, int8 = int8_sibling_path(fp32);
    m["sha256"] = file_exists(fp32) ? sha256_file(fp32) : std::string(64, '0');
    m["quant_mode"] = e.mode;
    m["quant_accuracy_budget_plcc"] = e.budget;
    if (e.mode != "fp32") m["int8_sha256"] = file_exists(int8) ? sha256_file(int8) : std::string(64, '0');
    reg["models"].push_back(m);
  }
  std::string path = dir + "/registry.json";
  write_file_atomic(path, reg.dump(2));
  return path;
}

void copy_model(const std::string& name, const std::string& dir) {
  fs::copy_file(real(name), dir + "/" + name, fs::copy_options::overwrite_existing);
}

std::string q(const std::string& s) { return "'" + s + "'"; }

TEST(GateCli, PassSkipAndRowFormat) {
  TINYQ_REQUIRE_SHARED();
  std::string dir = test::temp_dir();
  copy_model("vmaf_tiny_v3.onnx", dir);
  copy_model("vmaf_tiny_v3.int8.onnx", dir);
  std::string reg = write_registry(dir, {{"vmaf_tiny_v3", "vmaf_tiny_v3.onnx"},
                                         {"vmaf_tiny_v3_fp32", "vmaf_tiny_v3.onnx", "fp32"}});
  test::CommandResult r = test::run_cli("measure-quant-drop --all --registry " + q(reg));
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.out,
            "[PASS] vmaf_tiny_v3             mode=dynamic PLCC=0.999880  drop=0.000120  budget=0.0100  worst_abs=2.2058\n"
            "[skip] vmaf_tiny_v3_fp32 \xe2\x80\x94 quant_mode=fp32, no quantised model to gate\n");
  // No model and no --all is --all; a model argument picks its entry, found beside the model.
  test::CommandResult r2 = test::run_cli("measure-quant-drop --registry " + q(reg));
  EXPECT_EQ(r2.out, r.out);
  test::CommandResult r3 = test::run_cli("measure-quant-drop " + q(dir + "/vmaf_tiny_v3.onnx"));
  EXPECT_EQ(r3.exit_code, 0) << r3.err;
  EXPECT_EQ(r3.out.rfind("[PASS] vmaf_tiny_v3 ", 0), 0u) << r3.out;
  EXPECT_EQ(r3.out.find("[skip]"), std::string::npos);
}

TEST(GateCli, BudgetViolationExitsOne) {
  TINYQ_REQUIRE_SHARED();
  std::string dir = test::temp_dir();
  copy_model("vmaf_tiny_v3.onnx", dir);
  copy_model("vmaf_tiny_v3.int8.onnx", dir);
  std::string reg = write_registry(dir, {{"vmaf_tiny_v3", "vmaf_tiny_v3.onnx", "dynamic", 0.0001}});
  test::CommandResult r = test::run_cli("measure-quant-drop --all --registry " + q(reg));
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_EQ(r.out.rfind("[FAIL] vmaf_tiny_v3             mode=dynamic PLCC=0.999880  drop=0.000120  budget=0.0001", 0), 0u)
      << r.out;
  EXPECT_NE(r.out.find("exceeds budget"), std::string::npos);
}

TEST(GateCli, ErrorsExitTwo) {
  TINYQ_REQUIRE_SHARED();
  std::string dir = test::temp_dir();
  copy_model("vmaf_tiny_v3.onnx", dir);
  copy_model("vmaf_tiny_v3.int8.onnx", dir);
  copy_model("vmaf_tiny_v4.onnx", dir);  // its int8 sidecar is left out
  std::string reg = write_registry(dir, {{"vmaf_tiny_v3", "vmaf_tiny_v3.onnx"}, {"vmaf_tiny_v4", "vmaf_tiny_v4.onnx"}});

  // A missing int8 file is a FAIL row naming it; the others are still gated.
  test::CommandResult r = test::run_cli("measure-quant-drop --all --registry " + q(reg));
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.out.find("[PASS] vmaf_tiny_v3 "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[FAIL] vmaf_tiny_v4             mode=dynamic \xe2\x80\x94 int8 model missing: " + dir +
                       "/vmaf_tiny_v4.int8.onnx"),
            std::string::npos)
      << r.out;

  // Unreadable, malformed and invalid registries.
  r = test::run_cli("measure-quant-drop --all --registry " + q(dir + "/nope.json"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("error: "), std::string::npos);
  EXPECT_NE(r.err.find("nope.json"), std::string::npos) << r.err;
  write_file_atomic(dir + "/broken.json", "{\"models\": [");
  r = test::run_cli("measure-quant-drop --all --registry " + q(dir + "/broken.json"));
  EXPECT_EQ(r.exit_code, 2) << r.out;
  write_file_atomic(dir + "/invalid.json", R"({"schema_version": 1, "models": [{"id": "x"}]})");
  r = test::run_cli("measure-quant-drop --all --registry " + q(dir + "/invalid.json"));
  EXPECT_EQ(r.exit_code, 2) << r.out;

  // A model the registry does not list; a bad model file.
  r = test::run_cli("measure-quant-drop " + q(real("vmaf_tiny_v2.onnx")) + " --registry " + q(reg));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("no entry in"), std::string::npos) << r.err;
  write_file_atomic(dir + "/vmaf_tiny_v4.int8.onnx", "garbage");
  r = test::run_cli("measure-quant-drop " + q(dir + "/vmaf_tiny_v4.onnx"));
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("[FAIL] vmaf_tiny_v4 "), std::string::npos) << r.out;

  // Conflicting options.
  r = test::run_cli("measure-quant-drop --all --registry " + q(reg) + " --output-name vmaf --all-outputs");
  EXPECT_EQ(r.exit_code, 2);
  r = test::run_cli("measure-quant-drop " + q(dir + "/vmaf_tiny_v3.onnx") + " --all");
  EXPECT_EQ(r.exit_code, 2);
  r = test::run_cli("measure-quant-drop --all --registry " + q(reg) + " --data " + q(dir + "/none.npz"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("none.npz"), std::string::npos) << r.err;
}

// The NaN case: an int8 model whose output is constant never passes, whatever the budget.
TEST(GateCli, ConstantInt8OutputFails) {
  std::string dir = test::temp_dir();
  test::ModelBuilder f;
  f.input("x", DType::F32, {1, 4}).node("Identity", {"x"}, {"y"}).output("y");
  save_model(f.model, dir + "/probe.onnx");
  test::ModelBuilder c;
  c.input("x", DType::F32, {1, 4})
      .initializer("k", Tensor::from_vector<float>({1, 4}, {3, 3, 3, 3}))
      .node("Identity", {"k"}, {"y"})
      .output("y");
  save_model(c.model, dir + "/probe.int8.onnx");
  std::string reg = write_registry(dir, {{"probe", "probe.onnx", "qat", 1.0}});
  test::CommandResult r = test::run_cli("measure-quant-drop --all --registry " + q(reg) + " --out-json " + q(dir + "/g.json"));
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_EQ(r.out, "[FAIL] probe                    mode=qat \xe2\x80\x94 PLCC undefined (constant output)\n");
  nlohmann::json j = nlohmann::json::parse(read_file_bounded(dir + "/g.json", 1 << 20));
  EXPECT_EQ(j["rows"][0]["reason"], "PLCC undefined (constant output)");
  EXPECT_TRUE(j["rows"][0]["plcc"].is_null());
  EXPECT_EQ(j["rows"][0]["pass"], false);
  EXPECT_EQ(j["exit_code"], 1);
}

TEST(GateCli, JsonHtmlAndProvenance) {
  TINYQ_REQUIRE_SHARED();
  std::string dir = test::temp_dir();
  copy_model("vmaf_tiny_v3.onnx", dir);
  copy_model("vmaf_tiny_v3.int8.onnx", dir);
  std::string reg = write_registry(dir, {{"vmaf_tiny_v3", "vmaf_tiny_v3.onnx"}, {"other", "vmaf_tiny_v3.onnx", "fp32"}});
  // Real-ish data: 8 samples of features spread beyond [0, 1).
  std::vector<float> feats;
  for (int i = 0; i < 8 * 6; ++i) feats.push_back(static_cast<float>(std::sin(i * 1.7) * 3.0));
  write_npz(dir + "/data.npz", {{"features", Tensor::from_vector<float>({8, 6}, feats)}});
  std::string json = dir + "/out dir/gate.json", html = dir + "/gate.html";
  fs::create_directories(dir + "/out dir");
  test::CommandResult r = test::run_cli("measure-quant-drop --all --registry " + q(reg) + " --out-json " + q(json) +
                                        " --html " + q(html) + " --data " + q(dir + "/data.npz"));
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("[PASS] vmaf_tiny_v3             mode=dynamic PLCC=0.999880"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("mode=dynamic inputs=data PLCC="), std::string::npos) << r.out;

  nlohmann::json j = nlohmann::json::parse(read_file_bounded(json, 1 << 20));
  ASSERT_EQ(j["rows"].size(), 2u);
  EXPECT_EQ(j["rows"][0]["id"], "vmaf_tiny_v3");
  EXPECT_EQ(j["rows"][0]["inputs"], "seed");
  EXPECT_EQ(j["rows"][0]["output"], "vmaf");
  EXPECT_EQ(j["rows"][0]["fp32_path"], dir + "/vmaf_tiny_v3.onnx");
  EXPECT_EQ(j["rows"][0]["int8_path"], dir + "/vmaf_tiny_v3.int8.onnx");
  EXPECT_NEAR(j["rows"][0]["drop"].get<double>(), 0.000120, 5e-7);
  EXPECT_NEAR(j["rows"][0]["plcc"].get<double>() + j["rows"][0]["drop"].get<double>(), 1.0, 1e-12);
  EXPECT_NEAR(j["rows"][0]["worst_abs"].get<double>(), 2.2058, 1e-3);
  EXPECT_EQ(j["rows"][1]["inputs"], "data");
  EXPECT_EQ(j["rows"][1]["samples"], 8);
  EXPECT_EQ(j["skipped"], nlohmann::json::array({"other"}));
  EXPECT_EQ(j["pass"], true);

  const nlohmann::json& p = j["run_provenance"];
  EXPECT_EQ(p["tool"], "tinyq");
  EXPECT_EQ(p["tool_version"], version_string());
  EXPECT_EQ(p["git_commit"], build_commit());
  EXPECT_EQ(p["argv"][0], test::cli_path());
  EXPECT_EQ(p["argv"][1], "measure-quant-drop");
  EXPECT_EQ(p["argv"].size(), 11u);
  EXPECT_NE(p["command_line"].get<std::string>().find("--out-json '" + json + "'"), std::string::npos) << p["command_line"];
  EXPECT_TRUE(std::regex_match(p["timestamp_utc"].get<std::string>(),
                               std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)")));
  EXPECT_FALSE(p["host"]["cpu_model"].get<std::string>().empty());
  for (const char* feature : {"avx2", "avx512_vnni", "avx_vnni", "amx_int8", "arm_dotprod"})
    EXPECT_TRUE(p["host"]["int8_features"][feature].is_boolean()) << feature;
  for (const char* lib : {"protobuf", "libzip", "openssl", "nlohmann_json"})
    EXPECT_FALSE(p["libraries"][lib].get<std::string>().empty()) << lib;
  // Every file read and written, with its digest and size.
  std::vector<std::string> want_in{reg, dir + "/vmaf_tiny_v3.onnx", dir + "/vmaf_tiny_v3.int8.onnx", dir + "/data.npz"};
  ASSERT_EQ(p["inputs"].size(), want_in.size());
  for (size_t i = 0; i < want_in.size(); ++i) {
    EXPECT_EQ(p["inputs"][i]["path"], want_in[i]);
    EXPECT_EQ(p["inputs"][i]["sha256"], sha256_file(want_in[i]));
    EXPECT_EQ(p["inputs"][i]["bytes"], file_size(want_in[i]));
  }
  ASSERT_EQ(p["outputs"].size(), 1u);
  EXPECT_EQ(p["outputs"][0]["path"], html);
  EXPECT_EQ(p["outputs"][0]["sha256"], sha256_file(html));

  std::string page = read_file_bounded(html, 1 << 22);
  EXPECT_EQ(test::xml_check(page), "");
  EXPECT_NE(page.find("vmaf_tiny_v3"), std::string::npos);
  EXPECT_NE(page.find("<svg"), std::string::npos);
  EXPECT_EQ(page.find("<script"), std::string::npos);
}

// Under --all one data file serves the models whose inputs it holds; the others say so, and a
// file that serves none is an error rather than a silent seed-only pass.
TEST(GateCli, DataSharedAcrossModels) {
  TINYQ_REQUIRE_SHARED();
  std::string dir = test::temp_dir();
  copy_model("vmaf_tiny_v3.onnx", dir);
  copy_model("vmaf_tiny_v3.int8.onnx", dir);
  test::ModelBuilder f;
  f.input("x", DType::F32, {1, 4}).node("Identity", {"x"}, {"y"}).output("y");
  save_model(f.model, dir + "/probe.onnx");
  save_model(f.model, dir + "/probe.int8.onnx");
  std::string reg = write_registry(dir, {{"vmaf_tiny_v3", "vmaf_tiny_v3.onnx"}, {"probe", "probe.onnx"}});
  std::vector<float> feats;
  for (int i = 0; i < 4 * 6; ++i) feats.push_back(static_cast<float>(std::cos(i * 0.9) * 2.0));
  write_npz(dir + "/feats.npz", {{"features", Tensor::from_vector<float>({4, 6}, feats)}});
  test::CommandResult r = test::run_cli("measure-quant-drop --registry " + q(reg) + " --data " + q(dir + "/feats.npz"));
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("[PASS] vmaf_tiny_v3             mode=dynamic inputs=data PLCC="), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[skip] probe \xe2\x80\x94 inputs=data: " + dir + "/feats.npz holds none of its inputs"),
            std::string::npos)
      << r.out;
  // Named explicitly, a model whose inputs the file lacks is an error.
  r = test::run_cli("measure-quant-drop " + q(dir + "/probe.onnx") + " --data " + q(dir + "/feats.npz"));
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("no array named 'x'"), std::string::npos) << r.out;
  write_npz(dir + "/other.npz", {{"zzz", Tensor::from_vector<float>({1, 1}, {0.f})}});
  r = test::run_cli("measure-quant-drop --registry " + q(reg) + " --data " + q(dir + "/other.npz"));
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.err.find("holds no array for the inputs of any gated model"), std::string::npos) << r.err;
}

TEST(GateCli, OutputChoiceOnTheCommandLine) {
  TINYQ_REQUIRE_SHARED();
  std::string dir = test::temp_dir();
  copy_model("vmaf_tiny_v3.onnx", dir);
  copy_model("vmaf_tiny_v3.int8.onnx", dir);
  std::string reg = write_registry(dir, {{"vmaf_tiny_v3", "vmaf_tiny_v3.onnx"}});
  test::CommandResult r = test::run_cli("measure-quant-drop --registry " + q(reg) + " --output-name vmaf");
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("mode=dynamic output=vmaf PLCC=0.999880"), std::string::npos) << r.out;
  r = test::run_cli("measure-quant-drop --registry " + q(reg) + " --all-outputs");
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("output=vmaf"), std::string::npos) << r.out;
  r = test::run_cli("measure-quant-drop --registry " + q(reg) + " --output-name nope");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("no output named 'nope' (outputs: vmaf)"), std::string::npos) << r.out;
}

// The provenance block on its own: digests of real files, missing files flagged, quoting.
TEST(GateProvenance, Block) {
  std::string dir = test::temp_dir();
  write_file_atomic(dir + "/a.bin", "abc");
  nlohmann::json p = run_provenance({"tinyq", "x", "it's here", "a b"}, {dir + "/a.bin"}, {dir + "/gone"});
  EXPECT_EQ(p["inputs"][0]["sha256"], "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(p["inputs"][0]["bytes"], 3);
  EXPECT_EQ(p["outputs"][0]["missing"], true);
  EXPECT_FALSE(p["outputs"][0].contains("sha256"));
  EXPECT_EQ(p["command_line"], "tinyq x 'it'\\''s here' 'a b'");
  EXPECT_EQ(shell_join({"a=b", "c,d", ""}), "a=b c,d ''");
  EXPECT_EQ(p["tool"], "tinyq");
}

}  // namespace
}  // namespace tinyq
