// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// The gate's core on model pairs the tests build (Identity graphs, so the expected outputs are
// the seed inputs themselves): verdicts, reasons, output selection, real-data inputs, rows,
// JSON and HTML.

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "common/file_util.h"
#include "gate/gate_json.h"
#include "gate/numpy_rng.h"
#include "model_builder.h"
#include "test_support.h"
#include "tinyq/gate.h"
#include "tinyq/model_io.h"
#include "tinyq/npz.h"
#include "xml_check.h"

namespace tinyq {
namespace {

using test::ModelBuilder;

// A [N, 6] input like vmaf_tiny's, symbolic batch.
ModelBuilder features_model() {
  ModelBuilder b;
  ValueInfo v;
  v.name = "features";
  v.dtype = DType::F32;
  v.has_shape = true;
  v.dims = {Dim{-1, "N"}, Dim{6, ""}};
  b.model.graph.inputs.push_back(v);
  return b;
}

std::string save(const Model& m, const std::string& dir, const std::string& name) {
  std::string path = dir + "/" + name;
  save_model(m, path);
  return path;
}

// fp32: y = features; int8: y = the same (identical models).
std::string identity_model(const std::string& dir, const std::string& name) {
  ModelBuilder b = features_model();
  b.node("Identity", {"features"}, {"y"}).output("y");
  return save(b.model, dir, name);
}

// An "int8" model whose output ignores the input: y = constant (a broken quantisation).
std::string constant_model(const std::string& dir, const std::string& name, std::vector<float> values) {
  ModelBuilder b = features_model();
  b.initializer("c", Tensor::from_vector<float>({1, 6}, values));
  b.node("Identity", {"c"}, {"y"}).output("y");
  return save(b.model, dir, name);
}

TEST(GateCore, IdenticalModelsPass) {
  std::string dir = test::temp_dir();
  std::string a = identity_model(dir, "m.onnx"), b = identity_model(dir, "m.int8.onnx");
  GateOptions opt;
  opt.keep_values = true;
  std::vector<GateRow> rows = gate_model_pair("m", "dynamic", a, b, 0.01, opt);
  ASSERT_EQ(rows.size(), 1u);
  const GateRow& r = rows[0];
  EXPECT_EQ(r.status, GateStatus::Pass) << r.reason;
  EXPECT_TRUE(r.has_numbers);
  EXPECT_DOUBLE_EQ(r.plcc, 1.0);
  EXPECT_NEAR(r.drop, 0.0, 1e-15);
  EXPECT_EQ(r.worst_abs, 0.0);
  EXPECT_EQ(r.samples, 16);
  EXPECT_EQ(r.values, 16 * 6);
  EXPECT_EQ(r.output, "y");
  EXPECT_EQ(r.inputs, "seed");
  // The compared values are the seed's noise: shape [1, 6] per sample from one generator.
  NumpyGenerator g(0);
  Tensor expect = g.random_f32({16, 6});
  ASSERT_EQ(r.fp32_values.size(), 96u);
  for (size_t i = 0; i < 96; ++i) ASSERT_EQ(r.fp32_values[i], expect.data<float>()[i]) << i;
  EXPECT_EQ(gate_exit_code(rows), 0);
}

TEST(GateCore, ConstantOutputIsUndefinedNotAPass) {
  std::string dir = test::temp_dir();
  std::string a = identity_model(dir, "m.onnx");
  std::string b = constant_model(dir, "m.int8.onnx", {0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f});
  std::vector<GateRow> rows = gate_model_pair("m", "dynamic", a, b, 0.01);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].status, GateStatus::Fail);
  EXPECT_EQ(rows[0].reason, "PLCC undefined (constant output)");
  EXPECT_FALSE(rows[0].has_numbers);
  EXPECT_TRUE(std::isnan(rows[0].plcc));
  EXPECT_EQ(gate_exit_code(rows), 1);
  EXPECT_NE(gate_row_line(rows[0]).find("[FAIL] m "), std::string::npos);
  EXPECT_NE(gate_row_line(rows[0]).find("PLCC undefined (constant output)"), std::string::npos);
  // Even with a huge budget a constant output never passes.
  rows = gate_model_pair("m", "dynamic", a, b, 1.0);
  EXPECT_EQ(rows[0].status, GateStatus::Fail);
  nlohmann::json j = gate_rows_to_json(rows);
  EXPECT_TRUE(j[0]["plcc"].is_null());
  EXPECT_TRUE(j[0]["drop"].is_null());
  EXPECT_EQ(j[0]["pass"], false);
}

TEST(GateCore, NonFiniteOutputFailsWithReason) {
  std::string dir = test::temp_dir();
  std::string a = identity_model(dir, "m.onnx");
  float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  std::string b = constant_model(dir, "m.int8.onnx", {0.1f, nan, 0.3f, inf, 0.5f, 0.6f});
  std::vector<GateRow> rows = gate_model_pair("m", "dynamic", a, b, 1.0);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].status, GateStatus::Fail);
  EXPECT_EQ(rows[0].reason, "int8 output has 32 non-finite values (of 96)");
  EXPECT_EQ(gate_exit_code(rows), 1);
  // The same outputs on the fp32 side are named as such.
  rows = gate_model_pair("m", "dynamic", b, a, 1.0);
  EXPECT_EQ(rows[0].reason, "fp32 output has 32 non-finite values (of 96)");
}

TEST(GateCore, BudgetDecidesWhenCorrelated) {
  std::string dir = test::temp_dir();
  std::string a = identity_model(dir, "m.onnx");
  // Output 0.5 everywhere except one feature that follows the input: PLCC well below 1.
  ModelBuilder b = features_model();
  b.node("Identity", {"features"}, {"y"}).output("y");
  std::string same = save(b.model, dir, "same.int8.onnx");
  std::vector<GateRow> rows = gate_model_pair("m", "static", a, same, 0.0);
  EXPECT_EQ(rows[0].status, GateStatus::Pass) << "drop 0 <= budget 0 passes: " << rows[0].reason;
  EXPECT_EQ(rows[0].mode, "static");
}

TEST(GateCore, MissingFilesAreNamedErrors) {
  std::string dir = test::temp_dir();
  std::string a = identity_model(dir, "m.onnx");
  std::vector<GateRow> rows = gate_model_pair("m", "dynamic", a, dir + "/m.int8.onnx", 0.01);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].status, GateStatus::Error);
  EXPECT_EQ(rows[0].reason, "int8 model missing: " + dir + "/m.int8.onnx");
  EXPECT_EQ(gate_exit_code(rows), 2);
  EXPECT_EQ(gate_row_line(rows[0]), "[FAIL] m                        mode=dynamic \xe2\x80\x94 int8 model missing: " + dir +
                                        "/m.int8.onnx");
  rows = gate_model_pair("m", "dynamic", dir + "/gone.onnx", a, 0.01);
  EXPECT_EQ(rows[0].reason, "fp32 model missing: " + dir + "/gone.onnx");
  rows = gate_model_pair("m", "dynamic", dir + "/gone.onnx", dir + "/gone.int8.onnx", 0.01);
  EXPECT_EQ(rows[0].reason, "fp32 model missing: " + dir + "/gone.onnx; int8 model missing: " + dir + "/gone.int8.onnx");
}

TEST(GateCore, BadModelIsAnError) {
  std::string dir = test::temp_dir();
  std::string a = identity_model(dir, "m.onnx");
  write_file_atomic(dir + "/m.int8.onnx", "this is not an onnx file");
  std::vector<GateRow> rows = gate_model_pair("m", "dynamic", a, dir + "/m.int8.onnx", 0.01);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].status, GateStatus::Error);
  EXPECT_NE(rows[0].reason.find(dir + "/m.int8.onnx"), std::string::npos) << rows[0].reason;
  EXPECT_EQ(gate_exit_code(rows), 2);

  // An int8 model fed differently from its fp32 model cannot be compared.
  ModelBuilder b;
  b.input("other", DType::F32, {1, 6}).node("Identity", {"other"}, {"y"}).output("y");
  std::string other = save(b.model, dir, "other.int8.onnx");
  rows = gate_model_pair("m", "dynamic", a, other, 0.01);
  EXPECT_EQ(rows[0].status, GateStatus::Error);
  EXPECT_NE(rows[0].reason.find("no input named 'features'"), std::string::npos) << rows[0].reason;
}

// A declared shape too large to synthesise is refused, not allocated.
TEST(GateCore, HugeDeclaredInputIsRefused) {
  std::string dir = test::temp_dir();
  test::ModelBuilder b;
  b.input("x", DType::F32, {1, 100000, 100000}).node("Identity", {"x"}, {"y"}).output("y");
  std::string a = save(b.model, dir, "big.onnx"), c = save(b.model, dir, "big.int8.onnx");
  std::vector<GateRow> rows = gate_model_pair("big", "dynamic", a, c, 0.01);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].status, GateStatus::Error);
  EXPECT_NE(rows[0].reason.find("over the gate's limit"), std::string::npos) << rows[0].reason;
}

TEST(GateCore, ExitCodeOrder) {
  GateRow pass, fail, error;
  pass.status = GateStatus::Pass;
  fail.status = GateStatus::Fail;
  error.status = GateStatus::Error;
  EXPECT_EQ(gate_exit_code({}), 0);
  EXPECT_EQ(gate_exit_code({pass, pass}), 0);
  EXPECT_EQ(gate_exit_code({pass, fail}), 1);
  EXPECT_EQ(gate_exit_code({fail, error, pass}), 2);
}

// The row format is the seed's, byte for byte, on the published vmaf_tiny_v3 numbers.
TEST(GateCore, RowLineMatchesTheSeed) {
  GateRow r;
  r.id = "vmaf_tiny_v3";
  r.mode = "dynamic";
  r.status = GateStatus::Pass;
  r.has_numbers = true;
  r.plcc = 0.99988;
  r.drop = 1 - 0.99988;
  r.budget = 0.01;
  r.worst_abs = 2.205789566040039;
  EXPECT_EQ(gate_row_line(r),
            "[PASS] vmaf_tiny_v3             mode=dynamic PLCC=0.999880  drop=0.000120  budget=0.0100  worst_abs=2.2058");
  r.status = GateStatus::Fail;
  r.budget = 0.0001;
  r.reason = "drop 0.000120 exceeds budget 0.0001";
  EXPECT_EQ(gate_row_line(r), "[FAIL] vmaf_tiny_v3             mode=dynamic PLCC=0.999880  drop=0.000120  budget=0.0001  "
                              "worst_abs=2.2058  \xe2\x80\x94 drop 0.000120 exceeds budget 0.0001");
  r.id = "a_very_long_model_identifier_v1";
  EXPECT_EQ(gate_row_line(r).rfind("[FAIL] a_very_long_model_identifier_v1 mode=dynamic PLCC=", 0), 0u);
  EXPECT_EQ(gate_skip_line("fr_regressor_v1"), "[skip] fr_regressor_v1 \xe2\x80\x94 quant_mode=fp32, no quantised model to gate");
}

// Two outputs: the first is gated by default; --output-name picks one, --all-outputs gates each.
TEST(GateCore, OutputSelection) {
  std::string dir = test::temp_dir();
  ModelBuilder f = features_model();
  f.node("Identity", {"features"}, {"score"}).node("Identity", {"features"}, {"aux"}).output("score").output("aux");
  std::string a = save(f.model, dir, "m.onnx");
  ModelBuilder q = features_model();
  q.initializer("c", Tensor::from_vector<float>({1, 6}, {1, 1, 1, 1, 1, 1}));
  q.node("Identity", {"features"}, {"score"}).node("Identity", {"c"}, {"aux"}).output("score").output("aux");
  std::string b = save(q.model, dir, "m.int8.onnx");

  std::vector<GateRow> rows = gate_model_pair("m", "dynamic", a, b, 0.01);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].output, "score");
  EXPECT_EQ(rows[0].status, GateStatus::Pass);
  EXPECT_EQ(gate_row_line(rows[0]).find("output="), std::string::npos);

  GateOptions opt;
  opt.output_name = "aux";
  rows = gate_model_pair("m", "dynamic", a, b, 0.01, opt);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].output, "aux");
  EXPECT_EQ(rows[0].reason, "PLCC undefined (constant output)");
  EXPECT_NE(gate_row_line(rows[0]).find(" output=aux "), std::string::npos) << gate_row_line(rows[0]);

  opt = {};
  opt.all_outputs = true;
  rows = gate_model_pair("m", "dynamic", a, b, 0.01, opt);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].output, "score");
  EXPECT_EQ(rows[0].status, GateStatus::Pass);
  EXPECT_EQ(rows[1].output, "aux");
  EXPECT_EQ(rows[1].status, GateStatus::Fail);
  EXPECT_EQ(gate_exit_code(rows), 1);

  opt = {};
  opt.output_name = "nope";
  rows = gate_model_pair("m", "dynamic", a, b, 0.01, opt);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].status, GateStatus::Error);
  EXPECT_NE(rows[0].reason.find("no output named 'nope' (outputs: score, aux)"), std::string::npos) << rows[0].reason;
}

// Every input is fed, each from the one generator in sample-major, input order.
TEST(GateCore, AllInputsFedInSeedOrder) {
  std::string dir = test::temp_dir();
  ModelBuilder b;
  ValueInfo x;
  x.name = "x";
  x.dtype = DType::F32;
  x.has_shape = true;
  x.dims = {Dim{-1, "batch"}, Dim{-1, ""}, Dim{3, ""}};  // symbolic and unknown dims become 1
  b.model.graph.inputs.push_back(x);
  ValueInfo z = x;
  z.name = "z";
  z.dims = {Dim{2, ""}, Dim{-1, "w"}};
  b.model.graph.inputs.push_back(z);
  b.node("Identity", {"x"}, {"ox"}).node("Identity", {"z"}, {"oz"}).output("ox").output("oz");
  std::string a = save(b.model, dir, "two.onnx"), c = save(b.model, dir, "two.int8.onnx");
  GateOptions opt;
  opt.all_outputs = true;
  opt.keep_values = true;
  opt.samples = 3;
  std::vector<GateRow> rows = gate_model_pair("two", "dynamic", a, c, 0.01, opt);
  ASSERT_EQ(rows.size(), 2u) << rows[0].reason;
  NumpyGenerator g(0);
  std::vector<float> want_x, want_z;
  for (int s = 0; s < 3; ++s) {
    for (float v : g.random_f32({1, 1, 3}).to_vector<float>()) want_x.push_back(v);
    for (float v : g.random_f32({2, 1}).to_vector<float>()) want_z.push_back(v);
  }
  EXPECT_EQ(rows[0].fp32_values, want_x);
  EXPECT_EQ(rows[1].fp32_values, want_z);
  EXPECT_EQ(rows[0].samples, 3);
}

// --data: real inputs, [N, ...] per input name, gated beside the seed inputs.
TEST(GateCore, DataInputs) {
  std::string dir = test::temp_dir();
  std::string a = identity_model(dir, "m.onnx"), b = identity_model(dir, "m.int8.onnx");
  std::vector<double> values;
  for (int i = 0; i < 5 * 6; ++i) values.push_back(0.25 * i - 3.0);  // float64, narrowed by the gate
  write_npz(dir + "/data.npz", {{"features", Tensor::from_vector<double>({5, 6}, values)}});
  GateOptions opt;
  opt.data_path = dir + "/data.npz";
  opt.keep_values = true;
  std::vector<GateRow> rows = gate_model_pair("m", "dynamic", a, b, 0.01, opt);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].inputs, "seed");
  EXPECT_EQ(rows[1].inputs, "data");
  EXPECT_EQ(rows[1].samples, 5);
  EXPECT_EQ(rows[1].values, 30);
  EXPECT_EQ(rows[1].status, GateStatus::Pass);
  EXPECT_EQ(rows[1].fp32_values[7], 0.25f * 7 - 3.0f);
  EXPECT_NE(gate_row_line(rows[1]).find("mode=dynamic inputs=data PLCC="), std::string::npos) << gate_row_line(rows[1]);

  // Data only, with an extra leading dim per sample ([N, 1, 6] for a rank-2 input).
  write_npz(dir + "/data3.npz", {{"features", Tensor::from_vector<float>({2, 1, 6}, std::vector<float>(12, 1.5f))},
                                 {"unused", Tensor::from_vector<float>({1}, {0.0f})}});
  opt.data_path = dir + "/data3.npz";
  opt.seed_inputs = false;
  rows = gate_model_pair("m", "dynamic", a, b, 0.01, opt);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].samples, 2);
  EXPECT_EQ(rows[0].reason, "PLCC undefined (constant output)");

  // Wrong data: named errors, never a crash.
  write_npz(dir + "/bad.npz", {{"other", Tensor::from_vector<float>({2, 6}, std::vector<float>(12, 0.f))}});
  opt.data_path = dir + "/bad.npz";
  rows = gate_model_pair("m", "dynamic", a, b, 0.01, opt);
  EXPECT_EQ(rows[0].status, GateStatus::Error);
  EXPECT_NE(rows[0].reason.find("no array named 'features' for the model's input (arrays: other)"), std::string::npos)
      << rows[0].reason;
  write_npz(dir + "/bad2.npz", {{"features", Tensor::from_vector<float>({2, 2, 1, 6}, std::vector<float>(24, 0.f))}});
  opt.data_path = dir + "/bad2.npz";
  rows = gate_model_pair("m", "dynamic", a, b, 0.01, opt);
  EXPECT_EQ(rows[0].status, GateStatus::Error);
  EXPECT_NE(rows[0].reason.find("expected [N, ...]"), std::string::npos) << rows[0].reason;
  opt.data_path = dir + "/missing.npz";
  rows = gate_model_pair("m", "dynamic", a, b, 0.01, opt);
  EXPECT_EQ(rows[0].status, GateStatus::Error);
  EXPECT_NE(rows[0].reason.find("missing.npz"), std::string::npos) << rows[0].reason;
}

TEST(GateCore, JsonRows) {
  std::string dir = test::temp_dir();
  std::string a = identity_model(dir, "m.onnx"), b = identity_model(dir, "m.int8.onnx");
  std::vector<GateRow> rows = gate_model_pair("m", "dynamic", a, b, 0.01);
  std::vector<GateRow> missing = gate_model_pair("gone", "static", a, dir + "/nope.onnx", 0.02);
  rows.insert(rows.end(), missing.begin(), missing.end());
  nlohmann::json j = nlohmann::json::parse(gate_rows_json(rows));
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j[0]["id"], "m");
  EXPECT_EQ(j[0]["mode"], "dynamic");
  EXPECT_EQ(j[0]["fp32_path"], a);
  EXPECT_EQ(j[0]["int8_path"], b);
  EXPECT_EQ(j[0]["plcc"], 1.0);
  EXPECT_EQ(j[0]["budget"], 0.01);
  EXPECT_EQ(j[0]["worst_abs"], 0.0);
  EXPECT_EQ(j[0]["pass"], true);
  EXPECT_EQ(j[0]["status"], "pass");
  EXPECT_TRUE(j[0]["reason"].is_null());
  EXPECT_EQ(j[0]["samples"], 16);
  EXPECT_EQ(j[1]["pass"], false);
  EXPECT_EQ(j[1]["status"], "error");
  EXPECT_EQ(j[1]["budget"], 0.02);
  EXPECT_TRUE(j[1]["plcc"].is_null());
  EXPECT_TRUE(j[1]["worst_abs"].is_null());
  EXPECT_EQ(j[1]["reason"], "int8 model missing: " + dir + "/nope.onnx");
}

TEST(GateCore, HtmlReportIsWellFormed) {
  std::string dir = test::temp_dir();
  std::string a = identity_model(dir, "m.onnx"), b = identity_model(dir, "m.int8.onnx");
  std::string c = constant_model(dir, "c.int8.onnx", {2, 2, 2, 2, 2, 2});
  GateOptions opt;
  opt.keep_values = true;
  std::vector<GateRow> rows = gate_model_pair("good<&>\"'", "dynamic", a, b, 0.01, opt);
  for (auto& r : gate_model_pair("constant", "dynamic", a, c, 0.01, opt)) rows.push_back(r);
  for (auto& r : gate_model_pair("missing", "dynamic", a, dir + "/x.onnx", 0.01, opt)) rows.push_back(r);
  std::string html = gate_html_report(rows, "tinyq gate <test>");
  EXPECT_EQ(test::xml_check(html), "");
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  // Self-contained: no scripts, nothing fetched.
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);
  EXPECT_EQ(html.find("href=\"http"), std::string::npos);
  EXPECT_EQ(html.find("url("), std::string::npos);
  // One scatter and one histogram per row with values, the identity line, the numbers.
  size_t svgs = 0;
  for (size_t p = html.find("<svg"); p != std::string::npos; p = html.find("<svg", p + 1)) ++svgs;
  EXPECT_EQ(svgs, 4u);
  EXPECT_NE(html.find("class=\"identity\""), std::string::npos);
  EXPECT_NE(html.find("good&lt;&amp;&gt;&quot;&#39;"), std::string::npos);
  EXPECT_NE(html.find("PLCC undefined (constant output)"), std::string::npos);
  EXPECT_NE(html.find("int8 model missing"), std::string::npos);
  EXPECT_NE(html.find("<td>1.000000</td>"), std::string::npos);
  // The checker itself catches what it should.
  EXPECT_NE(test::xml_check("<a><b></a></b>"), "");
  EXPECT_NE(test::xml_check("<a x=1></a>"), "");
  EXPECT_NE(test::xml_check("<a>1 < 2</a>"), "");
  EXPECT_NE(test::xml_check("<a>&nbsp;</a>"), "");
  EXPECT_NE(test::xml_check("<a></a><b></b>"), "");
}

// Many values: the scatter is thinned to a bounded number of points, the page stays small.
TEST(GateCore, HtmlScatterIsBounded) {
  GateRow r;
  r.id = "big";
  r.mode = "dynamic";
  r.status = GateStatus::Pass;
  r.has_numbers = true;
  r.values = 200000;
  for (int i = 0; i < 200000; ++i) {
    r.fp32_values.push_back(std::sin(i * 0.001f));
    r.int8_values.push_back(std::sin(i * 0.001f) + 0.01f * std::cos(i * 0.37f));
  }
  std::string html = gate_html_report({r}, "big");
  EXPECT_EQ(test::xml_check(html), "");
  size_t circles = 0;
  for (size_t p = html.find("<circle"); p != std::string::npos; p = html.find("<circle", p + 1)) ++circles;
  EXPECT_LE(circles, 2501u + 1u);
  EXPECT_GE(circles, 2000u);
  EXPECT_LT(html.size(), 300000u);
}

}  // namespace
}  // namespace tinyq
