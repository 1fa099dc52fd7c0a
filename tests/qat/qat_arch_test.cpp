// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// QAT on every architecture the config can name: `--smoke` runs of the built-ins (mlp,
// learned_filter, nr_metric) and imports of existing fp32 models (`model: onnx`) write fp32 and
// int8 files that ONNX Runtime and tinyq's runtime load and run alike; the int8 file computes
// what the trainer's fake-quantised forward pass computed (fake quantisation sits where the
// exporter puts Q/DQ); an import keeps its graph and only its weights change; bad configs are a
// clean tinyq::Error.

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "model_builder.h"
#include "qat/qat_data.h"
#include "test_support.h"
#include "tinyq/error.h"
#include "tinyq/model_io.h"
#include "tinyq/qat.h"
#include "tinyq/session.h"

namespace tinyq {
namespace {

bool file_exists_for_test(const std::string& path) { return std::ifstream(path).good(); }

Tensor uniform_batch(const Shape& shape, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(shape_numel(shape)));
  for (auto& x : v) x = uniform(rng);
  return Tensor::from_vector<float>(shape, v);
}

std::multiset<std::string> op_kinds(const Model& m) {
  std::multiset<std::string> ops;
  for (const auto& n : m.graph.nodes) ops.insert(n.op_type);
  return ops;
}

std::set<std::string> op_set(const Model& m) {
  std::set<std::string> ops;
  for (const auto& n : m.graph.nodes) ops.insert(n.op_type);
  return ops;
}

// The scale of the int8 file's output (its last quantised activation covers it).
double output_step(const qat::QatResult& r, const std::string& output) {
  for (const auto& a : r.activations)
    if (a.tensor == output) return a.scale;
  return 0.0;
}

// Both files run in tinyq's runtime and in ONNX Runtime on `input`, with the same results: fp32
// to float rounding, int8 to within one step of the output's quantisation (the two runtimes
// may round an accumulator on either side of a half step).
void expect_runtimes_agree(const qat::QatResult& r, const std::string& input, const Tensor& x) {
  const std::string output = load_model(r.fp32_path).graph.outputs.at(0).name;
  const double step = output_step(r, output);
  for (const std::string& path : {r.fp32_path, r.int8_path}) {
    SCOPED_TRACE(path);
    const bool int8 = path == r.int8_path;
    Session s(load_model(path));
    NamedTensors feeds = {{input, x}};
    NamedTensors ours = s.run(feeds);
    NamedTensors ort = test::ort_run(path, feeds);
    ASSERT_EQ(ours.size(), 1u);
    ASSERT_EQ(ort.size(), 1u);
    EXPECT_EQ(ours[0].second.shape(), ort[0].second.shape());
    const double tol = int8 ? std::max(1e-5, 1.01 * step) : 1e-4 * std::max(1.0, test::max_abs(ort[0].second));
    EXPECT_LE(test::max_abs_diff(ours[0].second, ort[0].second), tol);
  }
}

qat::QatConfig smoke(const std::string& model, const std::string& dir) {
  qat::QatConfig c;
  c.model = model;
  c.smoke = true;
  c.lr = 3e-3;
  c.batch_size = 16;
  c.output = dir + "/" + model + ".int8.onnx";
  return c;
}

// The int8 file against the trainer's fake-quantised forward pass, relative to the outputs'
// spread: a misplaced fake quantisation (a missing Q/DQ, a per-tensor weight the file stores
// per channel) shows up as a gap of many quantisation steps.
void expect_int8_matches_qat(const qat::QatResult& r) {
  const std::string output = load_model(r.fp32_path).graph.outputs.at(0).name;
  const double step = output_step(r, output);
  ASSERT_GT(step, 0.0) << "the output is not quantised";
  EXPECT_LE(r.int8_vs_qat_max_abs, 4.0 * step) << "output step " << step;
  EXPECT_TRUE(r.warnings.empty()) << r.warnings.at(0);
  EXPECT_EQ(r.weights_quantised, r.fake_quant_weights.size());
}

TEST(QatArch, LearnedFilterSmoke) {
  TINYQ_REQUIRE_ORT();
  std::string dir = test::temp_dir();
  qat::QatResult r = qat::run_qat(smoke("learned_filter", dir));
  EXPECT_EQ(r.sample_shape, (std::vector<int64_t>{1, 32, 32}));
  EXPECT_EQ(r.outputs_per_row, 32 * 32);
  EXPECT_EQ(r.epochs_fp32, 1);
  // learned_filter_v1's layer sizes: entry 1->16, 4 blocks of two 16->16, exit 16->1.
  EXPECT_EQ(r.parameters, (9 * 16 + 16) + 8 * (9 * 16 * 16 + 16) + (9 * 16 + 1));
  Model fp32 = load_model(r.fp32_path);
  EXPECT_EQ(op_set(fp32), (std::set<std::string>{"Conv", "Relu", "Add", "Clip"}));
  EXPECT_EQ(op_kinds(fp32).count("Conv"), 10u);
  EXPECT_EQ(r.fake_quant_weights.size(), 10u);
  for (const auto& w : r.fake_quant_weights) EXPECT_EQ(w.second, 0) << w.first;  // per output channel
  expect_int8_matches_qat(r);
  EXPECT_GT(r.int8_vs_fp32_plcc, 0.99);
  // Fully convolutional: the files run at another frame size too.
  expect_runtimes_agree(r, "input", uniform_batch({2, 1, 24, 40}, 5));
}

TEST(QatArch, NrMetricSmoke) {
  TINYQ_REQUIRE_ORT();
  std::string dir = test::temp_dir();
  qat::QatResult r = qat::run_qat(smoke("nr_metric", dir));
  EXPECT_EQ(r.outputs_per_row, 1);
  Model fp32 = load_model(r.fp32_path);
  EXPECT_EQ(op_set(fp32), (std::set<std::string>{"Conv", "Clip", "GlobalAveragePool", "Flatten", "Gemm", "Squeeze"}));
  // nr_metric_v1's layout: stem + 5 depthwise-separable blocks, channels 16 -> 128.
  EXPECT_EQ(op_kinds(fp32).count("Conv"), 11u);
  EXPECT_EQ(fp32.graph.find_initializer("head.weight")->tensor.shape(), (Shape{1, 128}));
  int depthwise = 0;
  for (const auto& n : fp32.graph.nodes) depthwise += n.op_type == "Conv" && n.attr_int("group", 1) > 1;
  EXPECT_EQ(depthwise, 5);
  expect_int8_matches_qat(r);
  EXPECT_GT(r.int8_vs_fp32_plcc, 0.9);
  expect_runtimes_agree(r, "input", uniform_batch({3, 1, 32, 32}, 6));
}

// Beyond one smoke epoch: on 256 synthetic frames scored by their noise level, the metric learns
// (no normalisation layers, so this also checks the initialisation keeps the signal alive) and
// its int8 file keeps what it learned.
TEST(QatArch, NrMetricLearnsAndTheInt8FileKeepsIt) {
  std::string dir = test::temp_dir();
  qat::Dataset d = qat::smoke_images(1, 32, 32, qat::SmokeImageTarget::Quality, 1, 256);
  write_npz(dir + "/frames.npz", {{"x", d.input_tensor()}, {"y", Tensor::from_vector<float>({d.rows}, d.y)}});
  qat::QatConfig c = smoke("nr_metric", dir);
  c.smoke = false;
  c.cache = dir + "/frames.npz";
  c.epochs_fp32 = 8;
  c.epochs_qat = 3;
  c.lr_qat = 1e-3;
  qat::QatResult r = qat::run_qat(c);
  EXPECT_GT(r.test_plcc_warm_fp32, 0.85);
  EXPECT_LT(r.test_plcc_warm_fp32 - r.test_plcc_int8, 0.02);
  expect_int8_matches_qat(r);
}

TEST(QatArch, NrMetricArgsAndShapes) {
  std::string dir = test::temp_dir();
  qat::QatConfig c = smoke("nr_metric", dir);
  c.width = 8;
  c.num_blocks = 2;
  c.input_shape = {1, 3, 16, 24};
  qat::QatResult r = qat::run_qat(c);
  EXPECT_EQ(r.sample_shape, (std::vector<int64_t>{3, 16, 24}));
  Model fp32 = load_model(r.fp32_path);
  EXPECT_EQ(op_kinds(fp32).count("Conv"), 5u);
  EXPECT_EQ(fp32.graph.find_initializer("head.weight")->tensor.shape(), (Shape{1, 16}));
  EXPECT_EQ(fp32.graph.find_initializer("stem.weight")->tensor.shape(), (Shape{8, 3, 3, 3}));
}

TEST(QatArch, MlpSmokeThroughTheSameTrainer) {
  TINYQ_REQUIRE_ORT();
  std::string dir = test::temp_dir();
  qat::QatResult r = qat::run_qat(smoke("mlp", dir));
  EXPECT_EQ(op_set(load_model(r.fp32_path)), (std::set<std::string>{"Sub", "Div", "Gemm", "Relu", "Squeeze"}));
  expect_int8_matches_qat(r);
  expect_runtimes_agree(r, "input", uniform_batch({7, 6}, 7));
}

// `model: onnx` keeps the file's graph (nodes, names, opset, initializer shapes): only the
// trained weights change, and the input scaler and other constants stay as they were.
void expect_same_graph_new_weights(const std::string& original_path, const qat::QatResult& r) {
  Model original = load_model(original_path);
  Model tuned = load_model(r.fp32_path);
  ASSERT_EQ(tuned.graph.nodes.size(), original.graph.nodes.size());
  for (size_t i = 0; i < original.graph.nodes.size(); ++i) {
    EXPECT_EQ(tuned.graph.nodes[i].op_type, original.graph.nodes[i].op_type);
    EXPECT_EQ(tuned.graph.nodes[i].name, original.graph.nodes[i].name);
    EXPECT_EQ(tuned.graph.nodes[i].inputs, original.graph.nodes[i].inputs);
  }
  EXPECT_EQ(tuned.opset(""), original.opset(""));
  ASSERT_EQ(tuned.graph.initializers.size(), original.graph.initializers.size());
  std::set<std::string> trained;
  for (const auto& w : r.fake_quant_weights) trained.insert(w.first);
  int changed = 0;
  for (const auto& init : original.graph.initializers) {
    const Initializer* t = tuned.graph.find_initializer(init.name);
    ASSERT_NE(t, nullptr) << init.name;
    EXPECT_EQ(t->tensor.shape(), init.tensor.shape()) << init.name;
    const bool same = t->tensor.nbytes() == init.tensor.nbytes() &&
                      std::equal(static_cast<const char*>(t->tensor.raw()),
                                 static_cast<const char*>(t->tensor.raw()) + t->tensor.nbytes(),
                                 static_cast<const char*>(init.tensor.raw()));
    if (!trained.count(init.name) && init.tensor.dtype() == DType::F32 && !init.name.empty()) {
      // Biases train too; anything neither weight nor bias (scalers, clip bounds) must not move.
      bool bias = false;
      for (const auto& n : original.graph.nodes)
        bias = bias || ((n.op_type == "Conv" || n.op_type == "Gemm") && n.input(2) == init.name);
      if (!bias) {
        EXPECT_TRUE(same) << init.name << " is not a weight but changed";
      }
    }
    changed += !same;
  }
  EXPECT_GT(changed, 0) << "fine-tuning changed no weight";
}

TEST(QatArch, OnnxImportOfTheBundledFilter) {
  TINYQ_REQUIRE_ORT();
  std::string dir = test::temp_dir();
  const std::string path = test::source_dir() + "/examples/residual_filter.onnx";
  qat::QatConfig c = smoke("onnx", dir);
  c.model_path = path;
  c.lr_qat = 1e-3;
  qat::QatResult r = qat::run_qat(c);
  EXPECT_EQ(r.epochs_fp32, 0);  // fine-tuning an existing model: no warm start by default
  EXPECT_TRUE(r.distilled);     // smoke rows have no labels: the model itself is the teacher
  EXPECT_EQ(r.sample_shape, (std::vector<int64_t>{1, 32, 32}));  // symbolic H, W -> 32x32
  expect_same_graph_new_weights(path, r);
  expect_int8_matches_qat(r);
  EXPECT_GT(r.test_plcc_int8, 0.99);  // against the teacher's outputs
  expect_runtimes_agree(r, "degraded", uniform_batch({2, 1, 32, 32}, 8));
}

TEST(QatArch, OnnxImportOfRealModels) {
  TINYQ_REQUIRE_SHARED();
  TINYQ_REQUIRE_ORT();
  const std::string real = test::shared_dir() + "/models/real/";
  struct Case {
    const char* model;
    std::vector<int64_t> input_shape;  // smoke size ({} = as declared)
    Shape feed;
  };
  // vmaf_tiny_v3 (Sub/Div scaler, Gemm, Relu, Squeeze), nr_metric_v1 (depthwise Conv, Clip,
  // ReduceMean, Shape/Concat/Reshape, Gemm), learned_filter_v1 at 32x32 instead of 224x224.
  const std::vector<Case> cases = {
      {"vmaf_tiny_v3", {}, {5, 6}},
      {"nr_metric_v1", {1, 1, 32, 32}, {2, 1, 32, 32}},
      {"learned_filter_v1", {1, 1, 32, 32}, {1, 1, 32, 32}},
  };
  for (const auto& k : cases) {
    SCOPED_TRACE(k.model);
    std::string dir = test::temp_dir();
    const std::string path = real + k.model + ".onnx";
    qat::QatConfig c = smoke("onnx", dir);
    c.model_path = path;
    c.input_shape = k.input_shape;
    qat::QatResult r = qat::run_qat(c);
    expect_same_graph_new_weights(path, r);
    expect_int8_matches_qat(r);
    EXPECT_GT(r.int8_vs_fp32_plcc, 0.9);
    const std::string input = load_model(path).graph.inputs.at(0).name;
    expect_runtimes_agree(r, input, uniform_batch(k.feed, 9));
  }
}

TEST(QatArch, OnnxImportOfAnUnlabelledCacheDistils) {
  std::string dir = test::temp_dir();
  // Feature rows without 'y': the imported model labels them itself.
  std::mt19937_64 rng(2);
  std::normal_distribution<float> normal(0.5f, 0.2f);
  std::vector<float> x(200 * 6);
  for (auto& v : x) v = normal(rng);
  write_npz(dir + "/x.npz", {{"x", Tensor::from_vector<float>({200, 6}, x)}});
  qat::QatConfig c;
  c.model = "onnx";
  c.model_path = test::source_dir() + "/examples/mlp_regressor.onnx";
  c.cache = dir + "/x.npz";
  c.epochs_qat = 2;
  c.output = dir + "/m.int8.onnx";
  qat::QatResult r = qat::run_qat(c);
  EXPECT_FALSE(r.smoke);
  EXPECT_TRUE(r.distilled);
  EXPECT_EQ(r.epochs_fp32, 0);
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_NE(r.warnings[0].find("no labels"), std::string::npos);
  EXPECT_GT(r.test_plcc_int8, 0.95);

  // An explicit warm start needs labels.
  c.epochs_fp32 = 2;
  EXPECT_THROW(qat::run_qat(c), Error);
}

void expect_error(const qat::QatConfig& c, const std::string& fragment) {
  try {
    qat::run_qat(c);
    ADD_FAILURE() << "no error; expected one mentioning '" << fragment << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(QatArch, BadConfigsAreCleanErrors) {
  std::string dir = test::temp_dir();
  qat::QatConfig c = smoke("resnet", dir);
  expect_error(c, "unknown model 'resnet'");
  c = smoke("onnx", dir);
  expect_error(c, "model_args.path");
  c.model_path = dir + "/missing.onnx";
  expect_error(c, "no such file");

  // An op the trainer cannot run (and a second one), named with the node.
  test::ModelBuilder b;
  b.input("x", DType::F32, {1, 4})
      .initializer("w", Tensor::from_vector<float>({4, 4}, std::vector<float>(16, 0.1f)))
      .node("MatMul", {"x", "w"}, {"h"})
      .node("Cos", {"h"}, {"c"})
      .node("Round", {"c"}, {"y"})
      .output("y");
  save_model(b.model, dir + "/cos.onnx");
  c.model_path = dir + "/cos.onnx";
  expect_error(c, "cannot train op(s) Cos, Round");

  // Two inputs.
  test::ModelBuilder two;
  two.input("a", DType::F32, {1, 4})
      .input("b", DType::F32, {1, 4})
      .initializer("w", Tensor::from_vector<float>({4, 4}, std::vector<float>(16, 0.1f)))
      .node("Add", {"a", "b"}, {"s"})
      .node("MatMul", {"s", "w"}, {"y"})
      .output("y");
  save_model(two.model, dir + "/two.onnx");
  c.model_path = dir + "/two.onnx";
  expect_error(c, "one input");

  // Nothing to train.
  test::ModelBuilder none;
  none.input("a", DType::F32, {1, 4}).node("Relu", {"a"}, {"y"}).output("y");
  save_model(none.model, dir + "/none.onnx");
  c.model_path = dir + "/none.onnx";
  expect_error(c, "no Conv, Gemm or MatMul");

  // A shape the trainer's op rejects surfaces as an Error too, not a libtorch exception.
  test::ModelBuilder bad_shape;
  bad_shape.input("a", DType::F32, {-1, 4})
      .initializer("w", Tensor::from_vector<float>({3, 4}, std::vector<float>(12, 0.1f)))
      .node("MatMul", {"a", "w"}, {"y"})
      .output("y");
  bad_shape.model.graph.inputs[0].dims[0] = Dim{-1, "N"};
  save_model(bad_shape.model, dir + "/bad_shape.onnx");
  c.model_path = dir + "/bad_shape.onnx";
  expect_error(c, "libtorch");

  // Image architectures on feature rows, and targets that do not fit the model's output.
  std::vector<float> x(60 * 6, 0.5f), y(60, 1.0f), y2(120, 1.0f);
  write_npz(dir + "/rows.npz", {{"x", Tensor::from_vector<float>({60, 6}, x)}, {"y", Tensor::from_vector<float>({60}, y)}});
  c = smoke("learned_filter", dir);
  c.smoke = false;
  c.cache = dir + "/rows.npz";
  expect_error(c, "takes images");
  write_npz(dir + "/y2.npz", {{"x", Tensor::from_vector<float>({60, 6}, x)}, {"y", Tensor::from_vector<float>({60, 2}, y2)}});
  c = smoke("mlp", dir);
  c.smoke = false;
  c.cache = dir + "/y2.npz";
  expect_error(c, "2 value(s) per row but the model gives 1");
  // A built-in architecture cannot learn from rows without labels unless given a teacher.
  write_npz(dir + "/nolabels.npz", {{"x", Tensor::from_vector<float>({60, 6}, x)}});
  c.cache = dir + "/nolabels.npz";
  expect_error(c, "no labels");
  // model_args out of range.
  c = smoke("learned_filter", dir);
  c.width = 0;
  expect_error(c, "model_args.width");
  c.width = 16;
  c.input_shape = {1, 64, 4096, 4096};
  expect_error(c, "limited to 2^20 values");
  c = smoke("nr_metric", dir);
  c.channels = 3;
  c.input_shape = {1, 1, 32, 32};
  expect_error(c, "model_args.channels");
}

TEST(QatArch, AlreadyQuantisedModelsAreRefused) {
  TINYQ_REQUIRE_SHARED();
  std::string dir = test::temp_dir();
  qat::QatConfig c = smoke("onnx", dir);
  c.model_path = test::shared_dir() + "/models/real/vmaf_tiny_v3.int8.onnx";
  expect_error(c, "already quantised");
}

// The example configs run as shipped (in smoke mode: their caches are not in the repo), the
// onnx one finding its model beside the config; the report names the architecture and where
// fake quantisation went.
TEST(QatCli, ExampleConfigsRunInSmokeMode) {
  std::string dir = test::temp_dir();
  const std::map<std::string, std::string> examples = {
      {"learned_filter_smoke", "learned_filter"}, {"nr_metric_smoke", "nr_metric"}, {"onnx_finetune", "onnx"}};
  for (const auto& [name, arch] : examples) {
    SCOPED_TRACE(name);
    const std::string out = dir + "/" + name + ".int8.onnx", report = dir + "/" + name + ".json";
    auto res = test::run_cli("qat --config " + test::source_dir() + "/examples/qat/" + name + ".yaml --output " + out +
                             " --smoke --report-out " + report);
    ASSERT_EQ(res.exit_code, 0) << res.err;
    EXPECT_NE(res.out.find("model: " + arch), std::string::npos) << res.out;
    std::ifstream rf(report);
    nlohmann::json j = nlohmann::json::parse(rf);
    EXPECT_EQ(j["model"]["architecture"], arch);
    EXPECT_EQ(j["fake_quant"]["weights"].size(), j["fake_quant"]["weights_in_int8_file"].get<size_t>());
    EXPECT_GT(j["fake_quant"]["activations"].size(), 0u);
    EXPECT_EQ(j["settings"]["epochs_fp32"], arch == "onnx" ? 0 : 1);
    EXPECT_TRUE(file_exists_for_test(dir + "/" + name + ".qat.fp32.onnx"));
  }
  // A config naming an onnx model that is not there: exit 2 with the path in the message.
  {
    std::ofstream f(dir + "/bad.yaml");
    f << "model: onnx\nmodel_args: {path: nowhere.onnx}\n";
  }
  auto bad = test::run_cli("qat --config " + dir + "/bad.yaml --output " + dir + "/x.int8.onnx --smoke");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("nowhere.onnx"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace tinyq
