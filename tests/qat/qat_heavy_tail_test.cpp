// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// Issue 9's heavy-tailed bar: 6 features, one of them Pareto(1.5) x 20, a target linear in it.
// Static minmax PTQ of the fp32-trained net loses badly on held-out rows; distilled QAT whose
// int8 file keeps the learned (running min/max) ranges and leaves the first and last Gemm fp32 stays
// within 0.01 PLCC of the fp32 teacher.

#include <cmath>
#include <random>

#include "test_support.h"
#include "tinyq/qat.h"

namespace tinyq {
namespace {

TEST(QatHeavyTail, DistilledQatKeepsThePlccThatStaticPtqLoses) {
  std::string dir = test::temp_dir();
  std::mt19937_64 rng(0);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  const int64_t n = 10000;
  std::vector<float> x(static_cast<size_t>(n * 6)), y(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    float* r = &x[static_cast<size_t>(i * 6)];
    for (int f = 0; f < 5; ++f) r[f] = normal(rng);
    // Pareto(1.5) (Lomax, as numpy's pareto) scaled by 20: a tail with infinite variance.
    r[5] = static_cast<float>((std::pow(1.0 - uniform(rng), -1.0 / 1.5) - 1.0) * 20.0);
    y[static_cast<size_t>(i)] = 0.6f * r[0] - 0.4f * r[1] + 0.3f * r[2] * r[3] + std::tanh(r[4]) + 0.02f * r[5] +
                                0.1f * normal(rng);
  }
  write_npz(dir + "/ht.npz", {{"x", Tensor::from_vector<float>({n, 6}, x)}, {"y", Tensor::from_vector<float>({n}, y)}});

  qat::QatConfig c;
  c.cache = dir + "/ht.npz";
  c.hidden = {32, 32};
  c.lr = 3e-3;
  c.loss = "mse";
  c.test_frac = 0.2;
  c.epochs_fp32 = 15;
  c.epochs_qat = 6;
  c.lr_qat = 3e-4;
  c.distill = true;  // teacher: the fp32 net trained first
  c.observer = "minmax";
  c.exclude_nodes = {"fc0", "fc2"};
  c.output = dir + "/ht.int8.onnx";
  qat::QatResult r = qat::run_qat(c);

  const double ptq_drop = r.test_plcc_warm_fp32 - r.test_plcc_static_ptq;
  const double qat_drop = r.test_plcc_warm_fp32 - r.test_plcc_int8;
  RecordProperty("plcc_fp32", std::to_string(r.test_plcc_warm_fp32));
  RecordProperty("static_ptq_drop", std::to_string(ptq_drop));
  RecordProperty("qat_drop", std::to_string(qat_drop));
  EXPECT_GT(r.test_plcc_warm_fp32, 0.95);
  EXPECT_GT(ptq_drop, 0.05) << "static minmax PTQ was expected to lose on the heavy tail";
  EXPECT_LT(qat_drop, 0.01) << "fp32 " << r.test_plcc_warm_fp32 << ", int8 " << r.test_plcc_int8;
}

}  // namespace
}  // namespace tinyq
