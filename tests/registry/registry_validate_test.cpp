// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// Registry validation: the real registry, and broken copies made here, each giving its exact
// message and exit code.

#include <algorithm>
#include <filesystem>

#include "registry_test_util.h"

namespace tinyq::test {
namespace {

namespace fs = std::filesystem;

// A copy of the real registry (schema beside it), changed by `edit`; returns its path.
template <typename Edit>
std::string broken_copy(const std::string& dir, Edit edit) {
  ojson doc = read_ojson(real_registry());
  edit(doc);
  return write_registry(dir, doc);
}

TEST(RegistryValidate, RealRegistryIsValid) {
  TINYQ_REQUIRE_SHARED();
  RegistryReport r = validate_registry(real_registry());
  EXPECT_TRUE(r.ok()) << joined(r.problems);
  EXPECT_EQ(r.registry.models.size(), 24u);
  EXPECT_EQ(r.schema, real_dir() + "/registry.schema.json");
  auto res = run_cli("registry validate --registry " + real_registry());
  EXPECT_EQ(res.exit_code, 0) << res.out << res.err;
  EXPECT_NE(res.out.find("valid (24 models"), std::string::npos) << res.out;
}

// --check-files lists exactly the files that are absent: derived here from the file system, not
// from a list in the test.
TEST(RegistryValidate, RealRegistryCheckFilesListsExactlyTheMissingFiles) {
  TINYQ_REQUIRE_SHARED();
  ojson doc = read_ojson(real_registry());
  std::vector<std::string> expected;
  for (size_t i = 0; i < doc["models"].size(); ++i) {
    const ojson& m = doc["models"][i];
    std::string prefix = real_registry() + ": models[" + std::to_string(i) + "] (" + m["id"].get<std::string>() + "): ";
    std::string onnx = real_dir() + "/" + m["onnx"].get<std::string>();
    if (!fs::exists(onnx)) expected.push_back(prefix + "file " + onnx + " is missing");
    std::string mode = m.value("quant_mode", "fp32");
    std::string int8 = real_dir() + "/" + int8_sibling_path(m["onnx"].get<std::string>());
    if (mode != "fp32" && !fs::exists(int8))
      expected.push_back(prefix + "file " + int8 + " is missing (quant_mode \"" + mode + "\" loads it)");
  }
  ASSERT_EQ(expected.size(), 7u) << "the shared data changed: " << joined(expected);

  RegistryOptions opts;
  opts.check_files = true;
  RegistryReport r = validate_registry(real_registry(), opts);
  for (const auto& line : expected) EXPECT_TRUE(contains_line(r.problems, line)) << line << "\n--\n" << joined(r.problems);
  // Anything else must be a model that cannot load because a file it references is absent
  // (vmaf_tiny_v1_medium's external data names a file that is not shipped).
  for (const auto& line : r.problems) {
    if (contains_line(expected, line)) continue;
    auto at = line.find("external data file '");
    ASSERT_NE(at, std::string::npos) << "unexpected problem: " << line;
    std::string rest = line.substr(at + 20);
    std::string missing = rest.substr(0, rest.find('\''));
    EXPECT_FALSE(fs::exists(missing)) << line;
    EXPECT_NE(line.find("cannot load"), std::string::npos) << line;
  }
  EXPECT_LE(r.problems.size(), expected.size() + 1);

  auto res = run_cli("registry validate --check-files --registry " + real_registry());
  EXPECT_EQ(res.exit_code, 1) << res.err;
  EXPECT_EQ(split_lines(res.out), r.problems);
}

TEST(RegistryValidate, ExitCodeTwoWhenUnreadable) {
  std::string dir = temp_dir();
  auto res = run_cli("registry validate --registry " + dir + "/absent.json");
  EXPECT_EQ(res.exit_code, 2);
  EXPECT_EQ(res.err, "error: " + dir + "/absent.json: no such file\n");
  write_file_atomic(dir + "/registry.json", "{\"models\": [");
  res = run_cli("registry validate --registry " + dir + "/registry.json");
  EXPECT_EQ(res.exit_code, 2);
  EXPECT_NE(res.err.find("error: " + dir + "/registry.json: not valid JSON"), std::string::npos) << res.err;
  EXPECT_THROW(load_registry(dir + "/registry.json"), Error);
}

struct BrokenCase {
  const char* name;
  const char* id;
  void (*edit)(ojson& entry);
  const char* message;  // after "<path>: models[i] (id): "
};

const BrokenCase kBrokenCases[] = {
    {"bad sha256", "vmaf_tiny_v2", [](ojson& e) { e["sha256"] = "D7000BF5"; },
     "sha256 \"D7000BF5\" does not match the pattern ^[0-9a-f]{64}$"},
    {"static without calibration set", "nr_metric_v1", [](ojson& e) { e["quant_mode"] = "static"; },
     "quant_calibration_set is required when quant_mode is \"static\""},
    {"budget 1.5", "vmaf_tiny_v3", [](ojson& e) { e["quant_accuracy_budget_plcc"] = 1.5; },
     "quant_accuracy_budget_plcc 1.5 is outside [0.0, 1.0]"},
    {"unknown quant_mode", "vmaf_tiny_v4", [](ojson& e) { e["quant_mode"] = "int4"; },
     "quant_mode \"int4\" is not one of \"fp32\", \"static\", \"dynamic\", \"qat\""},
    {"int8 mode without int8_sha256", "smoke_v0", [](ojson& e) { e["quant_mode"] = "qat"; },
     "int8_sha256 is required when quant_mode is \"qat\""},
    {"path traversal", "mobilesal_placeholder_v0", [](ojson& e) { e["onnx"] = "sub/../../mobilesal.onnx"; },
     "onnx \"sub/../../mobilesal.onnx\" escapes the registry's folder"},
    {"calibration set outside the root", "learned_filter_v1",
     [](ojson& e) { e["quant_mode"] = "static"; e["quant_calibration_set"] = "../calib/frames.npz"; },
     "quant_calibration_set \"../calib/frames.npz\" escapes the repo root"},
    {"absolute calibration set", "learned_filter_v1",
     [](ojson& e) { e["quant_mode"] = "static"; e["quant_calibration_set"] = "/etc/passwd"; },
     "quant_calibration_set \"/etc/passwd\" is an absolute path; it must be relative to the repo root"},
    {"wrong type", "lpips_sq_v1", [](ojson& e) { e["opset"] = "18"; },
     "opset must be an integer, not string \"18\""},
    {"unknown field", "transnet_v2", [](ojson& e) { e["weights"] = "x"; }, "unknown field 'weights'"},
    {"missing required field", "fr_regressor_v3", [](ojson& e) { e.erase("kind"); }, "kind is required"},
    {"opset missing on a quality model", "saliency_student_v1", [](ojson& e) { e.erase("opset"); },
     "opset is required for a model that is not a smoke probe"},
};

TEST(RegistryValidate, BrokenCopiesGiveExactMessages) {
  TINYQ_REQUIRE_SHARED();
  for (const auto& c : kBrokenCases) {
    SCOPED_TRACE(c.name);
    std::string dir = temp_dir();
    size_t index = 0;
    std::string path = broken_copy(dir, [&](ojson& doc) {
      index = entry_index(doc, c.id);
      c.edit(doc["models"][index]);
    });
    std::string line = path + ": models[" + std::to_string(index) + "] (" + c.id + "): " + c.message;
    RegistryReport r = validate_registry(path);
    EXPECT_EQ(r.problems, std::vector<std::string>{line});
    auto res = run_cli("registry validate --registry " + path);
    EXPECT_EQ(res.exit_code, 1);
    EXPECT_EQ(res.out, line + "\n");
    // The loader refuses an invalid registry, listing the problem.
    try {
      load_registry(path);
      ADD_FAILURE() << "load_registry accepted an invalid registry";
    } catch (const RegistryError& e) {
      EXPECT_EQ(e.kind(), RegistryError::Kind::Invalid);
      EXPECT_NE(e.message().find(c.message), std::string::npos) << e.message();
    }
  }
}

TEST(RegistryValidate, DuplicateIds) {
  TINYQ_REQUIRE_SHARED();
  std::string dir = temp_dir();
  std::string path = broken_copy(dir, [](ojson& doc) { doc["models"][20]["id"] = doc["models"][19]["id"]; });
  RegistryReport r = validate_registry(path);
  EXPECT_EQ(r.problems,
            std::vector<std::string>{path + ": models[20] (vmaf_tiny_v2): id \"vmaf_tiny_v2\" is already used by models[19]"});
  EXPECT_EQ(run_cli("registry validate --registry " + path).exit_code, 1);
}

TEST(RegistryValidate, RegistryLevelProblems) {
  TINYQ_REQUIRE_SHARED();
  std::string dir = temp_dir();
  std::string path = broken_copy(dir, [](ojson& doc) {
    doc["schema_version"] = 2;
    doc["owner"] = "x";
  });
  RegistryReport r = validate_registry(path);
  EXPECT_TRUE(contains_line(r.problems, path + ": schema_version 2 is not one of 0, 1")) << joined(r.problems);
  EXPECT_TRUE(contains_line(r.problems, path + ": unknown field 'owner'")) << joined(r.problems);
  EXPECT_EQ(r.problems.size(), 2u) << joined(r.problems);
}

// Every problem of every entry in one run, in models[] order.
TEST(RegistryValidate, ReportsEveryProblemInOneRun) {
  TINYQ_REQUIRE_SHARED();
  std::string dir = temp_dir();
  std::string path = broken_copy(dir, [](ojson& doc) {
    for (const auto& c : kBrokenCases) c.edit(doc["models"][entry_index(doc, c.id)]);
  });
  RegistryReport r = validate_registry(path);
  // learned_filter_v1 takes two edits; the second overwrites the first's calibration set.
  EXPECT_EQ(r.problems.size(), std::size(kBrokenCases) - 1) << joined(r.problems);
  std::vector<std::string> sorted = r.problems;
  std::stable_sort(sorted.begin(), sorted.end(), [&](const std::string& a, const std::string& b) {
    auto index = [&](const std::string& s) { return std::stoi(s.substr(path.size() + 9)); };
    return index(a) < index(b);
  });
  EXPECT_EQ(sorted, r.problems);
  auto res = run_cli("registry validate --registry " + path);
  EXPECT_EQ(res.exit_code, 1);
  EXPECT_EQ(split_lines(res.out), r.problems);
}

// Without a schema file beside it, a registry gets the built-in copy of the same rules.
TEST(RegistryValidate, BuiltInSchemaWhenNoneBesideTheRegistry) {
  TINYQ_REQUIRE_SHARED();
  std::string dir = temp_dir();
  ojson doc = read_ojson(real_registry());
  size_t i = entry_index(doc, "vmaf_tiny_v3");
  doc["models"][i]["quant_accuracy_budget_plcc"] = 1.5;
  doc["models"][i]["quant_mode"] = "int4";
  std::string path = write_registry(dir, doc, /*with_schema=*/false);
  RegistryReport r = validate_registry(path);
  EXPECT_EQ(r.schema, "built-in");
  std::string prefix = path + ": models[" + std::to_string(i) + "] (vmaf_tiny_v3): ";
  EXPECT_EQ(r.problems, (std::vector<std::string>{
                            prefix + "quant_accuracy_budget_plcc 1.5 is outside [0.0, 1.0]",
                            prefix + "quant_mode \"int4\" is not one of \"fp32\", \"static\", \"dynamic\", \"qat\""}));
}

// A schema file valijson cannot use is a hostile input like any other: one error line naming
// the schema file, exit 2; never an abort (valijson aborts unless built to throw).
TEST(RegistryValidate, UnusableSchemaFilesAreOneErrorLine) {
  const std::string dir = temp_dir();
  fs::copy_file(source_dir() + "/examples/registry.json", dir + "/registry.json");
  const std::string schema = dir + "/registry.schema.json";
  const struct {
    const char* text;
    const char* message;
  } cases[] = {
      {R"({"type": 5})", "cannot be used as a JSON schema: "},
      {R"({"properties": {"models": {"minItems": "x"}}})", "cannot be used as a JSON schema: "},
      {R"({"properties": {"models": {"items": {"properties": {"id": {"pattern": "[a-"}}}}}})",
       "cannot be used as a JSON schema: "},
      {R"({"$ref": "#/nowhere"})", "cannot be used as a JSON schema: "},
      {R"([1, 2])", "a JSON schema must be an object"},
  };
  for (const auto& c : cases) {
    write_file_atomic(schema, c.text);
    const CommandResult r = run_cli("registry validate --registry " + dir + "/registry.json");
    EXPECT_EQ(r.exit_code, 2) << c.text << "\n" << r.err;
    EXPECT_EQ(r.err.rfind("error: " + schema + ": " + c.message, 0), 0u) << c.text << "\n" << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
}

TEST(RegistryValidate, ShaMismatchWithCheckFiles) {
  TINYQ_REQUIRE_SHARED();
  std::string dir = temp_dir();
  for (const char* f : {"vmaf_tiny_v4.onnx", "vmaf_tiny_v4.int8.onnx", "vmaf_tiny_v4.json"}) copy_real(dir, f);
  ojson doc = read_ojson(real_registry());
  ojson e = doc["models"][entry_index(doc, "vmaf_tiny_v4")];
  std::string good = e["int8_sha256"];
  std::string bad(64, 'a');
  e["int8_sha256"] = bad;
  std::string path = write_registry(dir, registry_of({e}));
  EXPECT_TRUE(validate_registry(path).ok());
  RegistryOptions opts;
  opts.check_files = true;
  RegistryReport r = validate_registry(path, opts);
  std::string prefix = path + ": models[0] (vmaf_tiny_v4): ";
  // The sidecar repeats int8_sha256, so it now disagrees with the registry too.
  EXPECT_EQ(r.problems, (std::vector<std::string>{
                            prefix + "int8_sha256 mismatch for " + dir + "/vmaf_tiny_v4.int8.onnx: the registry records " +
                                bad + ", the file has " + good,
                            prefix + "sidecar vmaf_tiny_v4.json: int8_sha256 \"" + good +
                                "\" differs from the registry's \"" + bad + "\""}));
  EXPECT_EQ(run_cli("registry validate --check-files --registry " + path).exit_code, 1);
}

TEST(RegistryValidate, UnknownOpAndForeignDomainInTheModel) {
  std::string dir = temp_dir();
  std::string sha_foo = write_identity_model(dir + "/foo.onnx", "Foo");
  std::string sha_ms = write_identity_model(dir + "/fused.onnx", "FusedGemm", "com.microsoft");
  // A disallowed op hidden in a subgraph (a graph attribute) is found too.
  ModelBuilder b(17);
  b.input("x", DType::F32, {1, 4}).output("y").node("Identity", {"x"}, {"y"});
  auto body = std::make_shared<Graph>();
  body->name = "body";
  Node inner;
  inner.op_type = "Loop";
  inner.name = "inner_loop";
  body->nodes.push_back(inner);
  Attribute a;
  a.name = "body";
  a.kind = Attribute::Kind::Graph;
  a.g = body;
  b.model.graph.nodes.back().attributes.push_back(a);
  save_model(b.model, dir + "/nested.onnx");
  std::string sha_nested = sha256_file(dir + "/nested.onnx");

  std::string path = write_registry(
      dir, registry_of({test_entry("foo", "foo.onnx", sha_foo), test_entry("fused", "fused.onnx", sha_ms),
                        test_entry("nested", "nested.onnx", sha_nested)}));
  EXPECT_TRUE(validate_registry(path).ok());
  RegistryOptions opts;
  opts.check_files = true;
  RegistryReport r = validate_registry(path, opts);
  EXPECT_EQ(r.problems,
            (std::vector<std::string>{
                path + ": models[0] (foo): " + dir + "/foo.onnx: Foo node 'Foo_0' in graph 'test': op type 'Foo' is not on tinyq's op allowlist",
                path + ": models[1] (fused): " + dir + "/fused.onnx: FusedGemm node 'FusedGemm_0' in graph 'test': domain 'com.microsoft' is not allowed (only the default ONNX domain)",
                path + ": models[2] (nested): " + dir + "/nested.onnx: Loop node 'inner_loop' in graph 'test' > Identity node 'Identity_0' attribute 'body': op type 'Loop' is not on tinyq's op allowlist"}));
  auto res = run_cli("registry validate --check-files --registry " + path);
  EXPECT_EQ(res.exit_code, 1);
  EXPECT_EQ(split_lines(res.out), r.problems);

  // The loader refuses each, naming the node.
  Registry reg = load_registry(path);
  for (const char* id : {"foo", "fused", "nested"}) {
    try {
      open_model(reg, id);
      ADD_FAILURE() << id << " was opened";
    } catch (const RegistryError& e) {
      EXPECT_EQ(e.kind(), RegistryError::Kind::Refused);
      EXPECT_NE(e.message().find(std::string(id) == "foo" ? "Foo node 'Foo_0'" : std::string(id) == "fused" ? "FusedGemm node" : "Loop node 'inner_loop'"),
                std::string::npos) << e.message();
    }
  }
  EXPECT_THROW(open_model_file(dir + "/foo.onnx"), RegistryError);
}

TEST(RegistryValidate, SidecarDisagreeingWithTheGraph) {
  TINYQ_REQUIRE_SHARED();
  std::string dir = temp_dir();
  copy_real(dir, "vmaf_tiny_v2.onnx");
  ojson sidecar = read_ojson(real_dir() + "/vmaf_tiny_v2.json");
  sidecar["input_name"] = "feats";
  sidecar["output_shape"] = {-1, 1};
  sidecar["input_std"] = {1.0, 2.0};
  write_file_atomic(dir + "/vmaf_tiny_v2.json", sidecar.dump(2));
  ojson doc = read_ojson(real_registry());
  std::string path = write_registry(dir, registry_of({doc["models"][entry_index(doc, "vmaf_tiny_v2")]}));
  RegistryOptions opts;
  opts.check_files = true;
  RegistryReport r = validate_registry(path, opts);
  std::string prefix = path + ": models[0] (vmaf_tiny_v2): sidecar vmaf_tiny_v2.json: ";
  EXPECT_EQ(r.problems, (std::vector<std::string>{
                            prefix + "input_std has 2 values for 6 features",
                            prefix + "input 'feats' is not an input of vmaf_tiny_v2.onnx (its inputs: features)",
                            prefix + "output_shape [-1,1] does not match output 'vmaf' of vmaf_tiny_v2.onnx, declared [N]"}))
      << joined(r.problems);
  Registry reg = load_registry(path);
  try {
    open_model(reg, "vmaf_tiny_v2");
    ADD_FAILURE() << "opened despite the sidecar";
  } catch (const RegistryError& e) {
    EXPECT_EQ(e.kind(), RegistryError::Kind::Refused);
    EXPECT_NE(e.message().find("input 'feats' is not an input"), std::string::npos) << e.message();
  }
}

TEST(RegistryValidate, StaticCalibrationSetMustExistUnderTheRoot) {
  std::string dir = temp_dir();
  std::string sha = write_identity_model(dir + "/m.onnx");
  write_identity_model(dir + "/m.int8.onnx");
  ojson e = test_entry("m", "m.onnx", sha);
  e["quant_mode"] = "static";
  e["quant_calibration_set"] = "calib/m.npz";
  e["int8_sha256"] = sha;
  std::string path = write_registry(dir, registry_of({e}), false);
  RegistryOptions opts;
  opts.check_files = true;
  opts.root = dir;
  RegistryReport r = validate_registry(path, opts);
  EXPECT_EQ(r.problems, std::vector<std::string>{path + ": models[0] (m): quant_calibration_set file " + dir +
                                                  "/calib/m.npz is missing"});
  fs::create_directories(dir + "/calib");
  write_file_atomic(dir + "/calib/m.npz", "x");
  EXPECT_TRUE(validate_registry(path, opts).ok()) << joined(validate_registry(path, opts).problems);
  auto res = run_cli("registry validate --check-files --root " + dir + " --registry " + path);
  EXPECT_EQ(res.exit_code, 0) << res.out << res.err;
}

}  // namespace
}  // namespace tinyq::test

namespace tinyq::test {
namespace {

TEST(RegistryValidate, SmokeModelsNeedNoOpset) {
  std::string dir = temp_dir();
  std::string sha = write_identity_model(dir + "/m.onnx");
  ojson e = test_entry("m", "m.onnx", sha);
  e.erase("opset");
  e["smoke"] = true;
  std::string path = write_registry(dir, registry_of({e}), false);
  EXPECT_TRUE(validate_registry(path).ok()) << joined(validate_registry(path).problems);
}

// Hostile or malformed documents give problems (exit 1), never a crash.
TEST(RegistryValidate, MalformedDocuments) {
  std::string dir = temp_dir();
  std::string deep(20000, '[');
  deep += std::string(20000, ']');
  struct Case {
    std::string json;
    std::string first_problem;  // after "<path>: "
  };
  const Case cases[] = {
      {"[]", "the registry must be an object, not array []"},
      {"{\"schema_version\": 1, \"models\": 3}", "models must be an array, not number 3"},
      {"{\"schema_version\": 1, \"models\": [7]}", "models[0]: the entry must be an object, not number 7"},
      {"{\"schema_version\": 1, \"models\": [{\"id\": 5, \"kind\": \"fr\", \"onnx\": \"a.onnx\", \"sha256\": \"" +
           std::string(64, 'a') + "\", \"opset\": 17}]}",
       "models[0]: id must be a string, not number 5"},
      {"{\"schema_version\": 1, \"models\": [], \"notes\": [[[1]]]}", "unknown field 'notes'"},
      // std::regex recurses per character: a long id must not overflow the stack.
      {"{\"schema_version\": 1, \"models\": [{\"id\": \"" + std::string(300000, 'a') +
           "\", \"kind\": \"fr\", \"onnx\": \"" + std::string(300000, 'b') + ".onnx\", \"sha256\": \"" +
           std::string(300000, 'c') + "\", \"opset\": 17}]}",
       "models[0] (" + std::string(61, 'a') + "...): id is 300000 characters long, over the limit of 64"},
      {"{\"models\": []}", "schema_version is required"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.json.substr(0, 80));
    write_file_atomic(dir + "/registry.json", c.json);
    RegistryReport r = validate_registry(dir + "/registry.json");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.problems[0], dir + "/registry.json: " + c.first_problem) << joined(r.problems);
    EXPECT_EQ(run_cli("registry validate --registry " + dir + "/registry.json").exit_code, 1);
  }
  // Nesting deep enough to exhaust recursive code is refused as unreadable.
  write_file_atomic(dir + "/registry.json", "{\"schema_version\": 1, \"models\": [], \"notes\": " + deep + "}");
  auto res = run_cli("registry validate --registry " + dir + "/registry.json");
  EXPECT_EQ(res.exit_code, 2);
  EXPECT_EQ(res.err, "error: " + dir + "/registry.json: JSON nested deeper than 64 levels\n");
  res = run_cli("registry set m --quant-mode fp32 --registry " + dir + "/registry.json");
  EXPECT_EQ(res.exit_code, 2);
  EXPECT_EQ(res.err, "error: " + dir + "/registry.json: JSON nested deeper than 64 levels\n");
}

}  // namespace
}  // namespace tinyq::test
