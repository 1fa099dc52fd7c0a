// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// run_qat: data -> fp32 warm-start -> fake quantisation at the static exporter's Q/DQ places ->
// QAT fine-tune -> export (tinyq IR for fp32, the static PTQ writer with the learned ranges for
// int8) -> held-out check of both files in tinyq's runtime.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <numeric>
#include <random>
#include <set>

#include "common/file_util.h"
#include "qat/mlp_graph.h"
#include "qat/mlp_trainer.h"
#include "tinyq/calibration.h"
#include "tinyq/error.h"
#include "tinyq/model_io.h"
#include "tinyq/npz.h"
#include "tinyq/qat.h"
#include "tinyq/session.h"

namespace tinyq::qat {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Smoke data: a smooth non-linear target of a few Gaussian features, so one epoch of each phase
// exercises every stage in well under a second.
Dataset smoke_data(int64_t features, uint64_t seed) {
  Dataset d;
  d.rows = 512;
  d.features = features;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  d.x.resize(static_cast<size_t>(d.rows * features));
  for (auto& v : d.x) v = normal(rng);
  d.y.resize(static_cast<size_t>(d.rows));
  for (int64_t r = 0; r < d.rows; ++r) {
    float s = 0.0f;
    for (int64_t f = 0; f < features; ++f) s += std::tanh(d.x[r * features + f] * (0.5f + 0.1f * f));
    d.y[r] = s;
  }
  return d;
}

Dataset to_dataset(const Tensor& x_in, const Tensor& y_in, const std::string& subject) {
  auto as_f32 = [&](const Tensor& t, const char* what) {
    std::vector<float> v(static_cast<size_t>(t.numel()));
    if (t.dtype() == DType::F32) {
      std::copy(t.data<float>(), t.data<float>() + t.numel(), v.begin());
    } else if (t.dtype() == DType::F64) {
      std::transform(t.data<double>(), t.data<double>() + t.numel(), v.begin(),
                     [](double d) { return static_cast<float>(d); });
    } else {
      throw Error(subject, std::string("'") + what + "' must be float32 or float64");
    }
    for (float f : v)
      if (!std::isfinite(f)) throw Error(subject, std::string("'") + what + "' holds NaN or Inf");
    return v;
  };
  if (x_in.shape().size() != 2) throw Error(subject, "'x' must be [rows, features]");
  Dataset d;
  d.rows = x_in.shape()[0];
  d.features = x_in.shape()[1];
  if (d.rows < 3 || d.features < 1) throw Error(subject, "need at least 3 rows and 1 feature");
  if (y_in.numel() != d.rows) throw Error(subject, "'y' must hold one value per row of 'x'");
  d.x = as_f32(x_in, "x");
  d.y = as_f32(y_in, "y");
  return d;
}

Dataset load_cache(const QatConfig& c) {
  std::string ext = std::filesystem::path(c.cache).extension().string();
  if (ext == ".npz") {
    NamedTensors arrays = read_npz(c.cache);
    const Tensor* x = find_array(arrays, "x");
    const Tensor* y = find_array(arrays, "y");
    if (!x || !y) throw Error(c.cache, "the .npz needs arrays 'x' and 'y'");
    return to_dataset(*x, *y, c.cache);
  }
  if (c.features.empty() || c.target.empty())
    throw Error(c.cache, "a parquet cache needs 'features' and 'target' in the config");
  std::vector<std::string> columns = c.features;
  columns.push_back(c.target);
  FeatureTable table = drop_null_rows(read_parquet(c.cache, columns));
  std::vector<int64_t> rows(static_cast<size_t>(table.rows));
  std::iota(rows.begin(), rows.end(), 0);
  Tensor x = table_to_matrix(table, c.features, rows, c.cache);
  Tensor y = table_to_matrix(table, {c.target}, rows, c.cache);
  return to_dataset(x, y, c.cache);
}

Dataset take(const Dataset& d, const std::vector<int64_t>& rows) {
  Dataset out;
  out.rows = static_cast<int64_t>(rows.size());
  out.features = d.features;
  out.x.reserve(rows.size() * static_cast<size_t>(d.features));
  for (int64_t r : rows) {
    out.x.insert(out.x.end(), d.x.begin() + r * d.features, d.x.begin() + (r + 1) * d.features);
    out.y.push_back(d.y[static_cast<size_t>(r)]);
  }
  return out;
}

double loss_of(const std::vector<float>& pred, const std::vector<float>& y, bool mse) {
  double s = 0.0;
  for (size_t i = 0; i < y.size(); ++i) {
    double e = static_cast<double>(pred[i]) - y[i];
    s += mse ? e * e : std::fabs(e);
  }
  return y.empty() ? 0.0 : s / static_cast<double>(y.size());
}

double plcc(const std::vector<float>& a, const std::vector<float>& b) {
  size_t n = a.size();
  if (n < 2) return 0.0;
  double ma = std::accumulate(a.begin(), a.end(), 0.0) / n, mb = std::accumulate(b.begin(), b.end(), 0.0) / n;
  double sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < n; ++i) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) * (a[i] - ma);
    sbb += (b[i] - mb) * (b[i] - mb);
  }
  return saa > 0 && sbb > 0 ? sab / std::sqrt(saa * sbb) : 0.0;
}

Tensor input_tensor(const Dataset& d) { return Tensor::from_vector<float>({d.rows, d.features}, d.x); }

std::vector<float> run_session(Session& s, const std::string& input, const Dataset& d) {
  NamedTensors out = s.run(NamedTensors{{input, input_tensor(d)}});
  const Tensor& t = out.at(0).second;
  return std::vector<float>(t.data<float>(), t.data<float>() + t.numel());
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

}  // namespace

QatResult run_qat(const QatConfig& config) {
  QatConfig c = config;
  QatResult result;
  if (c.model != "mlp") throw Error("qat", "unknown model '" + c.model + "' (built-in: mlp)");
  if (c.loss != "l1" && c.loss != "mse") throw Error("qat", "loss must be l1 or mse, not '" + c.loss + "'");
  if (c.output.empty()) throw Error("qat", "an --output path is required");
  if (c.batch_size < 1) throw Error("qat", "batch_size must be at least 1");
  if (c.epochs_fp32 < 0 || c.epochs_qat < 0) throw Error("qat", "epoch counts must not be negative");
  if (!(c.val_frac >= 0 && c.test_frac >= 0 && c.val_frac + c.test_frac < 0.9))
    throw Error("qat", "val_frac and test_frac must be >= 0 and leave most rows for training");
  if (c.observer != "moving_average" && c.observer != "minmax")
    throw Error("qat", "qat.observer must be moving_average or minmax, not '" + c.observer + "'");
  if (c.n_calibration < 1) throw Error("qat", "n_calibration must be at least 1");
  for (int64_t h : c.hidden)
    if (h < 1 || h > 4096) throw Error("qat", "model_args.hidden sizes must be in [1, 4096]");
  if (c.lr_qat <= 0.0) c.lr_qat = c.lr / 10.0;
  if (!c.smoke && (c.cache.empty() || !file_exists(c.cache))) {
    result.warnings.push_back("cache '" + c.cache + "' not found: smoke mode (synthetic data, 1 epoch per phase)");
    c.smoke = true;
  }
  result.smoke = c.smoke;

  // --- data and splits
  Dataset all;
  if (c.smoke) {
    int64_t features = c.input_shape.size() >= 2 ? c.input_shape.back() : 6;
    if (features < 1 || features > 4096) throw Error("qat", "qat.input_shape's feature count must be in [1, 4096]");
    all = smoke_data(features, c.seed);
    c.epochs_fp32 = std::min(c.epochs_fp32, 1);
    c.epochs_qat = std::max(1, std::min(c.epochs_qat, 1));
  } else {
    all = load_cache(c);
  }
  std::vector<int64_t> order(static_cast<size_t>(all.rows));
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(c.seed);
  std::shuffle(order.begin(), order.end(), rng);
  int64_t n_test = static_cast<int64_t>(std::llround(c.test_frac * all.rows));
  int64_t n_val = static_cast<int64_t>(std::llround(c.val_frac * all.rows));
  Dataset test = take(all, std::vector<int64_t>(order.begin(), order.begin() + n_test));
  Dataset val = take(all, std::vector<int64_t>(order.begin() + n_test, order.begin() + n_test + n_val));
  Dataset train = take(all, std::vector<int64_t>(order.begin() + n_test + n_val, order.end()));
  result.train_rows = train.rows;
  result.val_rows = val.rows;
  result.test_rows = test.rows;
  result.features = all.features;

  MlpSpec spec;
  spec.inputs = all.features;
  spec.hidden = c.hidden;
  spec.squeeze = c.squeeze;
  spec.input_name = c.input_name;
  spec.output_name = c.output_name;
  spec.mean.assign(static_cast<size_t>(spec.inputs), 0.0f);
  spec.stddev.assign(static_cast<size_t>(spec.inputs), 1.0f);
  for (int64_t f = 0; f < spec.inputs; ++f) {
    double s = 0, ss = 0;
    for (int64_t r = 0; r < train.rows; ++r) {
      double v = train.x[r * spec.inputs + f];
      s += v;
      ss += v * v;
    }
    double mean = s / train.rows, var = std::max(0.0, ss / train.rows - mean * mean);
    spec.mean[f] = static_cast<float>(mean);
    spec.stddev[f] = var > 1e-12 ? static_cast<float>(std::sqrt(var)) : 1.0f;
  }
  std::set<std::string> names;
  for (const auto& n : mlp_tensor_names(spec)) names.insert(n);
  if (names.size() != mlp_tensor_names(spec).size())
    throw Error("qat", "input_name and output_name must differ from each other and from the internal tensor names");

  MlpTrainer trainer(spec, c.seed);
  result.parameters = trainer.parameter_count();
  const bool mse = c.loss == "mse";
  const Dataset& monitor = val.rows > 0 ? val : train;

  // --- phase 1: fp32 warm-start
  auto t0 = Clock::now();
  for (int e = 0; e < c.epochs_fp32; ++e) {
    auto te = Clock::now();
    EpochRecord r{"fp32", e + 1, trainer.train_epoch(train, {}, c.batch_size, c.lr, mse), 0.0, 0.0};
    r.val_loss = loss_of(trainer.predict(monitor), monitor.y, mse);
    r.seconds = seconds_since(te);
    result.epochs.push_back(r);
    if (c.on_epoch) c.on_epoch("fp32", e + 1, c.epochs_fp32, r.train_loss, seconds_since(t0));
  }
  result.fp32_seconds = seconds_since(t0);

  // --- phase 2: fake quantisation where the static exporter puts Q/DQ pairs
  StaticQuantOptions qopts;
  qopts.per_channel = true;  // matches the per-channel fake quantisation of the weights
  qopts.exclude_nodes = c.exclude_nodes;
  std::vector<std::string> quantised =
      static_quant_calibration_tensors(build_mlp_model(spec, trainer.weights()), qopts);
  std::vector<float> teacher;
  const Dataset& held = test.rows > 1 ? test : monitor;
  if (c.distill && !c.teacher.empty()) {
    Session s_teacher(load_model(c.teacher));
    if (s_teacher.inputs().size() != 1 || s_teacher.outputs().empty())
      throw Error(c.teacher, "a teacher needs exactly one input and an output");
    const std::string in = s_teacher.inputs()[0].name;
    teacher = run_session(s_teacher, in, train);
    std::vector<float> held_teacher = run_session(s_teacher, in, held);
    if (teacher.size() != static_cast<size_t>(train.rows) || held_teacher.size() != static_cast<size_t>(held.rows))
      throw Error(c.teacher, "the teacher must give one output value per row");
    result.test_plcc_teacher = plcc(held_teacher, held.y);
  } else if (c.distill) {
    teacher = trainer.predict(train);  // the warm-started fp32 net is the teacher
  }
  {
    // Baselines for the report: the warm-started net, and static minmax PTQ of it.
    Model warm = build_mlp_model(spec, trainer.weights());
    std::vector<int64_t> rows(static_cast<size_t>(std::min<int64_t>(c.n_calibration, train.rows)));
    std::iota(rows.begin(), rows.end(), 0);
    Dataset cal = take(train, rows);
    NpzCalibrationSource source(NamedTensors{{c.input_name, input_tensor(cal)}}, warm, false, "qat calibration");
    RangeTable table = calibrate(warm, source, quantised);
    Session s_ptq(quantize_static(warm, table, qopts).model);
    result.test_plcc_warm_fp32 = plcc(trainer.predict(held), held.y);
    result.test_plcc_static_ptq = plcc(run_session(s_ptq, c.input_name, held), held.y);
  }
  trainer.enable_fake_quant(std::set<std::string>(quantised.begin(), quantised.end()), c.observer == "minmax");
  auto t1 = Clock::now();
  for (int e = 0; e < c.epochs_qat; ++e) {
    auto te = Clock::now();
    EpochRecord r{"qat", e + 1, trainer.train_epoch(train, teacher, c.batch_size, c.lr_qat, mse), 0.0, 0.0};
    r.val_loss = loss_of(trainer.predict(monitor), monitor.y, mse);
    r.seconds = seconds_since(te);
    result.epochs.push_back(r);
    if (c.on_epoch) c.on_epoch("qat", e + 1, c.epochs_qat, r.train_loss, seconds_since(t1));
  }
  result.qat_seconds = seconds_since(t1);

  // --- export
  auto t2 = Clock::now();
  Model fp32 = build_mlp_model(spec, trainer.weights());
  result.fp32_path = fp32_path_for(c.output);
  result.int8_path = c.output;
  if (same_file(result.fp32_path, c.output) || result.fp32_path == c.output)
    throw Error(c.output, "the output would overwrite the fp32 export");

  RangeTable ranges;
  ranges.method = CalibrationMethod::MinMax;
  ranges.inputs = {c.input_name};
  std::vector<std::string> missing;
  if (!c.recalibrate) {
    result.ranges_source = "qat";
    ranges.samples = train.rows;
    auto learned = trainer.activation_ranges();
    for (const auto& t : quantised) {
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
    missing = quantised;
  }
  if (!missing.empty()) {
    // The seed's path (--recalibrate), or tensors QAT never observed: min/max over
    // n_calibration training rows with the static PTQ calibrator.
    std::vector<int64_t> rows(static_cast<size_t>(std::min<int64_t>(c.n_calibration, train.rows)));
    std::iota(rows.begin(), rows.end(), 0);
    Dataset cal = take(train, rows);
    NpzCalibrationSource source(NamedTensors{{c.input_name, input_tensor(cal)}}, fp32, false, "qat calibration");
    RangeTable calibrated = calibrate(fp32, source, missing);
    for (auto& [name, r] : calibrated.ranges) ranges.ranges[name] = r;
    ranges.non_float = calibrated.non_float;
    if (c.recalibrate) ranges.samples = calibrated.samples;
    else result.warnings.push_back(std::to_string(missing.size()) + " tensor(s) without a learned range were calibrated");
  }
  StaticQuantResult q = quantize_static(fp32, ranges, qopts);
  save_model(fp32, result.fp32_path);
  save_model(q.model, result.int8_path);
  result.activations = q.activations;
  result.ranges = ranges;
  result.export_seconds = seconds_since(t2);

  // --- held-out check of the written files in tinyq's runtime
  Session s_fp32(load_model(result.fp32_path));
  Session s_int8(load_model(result.int8_path));
  std::vector<float> p_fp32 = run_session(s_fp32, c.input_name, held);
  std::vector<float> p_int8 = run_session(s_int8, c.input_name, held);
  result.test_loss_fp32 = loss_of(p_fp32, held.y, mse);
  result.test_loss_int8 = loss_of(p_int8, held.y, mse);
  result.test_plcc_fp32 = plcc(p_fp32, held.y);
  result.test_plcc_int8 = plcc(p_int8, held.y);
  result.int8_vs_fp32_plcc = plcc(p_int8, p_fp32);
  for (size_t i = 0; i < p_fp32.size(); ++i)
    result.int8_vs_fp32_max_abs = std::max<double>(result.int8_vs_fp32_max_abs, std::fabs(p_int8[i] - p_fp32[i]));
  return result;
}

}  // namespace tinyq::qat
