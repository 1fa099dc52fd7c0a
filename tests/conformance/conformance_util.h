// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// Whole-model conformance helpers: running a model on a list of samples, the issue's
// tolerance bars, and the seed gate's PLCC drop.
//
// Bars (issue 3, Conformance):
//   fp32 and dynamic int8 graphs: max |ours - ORT| <= 1e-4 * max(1, max |ORT|), and the gate's
//     drop from our outputs equal to ORT's within 1e-6;
//   QDQ graphs (ORT fuses Q/DQ into integer kernels and may round a value one step
//     differently): max |diff| <= 2% of the output's range, PLCC(ours, ORT) >= 0.9999, drop
//     within 1e-5.
// The drop: run the fp32 and the int8 model on the samples, take the first output, flatten and
// concatenate over the samples, drop = 1 - pearson(fp32, int8).

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "test_support.h"
#include "tinyq/model.h"
#include "tinyq/session.h"
#include "tinyq/stats.h"

namespace tinyq::test {

enum class Bar { Exactish, Qdq };

inline const char* bar_name(Bar b) { return b == Bar::Exactish ? "fp32/dynamic" : "QDQ"; }

/// A graph is held to the QDQ bar when it carries QuantizeLinear / DequantizeLinear nodes.
inline Bar bar_for(const Model& m) {
  for (const Node& n : m.graph.nodes)
    if (n.op_type == "QuantizeLinear" || n.op_type == "DequantizeLinear") return Bar::Qdq;
  return Bar::Exactish;
}

/// The first output of each sample, flattened and concatenated.
inline std::vector<double> concat_flat(const std::vector<Tensor>& per_sample) {
  std::vector<double> out;
  for (const Tensor& t : per_sample) {
    std::vector<double> v = tensor_to_doubles(t);
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

inline double gate_drop(const std::vector<Tensor>& fp32, const std::vector<Tensor>& int8) {
  return 1.0 - pearson(concat_flat(fp32), concat_flat(int8));
}

/// How one set of outputs compares with ONNX Runtime's.
struct Comparison {
  double max_diff = 0;   ///< max |ours - ORT|
  double max_ref = 0;    ///< max |ORT|
  double range_ref = 0;  ///< max(ORT) - min(ORT)
  double plcc = NAN;     ///< Pearson(ours, ORT); NaN when either side is constant
  bool shapes_match = true;
  size_t count = 0;
};

inline Comparison compare(const std::vector<Tensor>& ours, const std::vector<Tensor>& ort) {
  Comparison c;
  if (ours.size() != ort.size()) {
    c.shapes_match = false;
    return c;
  }
  for (size_t i = 0; i < ours.size(); ++i)
    if (ours[i].shape() != ort[i].shape()) c.shapes_match = false;
  if (!c.shapes_match) return c;
  const std::vector<double> a = concat_flat(ours), b = concat_flat(ort);
  c.count = a.size();
  if (b.empty()) return c;
  double lo = b[0], hi = b[0];
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = std::fabs(a[i] - b[i]);
    c.max_diff = std::isnan(d) ? INFINITY : std::max(c.max_diff, d);
    c.max_ref = std::max(c.max_ref, std::fabs(b[i]));
    lo = std::min(lo, b[i]);
    hi = std::max(hi, b[i]);
  }
  c.range_ref = hi - lo;
  c.plcc = pearson(a, b);
  return c;
}

/// Checks `c` against the bar; `label` names the model and graph in failures.
inline void expect_within_bar(const Comparison& c, Bar bar, const std::string& label) {
  ASSERT_TRUE(c.shapes_match) << label << ": output shapes differ from ONNX Runtime's";
  if (bar == Bar::Exactish) {
    const double limit = 1e-4 * std::max(1.0, c.max_ref);
    EXPECT_LE(c.max_diff, limit) << label << ": max |ours - ORT| over " << c.count << " values (max |ORT| "
                                 << c.max_ref << ")";
  } else {
    EXPECT_LE(c.max_diff, 0.02 * c.range_ref) << label << ": max |ours - ORT| vs 2% of ORT's range " << c.range_ref;
    // A constant output (or a single value) has no correlation to measure.
    if (c.count > 1 && c.range_ref > 0) {
      EXPECT_GE(c.plcc, 0.9999) << label << ": PLCC(ours, ORT)";
    }
  }
}

inline double drop_tolerance(Bar bar) { return bar == Bar::Exactish ? 1e-6 : 1e-5; }

}  // namespace tinyq::test
