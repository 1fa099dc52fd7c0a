// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// Helpers for the quantised-op tests: many single-op cases are packed into one model (each case
// its own inputs, initializers and outputs), run once in tinyq and once in ONNX Runtime, and
// every output must match bit for bit: integer arithmetic is exact and the float steps are done
// in the same order as ONNX Runtime's.

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "model_builder.h"
#include "test_support.h"
#include "tinyq/error.h"
#include "tinyq/model_io.h"
#include "tinyq/session.h"

namespace tinyq::test {

/// A model under construction plus the feeds its inputs get.
struct QuantCases {
  ModelBuilder builder;
  NamedTensors feeds;
  int next = 0;

  explicit QuantCases(int64_t opset = 13) : builder(opset) {}

  /// A fresh name prefix for one case's values: "c<k>_".
  std::string prefix() { return "c" + std::to_string(next++) + "_"; }

  /// A graph input fed with `value`.
  void feed(const std::string& name, const Tensor& value) {
    builder.input(name, value.dtype(), value.shape());
    feeds.emplace_back(name, value);
  }
  void constant(const std::string& name, const Tensor& value) { builder.initializer(name, value); }
};

/// Runs the cases in tinyq and in ONNX Runtime; expects every output bit-identical. Returns
/// tinyq's outputs (empty when ORT is unavailable and the caller skipped).
inline NamedTensors expect_matches_ort(const QuantCases& cases, const std::string& label) {
  const std::string dir = temp_dir();
  const std::string path = dir + "/" + label + ".onnx";
  save_model(cases.builder.model, path);
  Session session(cases.builder.model);
  NamedTensors ours = session.run(cases.feeds);
  NamedTensors theirs = ort_run(path, cases.feeds);
  std::filesystem::remove_all(dir);
  EXPECT_EQ(ours.size(), theirs.size()) << label;
  for (const auto& [name, got] : ours) {
    const Tensor* want = find_array(theirs, name);
    if (!want) {
      ADD_FAILURE() << label << ": ORT gave no output " << name;
      continue;
    }
    EXPECT_EQ(dtype_name(got.dtype()), std::string(dtype_name(want->dtype()))) << label << ": " << name;
    EXPECT_EQ(shape_to_string(got.shape()), shape_to_string(want->shape())) << label << ": " << name;
    if (got.dtype() != want->dtype() || got.shape() != want->shape()) continue;
    if (!got.bit_equal(*want)) {
      std::vector<double> g = tensor_to_doubles(got), w = tensor_to_doubles(*want);
      size_t bad = 0, first = g.size();
      for (size_t i = 0; i < g.size(); ++i)
        if (g[i] != w[i] && !(g[i] != g[i] && w[i] != w[i])) {
          if (first == g.size()) first = i;
          ++bad;
        }
      if (bad > 0)
        ADD_FAILURE() << label << ": " << name << " differs from ONNX Runtime at " << bad << " of " << g.size()
                      << " elements; first at " << first << ": tinyq " << g[first] << ", ORT " << w[first];
    }
  }
  return ours;
}

/// Uniform random values of type T in [lo, hi] (integers) from a seeded generator.
template <typename T>
Tensor random_ints(std::mt19937& rng, const Shape& shape, int lo, int hi) {
  std::uniform_int_distribution<int> dist(lo, hi);
  std::vector<T> v(static_cast<size_t>(shape_numel(shape)));
  for (auto& x : v) x = static_cast<T>(dist(rng));
  return Tensor::from_vector<T>(shape, v);
}

inline Tensor random_floats(std::mt19937& rng, const Shape& shape, float lo, float hi) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(static_cast<size_t>(shape_numel(shape)));
  for (auto& x : v) x = dist(rng);
  return Tensor::from_vector<float>(shape, v);
}

/// Expects building a session over `model` to fail with a tinyq::Error whose message contains
/// every one of `needles`.
inline void expect_load_error(const Model& model, const std::vector<std::string>& needles) {
  try {
    Session s(model);
    ADD_FAILURE() << "the session was built; expected an error containing " << needles.front();
  } catch (const Error& e) {
    for (const auto& n : needles) EXPECT_NE(e.message().find(n), std::string::npos) << e.message();
  }
}

/// Same for running it on `feeds`.
inline void expect_run_error(const Model& model, const NamedTensors& feeds, const std::vector<std::string>& needles) {
  try {
    Session s(model);
    s.run(feeds);
    ADD_FAILURE() << "the run succeeded; expected an error containing " << needles.front();
  } catch (const Error& e) {
    for (const auto& n : needles) EXPECT_NE(e.message().find(n), std::string::npos) << e.message();
  }
}

}  // namespace tinyq::test
