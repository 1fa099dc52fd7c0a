// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// run_qat: data -> the architecture's fp32 Model -> fp32 warm-start -> fake quantisation at the
// static exporter's Q/DQ places -> QAT fine-tune -> export (the same graph with the trained
// weights for fp32, the static PTQ writer with the learned ranges for int8) -> held-out check of
// both files in tinyq's runtime. Every architecture goes through the same steps; only the Model
// it starts from differs.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <functional>
#include <numeric>
#include <random>
#include <set>

#include "common/file_util.h"
#include "qat/architectures.h"
#include "qat/fake_quant_plan.h"
#include "qat/graph_trainer.h"
#include "qat/qat_data.h"
#include "tinyq/calibration.h"
#include "tinyq/error.h"
#include "tinyq/model_io.h"
#include "tinyq/qat.h"
#include "tinyq/session.h"

namespace tinyq::qat {

namespace {

using Clock = std::chrono::steady_clock;

// Rows per runtime call when checking files: bounds the activations held at once.
constexpr int64_t kSessionValues = int64_t{1} << 20;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double loss_of(const std::vector<float>& pred, const std::vector<float>& y, bool mse) {
  double s = 0.0;
  const size_t n = std::min(pred.size(), y.size());
  for (size_t i = 0; i < n; ++i) {
    double e = static_cast<double>(pred[i]) - y[i];
    s += mse ? e * e : std::fabs(e);
  }
  return n ? s / static_cast<double>(n) : 0.0;
}

double plcc(const std::vector<float>& a, const std::vector<float>& b) {
  const size_t n = std::min(a.size(), b.size());
  if (n < 2) return 0.0;
  double ma = std::accumulate(a.begin(), a.begin() + n, 0.0) / n, mb = std::accumulate(b.begin(), b.begin() + n, 0.0) / n;
  double sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < n; ++i) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) * (a[i] - ma);
    sbb += (b[i] - mb) * (b[i] - mb);
  }
  return saa > 0 && sbb > 0 ? sab / std::sqrt(saa * sbb) : 0.0;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0.0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) m = std::max<double>(m, std::fabs(a[i] - b[i]));
  return m;
}

// The model's first output on every row of `d`, flattened row by row.
std::vector<float> run_session(Session& s, const std::string& output, const Dataset& d) {
  if (s.inputs().size() != 1) throw Error("qat", "the model must have exactly one input");
  const std::string input = s.inputs()[0].name;
  const int64_t chunk = std::max<int64_t>(1, kSessionValues / std::max<int64_t>(d.sample_size, 1));
  std::vector<float> values;
  for (int64_t start = 0; start < d.rows; start += chunk) {
    std::vector<int64_t> rows(static_cast<size_t>(std::min(chunk, d.rows - start)));
    std::iota(rows.begin(), rows.end(), start);
    NamedTensors out = s.run(NamedTensors{{input, take_rows(d, rows).input_tensor()}});
    const Tensor* t = nullptr;
    for (const auto& [name, tensor] : out)
      if (name == output || (output.empty() && !t)) t = &tensor;
    if (!t) t = &out.at(0).second;
    if (t->dtype() != DType::F32) throw Error("qat", "the model's output is not float32");
    values.insert(values.end(), t->data<float>(), t->data<float>() + t->numel());
  }
  return values;
}

std::string fp32_path_for(const std::string& output) {
  std::string dir = std::filesystem::path(output).parent_path().string();
  std::string base = std::filesystem::path(output).filename().string();
  for (const char* suffix : {".int8.onnx", ".onnx"}) {
    std::string s = suffix;
    if (base.size() > s.size() && base.compare(base.size() - s.size(), s.size(), s) == 0) {
      base.resize(base.size() - s.size());
      break;
    }
  }
  std::string name = base + ".qat.fp32.onnx";
  return dir.empty() ? name : path_join(dir, name);
}

// The declared output shape must admit what the graph gives at the training shape: fixed dims
// that differ become symbolic (an imported model trained at another frame size).
void fit_declared_output(Model& model, const std::vector<int64_t>& shape) {
  ValueInfo& out = model.graph.outputs[0];
  if (!out.has_shape) return;
  if (out.dims.size() != shape.size()) {
    out.has_shape = false;
    out.dims.clear();
    return;
  }
  for (size_t i = 0; i < shape.size(); ++i)
    if (out.dims[i].known() && out.dims[i].value != shape[i])
      out.dims[i] = Dim{-1, i == 0 ? "batch" : out.name + "_dim" + std::to_string(i)};
}

// Replaces every split's labels with `model`'s outputs on its rows.
void label_with(Dataset& d, const std::vector<float>& outputs, int64_t per_row) {
  d.y = outputs;
  d.target_size = per_row;
}

}  // namespace

QatResult run_qat(const QatConfig& config) {
  QatConfig c = config;
  QatResult result;
  const Architecture& arch = find_architecture(c.model);
  if (c.loss != "l1" && c.loss != "mse") throw Error("qat", "loss must be l1 or mse, not '" + c.loss + "'");
  if (c.output.empty()) throw Error("qat", "an --output path is required");
  if (c.batch_size < 1) throw Error("qat", "batch_size must be at least 1");
  if (c.epochs_qat < 0) throw Error("qat", "epoch counts must not be negative");
  if (!(c.val_frac >= 0 && c.test_frac >= 0 && c.val_frac + c.test_frac < 0.9))
    throw Error("qat", "val_frac and test_frac must be >= 0 and leave most rows for training");
  if (c.observer != "moving_average" && c.observer != "minmax")
    throw Error("qat", "qat.observer must be moving_average or minmax, not '" + c.observer + "'");
  if (c.n_calibration < 1) throw Error("qat", "n_calibration must be at least 1");
  if (c.lr_qat <= 0.0) c.lr_qat = c.lr / 10.0;
  // An existing model is fine-tuned from where it is unless a warm start is asked for.
  int epochs_fp32 = c.epochs_fp32 >= 0 ? c.epochs_fp32 : (arch.fine_tune ? 0 : 20);
  int epochs_qat = c.epochs_qat;
  if (!c.smoke && (c.cache.empty() || !file_exists(c.cache))) {
    result.warnings.push_back("cache '" + c.cache + "' not found: smoke mode (synthetic data, 1 epoch per phase)");
    c.smoke = true;
  }
  result.smoke = c.smoke;
  result.architecture = c.model;
  const std::string subject = arch.fine_tune ? c.model_path : "qat";

  // --- data and splits
  Dataset all;
  if (c.smoke) {
    const std::vector<int64_t> shape = arch.smoke_shape(c);
    // 64 smoke frames of at most 2^20 values each: 256 MB, not whatever a typo asks for.
    if (std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<int64_t>()) > (int64_t{1} << 20))
      throw Error("qat", "smoke rows are limited to 2^20 values each; qat.input_shape asks for " + shape_to_string(shape));
    if (shape.size() == 1) {
      all = smoke_vectors(shape[0], c.seed);
      if (arch.smoke_target == SmokeImageTarget::None) label_with(all, {}, 0);
    } else if (shape.size() == 3) {
      all = smoke_images(shape[0], shape[1], shape[2], arch.smoke_target, c.seed);
    } else {
      throw Error("qat", "smoke data is made for feature rows or images");
    }
    epochs_fp32 = std::min(epochs_fp32, 1);
    epochs_qat = 1;
  } else {
    all = load_cache(c);
  }
  std::vector<int64_t> order(static_cast<size_t>(all.rows));
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(c.seed);
  std::shuffle(order.begin(), order.end(), rng);
  const int64_t n_test = static_cast<int64_t>(std::llround(c.test_frac * all.rows));
  const int64_t n_val = static_cast<int64_t>(std::llround(c.val_frac * all.rows));
  Dataset test = take_rows(all, std::vector<int64_t>(order.begin(), order.begin() + n_test));
  Dataset val = take_rows(all, std::vector<int64_t>(order.begin() + n_test, order.begin() + n_test + n_val));
  Dataset train = take_rows(all, std::vector<int64_t>(order.begin() + n_test + n_val, order.end()));
  if (train.rows < 1) throw Error("qat", "no training rows are left after the validation and test splits");
  result.train_rows = train.rows;
  result.val_rows = val.rows;
  result.test_rows = test.rows;
  result.features = all.sample_size;
  result.sample_shape = all.sample_shape;

  // --- the model, and the one trainer every architecture uses
  Model model = arch.build(c, train, c.seed);
  const std::string input_name = qat_model_input(model, subject).name;
  const std::string output_name = qat_model_output(model, subject).name;
  const std::vector<std::string> trainable = trainable_initializers(model);
  if (trainable.empty()) throw Error(subject, "the model has no Conv, Gemm or MatMul weights to train");
  GraphTrainer trainer(model, trainable, subject, c.seed);
  result.parameters = trainer.parameter_count();
  const std::vector<int64_t> out_shape = trainer.output_shape(train, 2);
  const int64_t probe_rows = std::min<int64_t>(2, train.rows);
  if (out_shape.empty() || out_shape[0] != probe_rows)
    throw Error(subject, "the output '" + output_name + "' must be [batch, ...]");
  const int64_t per_row = std::accumulate(out_shape.begin(), out_shape.end(), int64_t{1}, std::multiplies<int64_t>()) / probe_rows;
  result.outputs_per_row = per_row;
  fit_declared_output(model, out_shape);
  if (all.labelled() && all.target_size != per_row)
    throw Error(c.smoke ? "qat" : c.cache, "the targets have " + std::to_string(all.target_size) +
                                               " value(s) per row but the model gives " + std::to_string(per_row));

  // --- teacher and labels
  std::unique_ptr<Session> teacher_session;
  if (c.distill && !c.teacher.empty()) {
    teacher_session = std::make_unique<Session>(load_model(c.teacher));
    if (teacher_session->inputs().size() != 1 || teacher_session->outputs().empty())
      throw Error(c.teacher, "a teacher needs exactly one input and an output");
  }
  auto teacher_outputs = [&](const Dataset& d) {
    std::vector<float> t = run_session(*teacher_session, "", d);
    if (t.size() != static_cast<size_t>(d.rows * per_row))
      throw Error(c.teacher, "the teacher must give " + std::to_string(per_row) + " value(s) per row, as the model does");
    return t;
  };
  const bool labelled = all.labelled();
  if (!labelled) {
    // No labels: the teacher (a given one, else the model as it is before QAT) labels every split.
    result.distilled = true;
    if (teacher_session) {
      for (Dataset* d : {&train, &val, &test}) label_with(*d, teacher_outputs(*d), per_row);
    } else if (epochs_fp32 > 0 || !arch.fine_tune) {
      throw Error(c.smoke ? "qat" : c.cache,
                  "the data has no labels ('y'): give them, or a teacher (distill: true, teacher: MODEL.onnx)" +
                      std::string(arch.fine_tune ? ", or set qat.epochs_fp32: 0 to distil from the model as it is" : ""));
    }
    if (!c.smoke) result.warnings.push_back("the data has no labels: the student is distilled from the fp32 model");
  }
  result.epochs_fp32 = epochs_fp32;
  result.epochs_qat = epochs_qat;

  const bool mse = c.loss == "mse";
  const Dataset* monitor_ptr = val.rows > 0 ? &val : &train;

  // --- phase 1: fp32 warm-start
  auto t0 = Clock::now();
  for (int e = 0; e < epochs_fp32; ++e) {
    auto te = Clock::now();
    EpochRecord r{"fp32", e + 1, trainer.train_epoch(train, {}, c.batch_size, c.lr, mse), 0.0, 0.0};
    r.val_loss = loss_of(trainer.predict(*monitor_ptr), monitor_ptr->y, mse);
    r.seconds = seconds_since(te);
    result.epochs.push_back(r);
    if (c.on_epoch) c.on_epoch("fp32", e + 1, epochs_fp32, r.train_loss, seconds_since(t0));
  }
  result.fp32_seconds = seconds_since(t0);
  if (!labelled && !teacher_session) {
    // The model before QAT is the teacher: its outputs are every split's labels.
    for (Dataset* d : {&train, &val, &test}) label_with(*d, trainer.predict(*d), per_row);
  }
  const Dataset& held = test.rows > 1 ? test : *monitor_ptr;

  // --- phase 2: fake quantisation where the static exporter puts Q/DQ pairs
  StaticQuantOptions qopts;
  // Per-channel weight scales (DequantizeLinear's axis) need opset 13.
  qopts.per_channel = model.opset("") >= 13;
  if (!qopts.per_channel)
    result.warnings.push_back("the model's opset is below 13: weights are quantised per tensor");
  qopts.exclude_nodes = c.exclude_nodes;
  trainer.store_weights(model);
  const FakeQuantPlan plan = fake_quant_plan(model, qopts, c.observer == "minmax");
  result.fake_quant_activations = plan.activations;
  result.fake_quant_weights.assign(plan.weights.begin(), plan.weights.end());

  std::vector<float> distill_targets;
  if (c.distill && labelled) {
    if (teacher_session) {
      distill_targets = teacher_outputs(train);
      result.test_plcc_teacher = plcc(teacher_outputs(held), held.y);
    } else {
      distill_targets = trainer.predict(train);  // the warm-started net is the teacher
    }
    result.distilled = true;
  }
  auto calibration_source = [&](const Model& m) {
    Dataset cal = first_rows(train, c.n_calibration);
    return NpzCalibrationSource(NamedTensors{{input_name, cal.input_tensor()}}, m, false, "qat calibration");
  };
  {
    // Baselines for the report: the warm-started net, and static minmax PTQ of it.
    NpzCalibrationSource source = calibration_source(model);
    RangeTable table = calibrate(model, source, plan.activations);
    Session s_ptq(quantize_static(model, table, qopts).model);
    result.test_plcc_warm_fp32 = plcc(trainer.predict(held), held.y);
    result.test_plcc_static_ptq = plcc(run_session(s_ptq, output_name, held), held.y);
  }
  trainer.enable_fake_quant(plan);
  auto t1 = Clock::now();
  for (int e = 0; e < epochs_qat; ++e) {
    auto te = Clock::now();
    EpochRecord r{"qat", e + 1, trainer.train_epoch(train, distill_targets, c.batch_size, c.lr_qat, mse), 0.0, 0.0};
    r.val_loss = loss_of(trainer.predict(*monitor_ptr), monitor_ptr->y, mse);
    r.seconds = seconds_since(te);
    result.epochs.push_back(r);
    if (c.on_epoch) c.on_epoch("qat", e + 1, epochs_qat, r.train_loss, seconds_since(t1));
  }
  result.qat_seconds = seconds_since(t1);

  // --- export: the same graph with the trained weights, and the QDQ file with the learned ranges
  auto t2 = Clock::now();
  trainer.store_weights(model);
  result.fp32_path = fp32_path_for(c.output);
  result.int8_path = c.output;
  if (same_file(result.fp32_path, c.output) || result.fp32_path == c.output)
    throw Error(c.output, "the output would overwrite the fp32 export");
  if (arch.fine_tune && (same_file(c.model_path, c.output) || same_file(c.model_path, result.fp32_path)))
    throw Error(c.output, "the outputs would overwrite the model being fine-tuned");

  RangeTable ranges;
  ranges.method = CalibrationMethod::MinMax;
  ranges.inputs = {input_name};
  ranges.non_float = trainer.non_float_activations();
  const std::set<std::string> non_float(ranges.non_float.begin(), ranges.non_float.end());
  std::vector<std::string> missing;
  if (!c.recalibrate) {
    result.ranges_source = "qat";
    ranges.samples = train.rows;
    const auto learned = trainer.activation_ranges();
    for (const auto& t : plan.activations) {
      if (non_float.count(t)) continue;
      auto it = learned.find(t);
      if (it == learned.end()) {
        missing.push_back(t);
        continue;
      }
      TensorRange r;
      r.min = r.observed_min = it->second.first;
      r.max = r.observed_max = it->second.second;
      r.count = train.rows;
      ranges.ranges[t] = r;
    }
  } else {
    result.ranges_source = "recalibrated";
    missing = plan.activations;
  }
  if (!missing.empty()) {
    // The seed's path (--recalibrate), or tensors QAT never observed: min/max over
    // n_calibration training rows with the static PTQ calibrator.
    NpzCalibrationSource source = calibration_source(model);
    RangeTable calibrated = calibrate(model, source, missing);
    for (auto& [name, r] : calibrated.ranges) ranges.ranges[name] = r;
    for (const auto& t : calibrated.non_float)
      if (!non_float.count(t)) ranges.non_float.push_back(t);
    if (c.recalibrate) ranges.samples = calibrated.samples;
    else result.warnings.push_back(std::to_string(missing.size()) + " tensor(s) without a learned range were calibrated");
  }
  StaticQuantResult q = quantize_static(model, ranges, qopts);
  result.weights_quantised = q.weights_quantised;
  if (q.weights_quantised != plan.weights.size())
    result.warnings.push_back("QAT fake-quantised " + std::to_string(plan.weights.size()) + " weight(s) but the int8 file holds " +
                              std::to_string(q.weights_quantised));
  save_model(model, result.fp32_path);
  save_model(q.model, result.int8_path);
  result.activations = q.activations;
  result.ranges = ranges;
  result.export_seconds = seconds_since(t2);

  // --- held-out check of the written files in tinyq's runtime
  Session s_fp32(load_model(result.fp32_path));
  Session s_int8(load_model(result.int8_path));
  const std::vector<float> p_fp32 = run_session(s_fp32, output_name, held);
  const std::vector<float> p_int8 = run_session(s_int8, output_name, held);
  result.test_loss_fp32 = loss_of(p_fp32, held.y, mse);
  result.test_loss_int8 = loss_of(p_int8, held.y, mse);
  result.test_plcc_fp32 = plcc(p_fp32, held.y);
  result.test_plcc_int8 = plcc(p_int8, held.y);
  result.int8_vs_fp32_plcc = plcc(p_int8, p_fp32);
  result.int8_vs_fp32_max_abs = max_abs_diff(p_int8, p_fp32);
  result.int8_vs_qat_max_abs = max_abs_diff(p_int8, trainer.predict(held));
  return result;
}

}  // namespace tinyq::qat
