// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// Shared by the nn op tests: random tensors from a fixed seed, and a check that runs one model
// in tinyq and in ONNX Runtime and compares every output. Several independent cases go into one
// model (one node each, own input and output names) so each ORT start covers a whole table.

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "model_builder.h"
#include "test_support.h"
#include "tinyq/error.h"
#include "tinyq/model_io.h"
#include "tinyq/session.h"

namespace tinyq::test {

/// Uniform values in [lo, hi) from the generator.
inline Tensor random_tensor(std::mt19937& rng, const Shape& shape, float lo = -1.0f, float hi = 1.0f) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(static_cast<size_t>(shape_numel(shape)));
  for (float& x : v) x = dist(rng);
  return Tensor::from_vector<float>(shape, v);
}

inline Attribute attr_i(const std::string& name, int64_t v) { return Attribute::make_int(name, v); }
inline Attribute attr_f(const std::string& name, float v) { return Attribute::make_float(name, v); }
inline Attribute attr_s(const std::string& name, const std::string& v) { return Attribute::make_string(name, v); }
inline Attribute attr_is(const std::string& name, std::vector<int64_t> v) {
  return Attribute::make_ints(name, std::move(v));
}

/// Saves the model, runs it in tinyq and in ONNX Runtime on `feeds`, and expects every graph
/// output to match: same shape, max |tinyq - ORT| <= 1e-4 * max(1, max |ORT|). `label` names
/// the output's case in failure messages (output name -> description).
inline void expect_matches_ort(const Model& model, const NamedTensors& feeds,
                               const std::vector<std::pair<std::string, std::string>>& labels = {}) {
  const std::string path = temp_dir() + "/model.onnx";
  save_model(model, path);
  NamedTensors ours;
  try {
    Session session = Session::from_file(path);
    ours = session.run(feeds);
  } catch (const Error& e) {
    FAIL() << "tinyq failed: " << e.message();
  }
  NamedTensors theirs;
  try {
    theirs = ort_run(path, feeds);
  } catch (const std::exception& e) {
    FAIL() << "ONNX Runtime failed: " << e.what();
  }
  ASSERT_EQ(ours.size(), model.graph.outputs.size());
  for (const auto& [name, got] : ours) {
    std::string label = name;
    for (const auto& [n, l] : labels)
      if (n == name) label = name + " (" + l + ")";
    const Tensor* want = find_array(theirs, name);
    ASSERT_NE(want, nullptr) << "ORT produced no output " << label;
    ASSERT_EQ(shape_to_string(got.shape()), shape_to_string(want->shape())) << label;
    const double diff = max_abs_diff(got, *want);
    const double tol = 1e-4 * std::max(1.0, max_abs(*want));
    EXPECT_LE(diff, tol) << label << ": max |tinyq - ORT| = " << diff;
  }
}

/// Builds a session over `model` and expects construction to throw tinyq::Error whose message
/// contains `needle` (and names the node, since build errors must).
inline void expect_build_error(const Model& model, const std::string& needle) {
  try {
    Session session(model);
    ADD_FAILURE() << "expected a build error containing '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(e.message().find(needle), std::string::npos) << e.message();
    EXPECT_FALSE(e.subject().empty()) << "the error should name the node: " << e.message();
  }
}

}  // namespace tinyq::test
