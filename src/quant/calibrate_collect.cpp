// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include "quant/calibrate_collect.h"

#include <algorithm>
#include <cmath>

namespace tinyq::quant {

void MinMaxCollector::add(const float* values, int64_t n) {
  // Fast path over blocks, eight independent lanes wide so the compiler can keep them in one
  // vector register each (a single running min, or a single float sum, is a serial chain it may
  // not reorder). `probe += x * 0` turns NaN as soon as any x is NaN or infinite, which sends
  // only that block through the slow, exact path.
  constexpr int64_t kBlock = 4096;
  constexpr int kLanes = 8;
  for (int64_t start = 0; start < n; start += kBlock) {
    const int64_t end = std::min(n, start + kBlock);
    float lo[kLanes], hi[kLanes], probe[kLanes];
    for (int k = 0; k < kLanes; ++k) {
      lo[k] = min;
      hi[k] = max;
      probe[k] = 0.0f;
    }
    int64_t i = start;
    for (; i + kLanes <= end; i += kLanes) {
      for (int k = 0; k < kLanes; ++k) {
        const float x = values[i + k];
        lo[k] = x < lo[k] ? x : lo[k];
        hi[k] = x > hi[k] ? x : hi[k];
        probe[k] += x * 0.0f;
      }
    }
    for (; i < end; ++i) {
      const float x = values[i];
      lo[0] = x < lo[0] ? x : lo[0];
      hi[0] = x > hi[0] ? x : hi[0];
      probe[0] += x * 0.0f;
    }
    float block_lo = lo[0], block_hi = hi[0], block_probe = 0.0f;
    for (int k = 0; k < kLanes; ++k) {
      block_lo = std::min(block_lo, lo[k]);
      block_hi = std::max(block_hi, hi[k]);
      block_probe += probe[k];
    }
    if (block_probe == 0.0f) {
      min = block_lo;
      max = block_hi;
      count += end - start;
      continue;
    }
    for (int64_t j = start; j < end; ++j) {
      const float x = values[j];
      if (!std::isfinite(x)) {
        ++nonfinite;
        continue;
      }
      min = std::min(min, x);
      max = std::max(max, x);
      ++count;
    }
  }
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
