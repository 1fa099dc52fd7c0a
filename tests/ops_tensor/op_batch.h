// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// Runs many independent single-op cases as one model, in tinyq and in ONNX Runtime, and
// compares every output: floats within 1e-5 * max(1, max|ORT|), everything else exactly.
// One model per batch keeps the tier fast (each ORT run starts node).

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "model_builder.h"
#include "test_support.h"
#include "tinyq/error.h"
#include "tinyq/model_io.h"
#include "tinyq/session.h"

namespace tinyq::test {

inline std::mt19937& test_rng() {
  static std::mt19937 rng(1234);
  return rng;
}

inline Tensor rand_f32(const Shape& shape, float lo = -3.0f, float hi = 3.0f) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(static_cast<size_t>(shape_numel(shape)));
  for (float& x : v) x = dist(test_rng());
  return Tensor::from_vector<float>(shape, v);
}

template <typename T>
Tensor rand_int(const Shape& shape, int64_t lo, int64_t hi) {
  std::uniform_int_distribution<int64_t> dist(lo, hi);
  std::vector<T> v(static_cast<size_t>(shape_numel(shape)));
  for (T& x : v) x = static_cast<T>(dist(test_rng()));
  return Tensor::from_vector<T>(shape, v);
}

inline Tensor i64s(const std::vector<int64_t>& v) {
  return Tensor::from_vector<int64_t>({static_cast<int64_t>(v.size())}, v);
}

/// Floats: |got - want| <= 1e-5 * max(1, max finite |want|) element by element; NaN and
/// infinities must match exactly.
inline void expect_close(const Tensor& got, const Tensor& want, const std::string& where) {
  const std::vector<double> g = tensor_to_doubles(got), w = tensor_to_doubles(want);
  double scale = 1.0;
  for (double v : w)
    if (std::isfinite(v)) scale = std::max(scale, std::fabs(v));
  const double tol = 1e-5 * scale;
  double worst = 0;
  size_t worst_at = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    double d;
    if (std::isnan(g[i]) || std::isnan(w[i])) d = std::isnan(g[i]) && std::isnan(w[i]) ? 0 : INFINITY;
    else if (std::isinf(g[i]) || std::isinf(w[i])) d = g[i] == w[i] ? 0 : INFINITY;
    else d = std::fabs(g[i] - w[i]);
    if (d > worst) worst = d, worst_at = i;
  }
  EXPECT_LE(worst, tol) << where << ": at element " << worst_at << " tinyq " << g[worst_at] << ", onnxruntime "
                        << w[worst_at];
}

class OpBatch {
 public:
  explicit OpBatch(int64_t opset) : mb_(opset) {}

  /// A graph input fed with `value`; returns its name.
  std::string feed(const Tensor& value) {
    std::string name = fresh("in");
    mb_.input(name, value.dtype(), value.shape());
    feeds_.emplace_back(name, value);
    return name;
  }
  /// An initializer (a constant input).
  std::string constant(const Tensor& value) {
    std::string name = fresh("c");
    mb_.initializer(name, value);
    return name;
  }
  /// A node with `n_outputs` outputs, all of them graph outputs.
  std::vector<std::string> node(const std::string& op_type, std::vector<std::string> inputs,
                                std::vector<Attribute> attrs = {}, size_t n_outputs = 1) {
    std::vector<std::string> outs;
    for (size_t i = 0; i < n_outputs; ++i) outs.push_back(fresh("out"));
    mb_.node(op_type, std::move(inputs), outs, std::move(attrs));
    for (const auto& o : outs) {
      mb_.output(o);
      label_[o] = mb_.model.graph.nodes.back().name;
    }
    return outs;
  }
  std::string op(const std::string& op_type, std::vector<std::string> inputs, std::vector<Attribute> attrs = {}) {
    return node(op_type, std::move(inputs), std::move(attrs))[0];
  }
  /// A node whose single output stays internal (feeds later nodes).
  std::string hidden(const std::string& op_type, std::vector<std::string> inputs, std::vector<Attribute> attrs = {}) {
    std::string out = fresh("t");
    mb_.node(op_type, std::move(inputs), {out}, std::move(attrs));
    return out;
  }

  Model& model() { return mb_.model; }
  size_t output_count() const { return label_.size(); }

  /// Runs the batch in tinyq and ONNX Runtime and compares every output.
  void check() {
    if (!ort_available()) GTEST_SKIP() << "onnxruntime-node is not installed";
    NamedTensors ours;
    try {
      Session session(mb_.model);
      ours = session.run(feeds_);
    } catch (const Error& e) {
      FAIL() << "tinyq: " << e.message();
    }
    // Declare each output with the type tinyq produced; ORT rejects the model if it disagrees.
    for (auto& out : mb_.model.graph.outputs)
      for (const auto& [name, t] : ours)
        if (name == out.name) out.dtype = t.dtype();
    const std::string path = temp_dir() + "/batch.onnx";
    save_model(mb_.model, path);
    NamedTensors theirs;
    try {
      theirs = ort_run(path, feeds_);
    } catch (const std::exception& e) {
      FAIL() << e.what();
    }
    ASSERT_EQ(theirs.size(), ours.size());
    for (const auto& [name, got] : ours) {
      const Tensor* want = find_array(theirs, name);
      ASSERT_NE(want, nullptr) << name;
      const std::string where = label_[name] + " (" + name + ")";
      ASSERT_EQ(dtype_name(got.dtype()), std::string(dtype_name(want->dtype()))) << where;
      ASSERT_EQ(shape_to_string(got.shape()), shape_to_string(want->shape())) << where;
      if (got.dtype() == DType::F32 || got.dtype() == DType::F64) {
        expect_close(got, *want, where);
      } else if (!got.bit_equal(*want)) {
        std::vector<double> g = tensor_to_doubles(got), w = tensor_to_doubles(*want);
        size_t i = 0;
        while (i < g.size() && g[i] == w[i]) ++i;
        ADD_FAILURE() << where << ": first difference at element " << i << ": tinyq "
                      << (i < g.size() ? g[i] : 0) << ", onnxruntime " << (i < w.size() ? w[i] : 0);
      }
    }
  }

 private:
  std::string fresh(const char* prefix) { return prefix + std::to_string(counter_++); }

  ModelBuilder mb_;
  NamedTensors feeds_;
  std::map<std::string, std::string> label_;
  int counter_ = 0;
};

/// Expects building a session over `model` to throw tinyq::Error whose message names `node_name`
/// and contains `what`.
inline void expect_build_error(const Model& model, const std::string& node_name, const std::string& what) {
  try {
    Session s(model);
    ADD_FAILURE() << "expected a build error naming " << node_name;
  } catch (const Error& e) {
    EXPECT_NE(e.message().find("'" + node_name + "'"), std::string::npos) << e.message();
    EXPECT_NE(e.message().find(what), std::string::npos) << e.message();
  }
}

}  // namespace tinyq::test
