// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// QAT smoke runs: the files `tinyq qat --smoke` writes load in ONNX Runtime and in tinyq's
// runtime with matching results, the int8 file carries the ranges QAT learned, and the CLI
// writes a report with run provenance.

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "test_support.h"
#include "tinyq/error.h"
#include "tinyq/model_io.h"
#include "tinyq/qat.h"
#include "tinyq/session.h"

namespace tinyq {
namespace {

Tensor random_batch(int64_t rows, int64_t features, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.5f);
  std::vector<float> v(static_cast<size_t>(rows * features));
  for (auto& x : v) x = normal(rng);
  return Tensor::from_vector<float>({rows, features}, v);
}

qat::QatConfig smoke_config(const std::string& dir) {
  qat::QatConfig c;
  c.smoke = true;
  c.hidden = {8, 8};
  c.lr = 1e-2;
  c.output = dir + "/mlp.int8.onnx";
  return c;
}

TEST(QatSmoke, MlpFilesRunAlikeInOrtAndTinyq) {
  TINYQ_REQUIRE_ORT();
  std::string dir = test::temp_dir();
  qat::QatConfig c = smoke_config(dir);
  qat::QatResult r = qat::run_qat(c);
  EXPECT_EQ(r.fp32_path, dir + "/mlp.qat.fp32.onnx");
  EXPECT_TRUE(r.smoke);
  EXPECT_EQ(r.parameters, 6 * 8 + 8 + 8 * 8 + 8 + 8 + 1);
  ASSERT_EQ(r.epochs.size(), 2u);
  EXPECT_EQ(r.ranges_source, "qat");

  NamedTensors feeds = {{"input", random_batch(40, 6, 7)}};
  for (const std::string& path : {r.fp32_path, r.int8_path}) {
    SCOPED_TRACE(path);
    Session s(load_model(path));
    NamedTensors ours = s.run(feeds);
    NamedTensors ort = test::ort_run(path, feeds);
    ASSERT_EQ(ours.size(), 1u);
    ASSERT_EQ(ort.size(), 1u);
    EXPECT_EQ(ours[0].second.shape(), (Shape{40}));
    EXPECT_LE(test::max_abs_diff(ours[0].second, ort[0].second), 1e-5);
  }
}

TEST(QatSmoke, Int8FileUsesTheLearnedRanges) {
  std::string dir = test::temp_dir();
  qat::QatResult r = qat::run_qat(smoke_config(dir));
  ASSERT_FALSE(r.ranges.ranges.empty());
  // Every quantised activation covers exactly the range QAT's observers ended with (or shares
  // its producer's, as Squeeze does).
  size_t own = 0;
  for (const auto& a : r.activations) {
    if (!a.shared_with.empty()) continue;
    const TensorRange* learned = r.ranges.find(a.tensor);
    ASSERT_NE(learned, nullptr) << a.tensor;
    EXPECT_FLOAT_EQ(a.min, std::min(learned->min, 0.0f)) << a.tensor;
    EXPECT_FLOAT_EQ(a.max, std::max(learned->max, 0.0f)) << a.tensor;
    ++own;
  }
  EXPECT_GE(own, 3u);  // the Gemm inputs and the output at least
  // The int8 file holds QuantizeLinear/DequantizeLinear pairs and int8 weights.
  Model m = load_model(r.int8_path);
  int q = 0, dq = 0;
  for (const auto& n : m.graph.nodes) {
    q += n.op_type == "QuantizeLinear";
    dq += n.op_type == "DequantizeLinear";
  }
  EXPECT_GE(q, 3);
  EXPECT_GT(dq, q);
  // int8 stays close to the fp32 file it was made from.
  EXPECT_GT(r.int8_vs_fp32_plcc, 0.9);
}

TEST(QatSmoke, RecalibrateReplacesTheLearnedRanges) {
  std::string dir = test::temp_dir();
  qat::QatConfig c = smoke_config(dir);
  c.recalibrate = true;
  c.n_calibration = 16;
  qat::QatResult r = qat::run_qat(c);
  EXPECT_EQ(r.ranges_source, "recalibrated");
  EXPECT_EQ(r.ranges.samples, 16);
}

TEST(QatSmoke, DistillTrainsAgainstTheTeacher) {
  std::string dir = test::temp_dir();
  qat::QatConfig c = smoke_config(dir);
  c.distill = true;
  qat::QatResult r = qat::run_qat(c);
  EXPECT_GT(r.int8_vs_fp32_plcc, 0.9);
}

TEST(QatSmoke, NpzCacheAndBadInputs) {
  std::string dir = test::temp_dir();
  // A small regression set: 3 features, y a smooth function of them.
  std::mt19937_64 rng(1);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const int64_t n = 600;
  std::vector<float> x(n * 3), y(n);
  for (int64_t i = 0; i < n; ++i) {
    for (int f = 0; f < 3; ++f) x[i * 3 + f] = normal(rng);
    y[i] = 0.8f * x[i * 3] - 0.5f * std::tanh(x[i * 3 + 1]) + 0.3f * x[i * 3 + 2] * x[i * 3 + 2];
  }
  write_npz(dir + "/data.npz", {{"x", Tensor::from_vector<float>({n, 3}, x)}, {"y", Tensor::from_vector<float>({n}, y)}});
  qat::QatConfig c;
  c.cache = dir + "/data.npz";
  c.hidden = {16};
  c.lr = 3e-3;
  c.loss = "mse";
  c.epochs_fp32 = 15;
  c.epochs_qat = 3;
  c.output = dir + "/r.int8.onnx";
  qat::QatResult r = qat::run_qat(c);
  EXPECT_FALSE(r.smoke);
  EXPECT_EQ(r.features, 3);
  EXPECT_EQ(r.train_rows + r.val_rows + r.test_rows, n);
  EXPECT_GT(r.test_plcc_fp32, 0.8);
  EXPECT_GT(r.test_plcc_int8, 0.8);

  // Distillation from an existing fp32 model run in tinyq's runtime: the file just written.
  qat::QatConfig student = c;
  student.distill = true;
  student.teacher = r.fp32_path;
  student.epochs_fp32 = 2;  // a weak start: the teacher carries the fit
  student.epochs_qat = 8;
  student.lr_qat = 3e-3;
  student.output = dir + "/student.int8.onnx";
  qat::QatResult s = qat::run_qat(student);
  EXPECT_NEAR(s.test_plcc_teacher, r.test_plcc_fp32, 1e-6);  // same held-out rows, same model
  EXPECT_GT(s.test_plcc_int8, 0.8);

  qat::QatConfig bad = c;
  bad.observer = "ema";
  EXPECT_THROW(qat::run_qat(bad), Error);
  bad = c;
  bad.distill = true;
  bad.teacher = dir + "/missing.onnx";
  EXPECT_THROW(qat::run_qat(bad), Error);
  bad = c;
  bad.exclude_nodes = {"no_such_node"};
  EXPECT_THROW(qat::run_qat(bad), Error);
  bad = c;
  bad.loss = "huber";
  EXPECT_THROW(qat::run_qat(bad), Error);
  bad = c;
  bad.model = "resnet";
  EXPECT_THROW(qat::run_qat(bad), Error);
  write_npz(dir + "/nox.npz", {{"y", Tensor::from_vector<float>({n}, y)}});
  bad = c;
  bad.cache = dir + "/nox.npz";
  EXPECT_THROW(qat::run_qat(bad), Error);
}

TEST(QatCli, SmokeWritesFilesAndReport) {
  std::string dir = test::temp_dir();
  {
    std::ofstream f(dir + "/c.yaml");
    f << "model: mlp\nmodel_args: {hidden: [4], lr: 0.01}\ncache: missing.parquet\nqat: {epochs_fp32: 3, epochs_qat: 2}\n";
  }
  auto res = test::run_cli("qat --config " + dir + "/c.yaml --output " + dir + "/o.int8.onnx --report-out " + dir +
                           "/r.json --seed 3");
  ASSERT_EQ(res.exit_code, 0) << res.err;
  EXPECT_NE(res.err.find("smoke mode"), std::string::npos);
  EXPECT_NE(res.err.find("qat  epoch 1/1"), std::string::npos);  // plain lines off a terminal
  std::ifstream rf(dir + "/r.json");
  nlohmann::json report = nlohmann::json::parse(rf);
  EXPECT_EQ(report["format"], "tinyq-qat-report");
  EXPECT_EQ(report["data"]["seed"], 3);
  EXPECT_TRUE(report["run_provenance"].contains("outputs"));
  EXPECT_EQ(report["phases"]["qat"]["train_loss"].size(), 1u);
  EXPECT_TRUE(test::run_cli("inspect " + dir + "/o.int8.onnx").exit_code == 0);

  auto bad = test::run_cli("qat --config " + dir + "/nope.yaml --output " + dir + "/x.onnx");
  EXPECT_EQ(bad.exit_code, 2);
  {
    std::ofstream f(dir + "/bad.yaml");
    f << "model: mlp\nmodel_args: {hidden: oops}\n";
  }
  bad = test::run_cli("qat --config " + dir + "/bad.yaml --output " + dir + "/x.onnx");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("hidden"), std::string::npos);
}

}  // namespace
}  // namespace tinyq
