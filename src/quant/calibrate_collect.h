// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// Calibration collectors: what calibration keeps of each activation as samples stream through.
// Both merge exactly (min/max, integer counts), so results do not depend on how samples were
// split between worker threads or in which order they ran.

#include <cstdint>
#include <limits>
#include <vector>

namespace tinyq::quant {

/// Running minimum and maximum of the finite values, with counts.
struct MinMaxCollector {
  float min = std::numeric_limits<float>::infinity();
  float max = -std::numeric_limits<float>::infinity();
  int64_t count = 0;      ///< finite values
  int64_t nonfinite = 0;  ///< NaN / Inf values (not in min/max)

  void add(const float* values, int64_t n);
  void merge(const MinMaxCollector& other);
  bool empty() const { return count == 0; }
};

/// A histogram of `bins` equal bins over [lo, hi] (of |x| when `absolute`). The range comes from
/// a first min/max pass over the same samples, so every finite value falls inside; values on
/// the upper edge go into the last bin. Non-finite values are not counted.
struct HistogramCollector {
  double lo = 0.0;
  double hi = 0.0;
  bool absolute = false;
  std::vector<int64_t> counts;

  HistogramCollector() = default;
  HistogramCollector(double lo_, double hi_, int bins, bool absolute_);
  void add(const float* values, int64_t n);
  void merge(const HistogramCollector& other);

  int bins() const { return static_cast<int>(counts.size()); }
  double width() const { return counts.empty() ? 0.0 : (hi - lo) / static_cast<double>(counts.size()); }
  /// Left edge of bin i (edge(bins()) is hi).
  double edge(int i) const { return lo + width() * i; }
  int64_t total() const;
};

}  // namespace tinyq::quant
