// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// `tinyq ptq-static` as a whole process: the default output, the report's numbers, the range
// table round trip (--ranges-out / --ranges), the registry's calibration set, and every error
// line (exit 2, no file left behind).

#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>

#include "common/file_util.h"
#include "common/sha256.h"
#include "model_builder.h"
#include "static_test_util.h"
#include "tinyq/model_io.h"
#include "tinyq/npz.h"

namespace tinyq::test {
namespace {

// A folder with model.onnx (x [N, 4] -> Gemm -> Relu -> y) and cal.npz (x: [16, 4]).
struct Workspace {
  std::string dir = temp_dir();
  std::string model = dir + "/model.onnx";
  std::string cal = dir + "/cal.npz";
  std::string out = dir + "/model.int8.onnx";

  explicit Workspace(int64_t opset = 17) {
    ModelBuilder b(opset);
    b.model.graph.inputs.push_back(ValueInfo{"x", DType::F32, true, {Dim{-1, "N"}, Dim{4, ""}}, ""});
    b.initializer("w", random_like({3, 4}, 2)).initializer("b", random_like({3}, 3));
    b.node("Gemm", {"x", "w", "b"}, {"h"}, {Attribute::make_int("transB", 1)});
    b.node("Relu", {"h"}, {"y"}).output("y");
    b.model.graph.nodes[0].name = "gemm";
    b.model.graph.nodes[1].name = "relu";
    save_model(b.model, model);
    write_npz(cal, {{"x", random_like({16, 4}, 4)}});
  }
  std::string q(const std::string& p) const { return "'" + p + "'"; }
};

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

TEST(StaticPtqCli, WritesTheSiblingAndAReportWithItsNumbers) {
  Workspace w;
  const std::string report = w.dir + "/report.json";
  CommandResult r = run_cli("ptq-static " + w.q(w.model) + " --calibration " + w.q(w.cal) + " --report-out " +
                            w.q(report));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("[ptq-static] " + w.model + " -> " + w.out + " method=minmax per-channel=false"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("done — "), std::string::npos) << r.out;
  ASSERT_TRUE(file_exists(w.out));

  const nlohmann::json j = read_json(report);
  EXPECT_EQ(j["mode"], "static");
  EXPECT_EQ(j["format"], "qdq");
  EXPECT_EQ(j["method"], "minmax");
  EXPECT_EQ(j["per_channel"], false);
  EXPECT_EQ(j["activation_type"], "int8");
  EXPECT_EQ(j["calibration"]["samples"], 16);
  EXPECT_EQ(j["calibration"]["inputs"], nlohmann::json::array({"x"}));
  EXPECT_EQ(j["fp32_bytes"].get<uint64_t>(), file_size(w.model));
  EXPECT_EQ(j["int8_bytes"].get<uint64_t>(), file_size(w.out));
  EXPECT_NEAR(j["size_ratio"].get<double>(), static_cast<double>(file_size(w.out)) / file_size(w.model), 1e-12);
  EXPECT_EQ(j["nodes_quantised"], 1);
  EXPECT_EQ(j["folded"][0]["node"], "relu");
  EXPECT_EQ(j["weights_quantised"], 1);
  EXPECT_EQ(j["biases_quantised"], 1);

  // Every quantised activation: its range, and the scale and zero point in the file.
  const Model q = load_model(w.out);
  ASSERT_EQ(j["activations"].size(), 2u);  // x and y (the Relu's output, from the Gemm)
  for (const auto& a : j["activations"]) {
    const std::string t = a["tensor"];
    const Initializer* s = q.graph.find_initializer(t + "_scale");
    const Initializer* z = q.graph.find_initializer(t + "_zero_point");
    ASSERT_TRUE(s && z) << t;
    EXPECT_EQ(a["scale"].get<double>(), static_cast<double>(s->tensor.data<float>()[0])) << t;
    EXPECT_EQ(a["zero_point"].get<int>(), z->tensor.data<int8_t>()[0]) << t;
    const double lo = std::min(0.0, a["min"].get<double>()), hi = std::max(0.0, a["max"].get<double>());
    EXPECT_NEAR(a["scale"].get<double>(), (hi - lo) / 255.0, 1e-6 * (hi - lo)) << t;
    EXPECT_LE(a["calibrated_min"].get<double>(), a["min"].get<double>());
    EXPECT_GE(a["calibrated_max"].get<double>(), a["max"].get<double>());
  }
  EXPECT_EQ(j["activations"][1]["tensor"], "y");
  EXPECT_EQ(j["activations"][1]["min"], 0.0);

  // Provenance: the files read and written, with their digests.
  const nlohmann::json& p = j["run_provenance"];
  ASSERT_TRUE(p.is_object());
  EXPECT_EQ(p["inputs"].size(), 2u);
  EXPECT_EQ(p["outputs"][0]["sha256"], sha256_hex(read_file_bounded(w.out, 1 << 20)));

  if (ort_available()) {
    const NamedTensors feeds{{"x", random_like({5, 4}, 9)}};
    EXPECT_NO_THROW(ort_run(w.out, feeds));
  }
}

TEST(StaticPtqCli, RangeTableRoundTripGivesTheSameFile) {
  Workspace w;
  const std::string ranges = w.dir + "/ranges.json", again = w.dir + "/again.onnx";
  CommandResult r = run_cli("ptq-static " + w.q(w.model) + " --calibration " + w.q(w.cal) +
                            " --calibrate-method entropy --ranges-out " + w.q(ranges));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_cli("ptq-static " + w.q(w.model) + " --ranges " + w.q(ranges) + " --output " + w.q(again));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_file_bounded(w.out, 1 << 20), read_file_bounded(again, 1 << 20));
}

TEST(StaticPtqCli, UsesTheRegistrysCalibrationSet) {
  Workspace w;
  std::ofstream(w.dir + "/registry.json")
      << R"({"schema_version": 1, "models": [{"id": "tiny_mlp", "kind": "fr", "onnx": "model.onnx", "opset": 17,
            "sha256": ")"
      << sha256_hex(read_file_bounded(w.model, 1 << 20))
      << R"(", "quant_mode": "fp32", "quant_calibration_set": "cal.npz"}]})";
  CommandResult r = run_cli("ptq-static " + w.q(w.model) + " --root " + w.q(w.dir));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("calibration set from the registry: " + w.dir + "/cal.npz"), std::string::npos) << r.out;
  EXPECT_TRUE(file_exists(w.out));
}

// A model with external data (fr_regressor_v1.onnx + .onnx.data): the output is self-contained,
// the report counts both input files, and the data file cannot be the output.
TEST(StaticPtqCli, InlinesExternalData) {
  TINYQ_REQUIRE_SHARED();
  const std::string src = shared_dir() + "/models/real/fr_regressor_v1.onnx";
  const std::string dir = temp_dir();
  const std::string model = dir + "/fr.onnx", data_name = "fr_regressor_v1.onnx.data";
  // The model names its data file by basename: copy both beside each other.
  write_file_atomic(model, read_file_bounded(src, 1 << 24));
  write_file_atomic(dir + "/" + data_name, read_file_bounded(src + ".data", 1 << 24));
  const Model m = load_model(model);
  const ValueInfo* in = m.graph.real_inputs().at(0);
  write_npz(dir + "/cal.npz", {{in->name, gate_generator_stack(sample_shape(*in), 32)}});
  const std::string report = dir + "/r.json", out = dir + "/fr.int8.onnx";
  CommandResult r = run_cli("ptq-static '" + model + "' --calibration '" + dir + "/cal.npz' --report-out '" + report + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(load_model_file(out).external_data.empty());
  EXPECT_EQ(read_json(report)["fp32_bytes"].get<uint64_t>(), file_size(model) + file_size(dir + "/" + data_name));

  r = run_cli("ptq-static '" + model + "' --calibration '" + dir + "/cal.npz' --output '" + dir + "/" + data_name + "'");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("is an external data file of the input model"), std::string::npos) << r.err;
  EXPECT_EQ(file_size(dir + "/" + data_name), file_size(src + ".data"));
}

struct CliError {
  const char* what;
  std::string args;     // after "ptq-static"
  std::string message;  // a piece of stderr
};

TEST(StaticPtqCli, ErrorsExitTwoAndLeaveNoFile) {
  Workspace w;
  Workspace old(12);
  const std::string nan_cal = w.dir + "/nan.npz", wrong = w.dir + "/wrong.npz", qdq = w.dir + "/qdq.onnx";
  Tensor nan = random_like({16, 4}, 4);
  nan.data<float>()[9] = std::numeric_limits<float>::quiet_NaN();
  write_npz(nan_cal, {{"x", nan}});
  write_npz(wrong, {{"features", random_like({16, 4})}});
  ASSERT_EQ(run_cli("ptq-static " + w.q(w.model) + " --calibration " + w.q(w.cal) + " --output " + w.q(qdq)).exit_code, 0);
  const std::string base = w.q(w.model) + " --calibration " + w.q(w.cal);
  const std::vector<CliError> cases = {
      {"missing model", w.q(w.dir + "/none.onnx") + " --calibration " + w.q(w.cal), "none.onnx: no such file"},
      {"not onnx", w.q(w.cal) + " --calibration " + w.q(w.cal), "expected an .onnx model file"},
      {"no calibration", w.q(w.model), "needs calibration data: pass --calibration"},
      {"missing calibration", w.q(w.model) + " --calibration " + w.q(w.dir + "/none.npz"), "none.npz: no such file"},
      {"wrong array", w.q(w.model) + " --calibration " + w.q(wrong), "has no array named 'x'"},
      {"NaN", w.q(w.model) + " --calibration " + w.q(nan_cal), "array 'x' holds 1 NaN/Inf value"},
      {"output is input", base + " --output " + w.q(w.model), "is the input model"},
      {"bad method", base + " --calibrate-method median", "--calibrate-method: 'median' is not one of"},
      {"bad percentile", base + " --percentile 0", "--percentile: must be in (0, 100]"},
      {"bad activation type", base + " --activation-type int4", "--activation-type: 'int4' is not int8 or uint8"},
      {"unknown excluded node", base + " --exclude-nodes gemm,nope", "no node named 'nope'"},
      {"per-channel at opset 12", w.q(old.model) + " --calibration " + w.q(old.cal) + " --per-channel",
       "--per-channel: needs opset 13"},
      {"already quantised", w.q(qdq) + " --calibration " + w.q(w.cal) + " --output " + w.q(w.dir + "/qq.onnx"),
       "is already quantised"},
      {"report is the output", base + " --report-out " + w.q(w.out), "must not be the input model, the output"},
      {"ranges and calibration", base + " --ranges " + w.q(w.dir + "/r.json"), "excludes"},
      {"bad range table", w.q(w.model) + " --ranges " + w.q(w.cal), "is not JSON"},
  };
  for (const CliError& c : cases) {
    CommandResult r = run_cli("ptq-static " + c.args);
    EXPECT_EQ(r.exit_code, 2) << c.what << ": " << r.out << r.err;
    EXPECT_NE(r.err.find("error: "), std::string::npos) << c.what << ": " << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << c.what << ": " << r.err;
    EXPECT_FALSE(file_exists(w.out)) << c.what << " left " << w.out;
    EXPECT_FALSE(file_exists(old.out)) << c.what;
  }
  EXPECT_FALSE(file_exists(w.dir + "/qq.onnx"));

  // The same NaN set passes with --allow-nonfinite, and the report counts the values skipped.
  const std::string report = w.dir + "/r.json";
  CommandResult r = run_cli("ptq-static " + w.q(w.model) + " --calibration " + w.q(nan_cal) +
                            " --allow-nonfinite --report-out " + w.q(report));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("warning: "), std::string::npos);
  EXPECT_EQ(read_json(report)["calibration"]["nonfinite_values"], 1);
}

}  // namespace
}  // namespace tinyq::test
