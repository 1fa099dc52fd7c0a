// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// Calibration methods on a heavy-tailed input. An MLP (the shape of the vmaf_tiny regressors:
// Sub/Div normalisation, Gemm-Relu-Gemm-Relu-Gemm) is trained here, by plain minibatch SGD
// with momentum, on six features of which one is Pareto-distributed (shape 1.5: a mean but no
// variance) and the target saturates in it, as quality scores do in a heavy-tailed feature.
// With per-tensor scales, the rare huge values of that feature set the input's range under
// minmax and leave the five ordinary features a handful of levels; percentile and entropy clip
// the tail and must beat minmax's drop on held-out data of the same (real) distribution by a
// clear margin.
//
// mse scores its candidate ranges by the error of the model's outputs, not of the tensor (for a
// tail this heavy the tensor-level optimum is almost minmax's range: the expected squared
// clipping error is unbounded), so it must clip too, and beat minmax as clearly.
// percentile runs at 99.9: with 1,000 samples of 6 values, the default 99.999 keeps every value.

#include <cmath>
#include <cstdint>
#include <iostream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "model_builder.h"
#include "static_test_util.h"
#include "tinyq/calibrate.h"
#include "tinyq/model_io.h"
#include "tinyq/session.h"
#include "tinyq/stats.h"

namespace tinyq::test {
namespace {

constexpr int kFeatures = 6;
constexpr int kHidden = 16;
constexpr double kParetoShape = 1.5;  // P(x > t) = t^-1.5: a mean, no variance

// The data: five uniform features and one Pareto(shape, x_m = 1); the target mixes the uniform
// ones and saturates in the Pareto one.
struct Data {
  std::vector<float> x;  // [n, 6]
  std::vector<float> y;  // [n]
};

Data make_data(int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto uniform = [&] { return (static_cast<double>(rng() >> 11) + 0.5) * (1.0 / 9007199254740992.0); };
  Data d;
  d.x.resize(static_cast<size_t>(n) * kFeatures);
  d.y.resize(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    float* x = &d.x[static_cast<size_t>(i) * kFeatures];
    for (int f = 0; f < 5; ++f) x[f] = static_cast<float>(uniform());
    x[5] = static_cast<float>(std::pow(uniform(), -1.0 / kParetoShape));
    d.y[static_cast<size_t>(i)] = static_cast<float>(2.0 * x[0] - 1.5 * x[1] + x[2] * x[3] + 0.8 * std::sin(3.0 * x[4]) +
                                                     1.2 * std::tanh(0.7 * (x[5] - 1.0)));
  }
  return d;
}

// A 6-16-16-1 ReLU MLP on standardised inputs, trained by minibatch SGD with momentum on the
// squared error.
struct Mlp {
  std::vector<float> mean, stdev;
  std::vector<float> w1, b1, w2, b2, w3, b3;  // Gemm layouts with transB = 1: [out, in]

  void init(uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> n01(0.0, 1.0);
    auto fill = [&](std::vector<float>& w, int out, int in) {
      w.resize(static_cast<size_t>(out) * in);
      for (auto& v : w) v = static_cast<float>(n01(rng) * std::sqrt(2.0 / in));
    };
    fill(w1, kHidden, kFeatures);
    fill(w2, kHidden, kHidden);
    fill(w3, 1, kHidden);
    b1.assign(kHidden, 0.0f);
    b2.assign(kHidden, 0.0f);
    b3.assign(1, 0.0f);
  }

  void train(const Data& d, int steps, uint64_t seed) {
    const int n = static_cast<int>(d.y.size());
    mean.assign(kFeatures, 0.0f);
    stdev.assign(kFeatures, 0.0f);
    for (int f = 0; f < kFeatures; ++f) {
      double s = 0, ss = 0;
      for (int i = 0; i < n; ++i) s += d.x[static_cast<size_t>(i) * kFeatures + f];
      const double m = s / n;
      for (int i = 0; i < n; ++i) {
        const double v = d.x[static_cast<size_t>(i) * kFeatures + f] - m;
        ss += v * v;
      }
      mean[f] = static_cast<float>(m);
      stdev[f] = static_cast<float>(std::sqrt(ss / n));
    }
    std::vector<std::vector<float>*> params{&w1, &b1, &w2, &b2, &w3, &b3};
    std::vector<std::vector<float>> vel, grad;
    for (auto* p : params) {
      vel.emplace_back(p->size(), 0.0f);
      grad.emplace_back(p->size(), 0.0f);
    }
    std::mt19937_64 rng(seed);
    constexpr int kBatch = 32;
    for (int step = 0; step < steps; ++step) {
      const double lr = 0.02 * (step < steps / 2 ? 1.0 : step < 3 * steps / 4 ? 0.3 : 0.1);
      for (auto& g : grad) std::fill(g.begin(), g.end(), 0.0f);
      for (int b = 0; b < kBatch; ++b) {
        const int i = static_cast<int>(rng() % static_cast<uint64_t>(n));
        float x[kFeatures], h1[kHidden], a1[kHidden], h2[kHidden], a2[kHidden];
        for (int f = 0; f < kFeatures; ++f) x[f] = (d.x[static_cast<size_t>(i) * kFeatures + f] - mean[f]) / stdev[f];
        for (int o = 0; o < kHidden; ++o) {
          float s = b1[o];
          for (int f = 0; f < kFeatures; ++f) s += w1[o * kFeatures + f] * x[f];
          h1[o] = s;
          a1[o] = s > 0 ? s : 0;
        }
        for (int o = 0; o < kHidden; ++o) {
          float s = b2[o];
          for (int k = 0; k < kHidden; ++k) s += w2[o * kHidden + k] * a1[k];
          h2[o] = s;
          a2[o] = s > 0 ? s : 0;
        }
        float out = b3[0];
        for (int k = 0; k < kHidden; ++k) out += w3[k] * a2[k];
        const float e = (out - d.y[static_cast<size_t>(i)]) / kBatch;
        float g2[kHidden], g1[kHidden];
        grad[5][0] += e;
        for (int k = 0; k < kHidden; ++k) {
          grad[4][k] += e * a2[k];
          g2[k] = h2[k] > 0 ? e * w3[k] : 0;
        }
        for (int o = 0; o < kHidden; ++o) {
          grad[3][o] += g2[o];
          for (int k = 0; k < kHidden; ++k) grad[2][o * kHidden + k] += g2[o] * a1[k];
        }
        for (int k = 0; k < kHidden; ++k) {
          float s = 0;
          for (int o = 0; o < kHidden; ++o) s += g2[o] * w2[o * kHidden + k];
          g1[k] = h1[k] > 0 ? s : 0;
        }
        for (int o = 0; o < kHidden; ++o) {
          grad[1][o] += g1[o];
          for (int f = 0; f < kFeatures; ++f) grad[0][o * kFeatures + f] += g1[o] * x[f];
        }
      }
      for (size_t p = 0; p < params.size(); ++p)
        for (size_t k = 0; k < params[p]->size(); ++k) {
          vel[p][k] = 0.9f * vel[p][k] - static_cast<float>(lr) * grad[p][k];
          (*params[p])[k] += vel[p][k];
        }
    }
  }

  Model to_model() const {
    auto t1 = [](const std::vector<float>& v) { return Tensor::from_vector<float>({static_cast<int64_t>(v.size())}, v); };
    auto t2 = [](const std::vector<float>& v, int64_t out, int64_t in) { return Tensor::from_vector<float>({out, in}, v); };
    ModelBuilder b(17);
    b.model.graph.inputs.push_back(ValueInfo{"features", DType::F32, true, {Dim{-1, "N"}, Dim{kFeatures, ""}}, ""});
    b.initializer("mean", t1(mean)).initializer("std", t1(stdev));
    b.initializer("w1", t2(w1, kHidden, kFeatures)).initializer("b1", t1(b1));
    b.initializer("w2", t2(w2, kHidden, kHidden)).initializer("b2", t1(b2));
    b.initializer("w3", t2(w3, 1, kHidden)).initializer("b3", t1(b3));
    const std::vector<Attribute> gemm{Attribute::make_int("transB", 1)};
    b.node("Sub", {"features", "mean"}, {"sub"}).node("Div", {"sub", "std"}, {"div"});
    b.node("Gemm", {"div", "w1", "b1"}, {"h1"}, gemm).node("Relu", {"h1"}, {"a1"});
    b.node("Gemm", {"a1", "w2", "b2"}, {"h2"}, gemm).node("Relu", {"h2"}, {"a2"});
    b.node("Gemm", {"a2", "w3", "b3"}, {"score"}, gemm);
    b.output("score");
    return b.model;
  }
};

Tensor features_tensor(const Data& d) {
  return Tensor::from_vector<float>({static_cast<int64_t>(d.y.size()), kFeatures}, d.x);
}

double gate_drop(Session& fp32, const Model& int8, const Tensor& x) {
  Session q(int8);
  const std::vector<double> a = values(fp32.run(NamedTensors{{"features", x}}).at(0).second);
  const std::vector<double> b = values(q.run(NamedTensors{{"features", x}}).at(0).second);
  return 1.0 - pearson(a, b);
}

TEST(StaticPtqHeavyTail, ClippingMethodsBeatMinMax) {
  const Data train = make_data(20000, 1);
  Mlp mlp;
  mlp.init(2);
  mlp.train(train, 6000, 3);
  const Model model = mlp.to_model();
  Session fp32(model);

  // The trained model is a sane regressor (else the comparison means nothing).
  const Data held_out = make_data(4000, 5);
  const Tensor x = features_tensor(held_out);
  const std::vector<double> pred = values(fp32.run(NamedTensors{{"features", x}}).at(0).second);
  const std::vector<double> truth(held_out.y.begin(), held_out.y.end());
  EXPECT_GT(pearson(pred, truth), 0.97) << "the MLP did not learn its target";

  // Calibration: 1,000 samples of the real distribution (a stack [N, 6], one sample per run).
  const Data cal = make_data(1000, 4);
  NamedTensors arrays{{"features", features_tensor(cal)}};
  NpzCalibrationSource source(arrays, model, false, "calibration");
  const std::vector<std::string> tensors = static_quant_calibration_tensors(model, {});

  std::map<std::string, double> drops;
  std::map<std::string, Model> models;
  for (CalibrationMethod m : {CalibrationMethod::MinMax, CalibrationMethod::Percentile, CalibrationMethod::Entropy,
                              CalibrationMethod::Mse}) {
    CalibrationOptions options;
    options.method = m;
    options.percentile = 99.9;
    const RangeTable table = calibrate(model, source, tensors, options);
    StaticQuantResult r = quantize_static(model, table, {});
    drops[calibration_method_name(m)] = gate_drop(fp32, r.model, x);
    models.emplace(calibration_method_name(m), std::move(r.model));
    const TensorRange* in = table.find("div");
    ASSERT_NE(in, nullptr);
    std::cout << "[ drop     ] " << calibration_method_name(m) << ": " << drops[calibration_method_name(m)]
              << " (input range [" << in->min << ", " << in->max << "] of observed [" << in->observed_min << ", "
              << in->observed_max << "])\n";
  }
  for (const char* m : {"percentile", "entropy", "mse"})
    EXPECT_LT(drops[m], 0.5 * drops["minmax"]) << m << " should clearly beat minmax (" << drops[m] << " vs "
                                               << drops["minmax"] << ")";

  // The clipped model runs in ONNX Runtime with tinyq's answers (QDQ tolerance: 2% of the
  // output range).
  if (!ort_available()) GTEST_SKIP() << "onnxruntime-node is not installed";
  const std::string path = temp_dir() + "/heavy_tail.percentile.onnx";
  save_model(models.at("percentile"), path);
  const NamedTensors feeds{{"features", x}};
  const std::vector<double> theirs = values(ort_run(path, feeds).at(0).second);
  Session ours(models.at("percentile"));
  EXPECT_LE(max_diff(values(ours.run(feeds).at(0).second), theirs), 0.02 * value_range(pred));
}

}  // namespace
}  // namespace tinyq::test
