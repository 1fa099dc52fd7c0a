// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include "quant/calibrate_collect.h"

#include <algorithm>
#include <cmath>

#include "kernels/reduce.h"

namespace tinyq::quant {

void MinMaxCollector::add(const float* values, int64_t n) {
  const int64_t skipped = kernels::finite_minmax_f32(values, n, &min, &max);
  nonfinite += skipped;
  count += n - skipped;
}

void MinMaxCollector::merge(const MinMaxCollector& other) {
  min = std::min(min, other.min);
  max = std::max(max, other.max);
  count += other.count;
  nonfinite += other.nonfinite;
}

HistogramCollector::HistogramCollector(double lo_, double hi_, int bins, bool absolute_)
    : lo(lo_), hi(hi_), absolute(absolute_), counts(static_cast<size_t>(std::max(bins, 1)), 0) {}

void HistogramCollector::add(const float* values, int64_t n) {
  if (counts.empty()) return;  // minmax needs no histogram
  const int last = bins() - 1;
  const double w = width();
  // A degenerate range (a constant tensor) puts everything in bin 0.
  const double inv = w > 0.0 ? 1.0 / w : 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const float x = values[i];
    if (!std::isfinite(x)) continue;
    const double v = absolute ? std::fabs(static_cast<double>(x)) : static_cast<double>(x);
    const double pos = (v - lo) * inv;
    const int b = pos <= 0.0 ? 0 : pos >= last ? last : static_cast<int>(pos);
    ++counts[static_cast<size_t>(b)];
  }
}

void HistogramCollector::merge(const HistogramCollector& other) {
  for (size_t i = 0; i < counts.size() && i < other.counts.size(); ++i) counts[i] += other.counts[i];
}

int64_t HistogramCollector::total() const {
  int64_t t = 0;
  for (int64_t c : counts) t += c;
  return t;
}

}  // namespace tinyq::quant
