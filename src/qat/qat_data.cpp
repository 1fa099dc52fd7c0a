// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

#include "qat/qat_data.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>
#include <random>

#include "tinyq/calibration.h"
#include "tinyq/error.h"
#include "tinyq/npz.h"

namespace tinyq::qat {

namespace {

constexpr double kPi = 3.14159265358979323846;

std::vector<float> as_f32(const Tensor& t, const std::string& subject, const char* what) {
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
}

Dataset to_dataset(const Tensor& x, const Tensor* y, const std::string& subject) {
  if (x.shape().size() < 2) throw Error(subject, "'x' must be [rows, ...] with at least one value per row");
  Dataset d;
  d.rows = x.shape()[0];
  d.sample_shape.assign(x.shape().begin() + 1, x.shape().end());
  d.sample_size = shape_numel(d.sample_shape);
  if (d.rows < 3 || d.sample_size < 1) throw Error(subject, "need at least 3 rows of at least one value");
  d.x = as_f32(x, subject, "x");
  if (y) {
    if (y->shape().empty() || y->shape()[0] != d.rows || y->numel() % d.rows != 0 || y->numel() == 0)
      throw Error(subject, "'y' must be [rows, ...] with the rows of 'x'");
    d.target_size = y->numel() / d.rows;
    d.y = as_f32(*y, subject, "y");
  }
  return d;
}

}  // namespace

Tensor Dataset::input_tensor() const {
  Shape shape = {rows};
  shape.insert(shape.end(), sample_shape.begin(), sample_shape.end());
  return Tensor::from_vector<float>(shape, x);
}

Dataset take_rows(const Dataset& d, const std::vector<int64_t>& rows) {
  Dataset out;
  out.rows = static_cast<int64_t>(rows.size());
  out.sample_shape = d.sample_shape;
  out.sample_size = d.sample_size;
  out.target_size = d.target_size;
  out.x.reserve(rows.size() * static_cast<size_t>(d.sample_size));
  out.y.reserve(rows.size() * static_cast<size_t>(d.target_size));
  for (int64_t r : rows) {
    out.x.insert(out.x.end(), d.x.begin() + r * d.sample_size, d.x.begin() + (r + 1) * d.sample_size);
    if (d.labelled())
      out.y.insert(out.y.end(), d.y.begin() + r * d.target_size, d.y.begin() + (r + 1) * d.target_size);
  }
  return out;
}

Dataset first_rows(const Dataset& d, int64_t n) {
  std::vector<int64_t> rows(static_cast<size_t>(std::min(n, d.rows)));
  std::iota(rows.begin(), rows.end(), 0);
  return take_rows(d, rows);
}

Dataset load_cache(const QatConfig& c) {
  std::string ext = std::filesystem::path(c.cache).extension().string();
  if (ext == ".npz") {
    NamedTensors arrays = read_npz(c.cache);
    const Tensor* x = find_array(arrays, "x");
    if (!x) throw Error(c.cache, "the .npz needs an array 'x' (and, for labels, 'y')");
    return to_dataset(*x, find_array(arrays, "y"), c.cache);
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
  return to_dataset(x, &y, c.cache);
}

// A smooth non-linear target of a few Gaussian features, so one epoch of each phase exercises
// every stage in well under a second.
Dataset smoke_vectors(int64_t features, uint64_t seed) {
  Dataset d;
  d.rows = 512;
  d.sample_shape = {features};
  d.sample_size = features;
  d.target_size = 1;
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

// Each clean image is a sum of a few low-frequency plane waves scaled into [0.1, 0.9] (content
// a 3x3 conv stack can model); the input adds Gaussian noise of a per-image level in [0, 0.15]
// and clips to [0, 1], as a degraded frame would be.
Dataset smoke_images(int64_t channels, int64_t height, int64_t width, SmokeImageTarget target, uint64_t seed,
                     int64_t rows) {
  Dataset d;
  d.rows = rows;
  d.sample_shape = {channels, height, width};
  d.sample_size = channels * height * width;
  d.target_size = target == SmokeImageTarget::Clean ? d.sample_size : target == SmokeImageTarget::Quality ? 1 : 0;
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  d.x.resize(static_cast<size_t>(d.rows * d.sample_size));
  d.y.resize(static_cast<size_t>(d.rows * d.target_size));
  std::vector<float> clean(static_cast<size_t>(d.sample_size));
  for (int64_t r = 0; r < d.rows; ++r) {
    struct Wave {
      double fx, fy, phase, amplitude;
    };
    std::vector<Wave> waves(4);
    for (auto& w : waves) w = {uniform(rng) * 3.0, uniform(rng) * 3.0, uniform(rng) * 2.0 * kPi, 0.5 + uniform(rng)};
    float lo = 1e30f, hi = -1e30f;
    for (int64_t c = 0; c < channels; ++c)
      for (int64_t i = 0; i < height; ++i)
        for (int64_t j = 0; j < width; ++j) {
          double v = 0.1 * static_cast<double>(c);
          for (const auto& w : waves)
            v += w.amplitude * std::cos(2.0 * kPi * (w.fx * j / width + w.fy * i / height) + w.phase);
          float f = static_cast<float>(v);
          clean[static_cast<size_t>((c * height + i) * width + j)] = f;
          lo = std::min(lo, f);
          hi = std::max(hi, f);
        }
    const float span = hi > lo ? hi - lo : 1.0f;
    const float sigma = static_cast<float>(0.15 * uniform(rng));
    float* x = &d.x[static_cast<size_t>(r * d.sample_size)];
    for (int64_t k = 0; k < d.sample_size; ++k) {
      float& v = clean[static_cast<size_t>(k)];
      v = 0.1f + 0.8f * (v - lo) / span;
      x[k] = std::clamp(v + sigma * normal(rng), 0.0f, 1.0f);
    }
    if (target == SmokeImageTarget::Clean)
      std::copy(clean.begin(), clean.end(), d.y.begin() + r * d.sample_size);
    else if (target == SmokeImageTarget::Quality)
      d.y[static_cast<size_t>(r)] = 1.0f - 10.0f * sigma;  // centred near 0, as a normalised score
  }
  return d;
}

}  // namespace tinyq::qat
