// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// Helpers for the quantiser tests: op histograms, the seed gate's samples, the PLCC drop, and
// ONNX Runtime over all gate samples in one node process (tests/quant/ort_gate.js).

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "graph/model_summary.h"
#include "test_support.h"
#include "tinyq/model.h"
#include "tinyq/npz.h"
#include "tinyq/session.h"
#include "tinyq/stats.h"

namespace tinyq::test {

/// The four real models with ONNX Runtime 1.30 references in ../shared/reference/ort-1.30.
inline const std::vector<std::string>& real_models() {
  static const std::vector<std::string> m{"vmaf_tiny_v3", "vmaf_tiny_v4", "nr_metric_v1", "learned_filter_v1"};
  return m;
}
inline std::string real_model_path(const std::string& m) { return shared_dir() + "/models/real/" + m + ".onnx"; }
inline std::string ort_ref_path(const std::string& m, const std::string& what) {
  return shared_dir() + "/reference/ort-1.30/" + m + "." + what;
}

/// op type -> count over the main graph and subgraphs.
inline std::map<std::string, int> op_counts(const Model& m) { return graph::summarize(m).op_histogram; }
inline int op_count(const Model& m, const std::string& op) {
  auto h = op_counts(m);
  auto it = h.find(op);
  return it == h.end() ? 0 : it->second;
}

/// The gate's samples: sample i is every `<input>__<i>` array of the npz, keyed by input name.
inline std::vector<NamedTensors> gate_samples(const std::string& npz) {
  std::map<int, NamedTensors> by_index;
  for (auto& [key, t] : read_npz(npz)) {
    size_t at = key.rfind("__");
    if (at == std::string::npos) continue;
    by_index[std::stoi(key.substr(at + 2))].emplace_back(key.substr(0, at), t);
  }
  std::vector<NamedTensors> out;
  for (auto& [i, feeds] : by_index) out.push_back(std::move(feeds));
  return out;
}

/// tinyq's runtime on every sample, one run each; the first output of each run, flattened and
/// concatenated (the seed gate's way of pooling samples).
inline std::vector<double> session_gate_outputs(const std::string& model_path, const std::vector<NamedTensors>& samples) {
  Session s = Session::from_file(model_path);
  std::vector<double> out;
  for (const auto& feeds : samples) {
    NamedTensors r = s.run(feeds);
    std::vector<double> v = tensor_to_doubles(r.at(0).second);
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

/// ONNX Runtime on every sample of a gate-inputs npz (the first `limit` when > 0), same pooling.
/// Fails the test (and returns {}) when ONNX Runtime refuses the model.
inline std::vector<double> ort_gate_outputs(const std::string& model_path, const std::string& inputs_npz,
                                            size_t limit = 0) {
  std::string out = temp_dir() + "/ort_gate.npy";
  CommandResult r = run_command("node " + source_dir() + "/tests/quant/ort_gate.js '" + model_path + "' '" +
                                inputs_npz + "' '" + out + "'" + (limit ? " " + std::to_string(limit) : ""));
  EXPECT_EQ(r.exit_code, 0) << "onnxruntime refused " << model_path << ": " << r.err;
  if (r.exit_code != 0) return {};
  return tensor_to_doubles(read_npy(out));
}

/// The reference outputs npz (arr_0..arr_15), pooled the same way.
inline std::vector<double> pooled_npz(const std::string& npz) {
  NamedTensors arrays = read_npz(npz);
  std::vector<double> out;
  for (size_t i = 0; i < arrays.size(); ++i) {
    const Tensor* t = find_array(arrays, "arr_" + std::to_string(i));
    EXPECT_NE(t, nullptr) << npz << " lacks arr_" << i;
    if (!t) return {};
    std::vector<double> v = tensor_to_doubles(*t);
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

/// The gate's accuracy drop: 1 - PLCC(fp32, int8).
inline double plcc_drop(const std::vector<double>& fp32, const std::vector<double>& int8) {
  return 1.0 - pearson(fp32, int8);
}

/// Elementwise agreement of two runtimes: |a - b| <= 1e-4 * max(1, |b|). Returns the count of
/// values outside it and reports the worst.
inline size_t count_disagreements(const std::vector<double>& a, const std::vector<double>& b, double* worst = nullptr) {
  EXPECT_EQ(a.size(), b.size());
  if (a.size() != b.size()) return SIZE_MAX;
  size_t bad = 0;
  double w = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    double d = std::fabs(a[i] - b[i]);
    double tol = 1e-4 * std::max(1.0, std::fabs(b[i]));
    if (!(d <= tol)) ++bad;
    w = std::max(w, d / tol);
  }
  if (worst) *worst = w;
  return bad;
}

}  // namespace tinyq::test
