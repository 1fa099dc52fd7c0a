// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// Range methods: from what the collectors kept to the [min, max] a tensor's scale will cover.
// Each method also says which histogram it needs, so calibration can collect exactly that.

#include <utility>

#include "quant/calibrate_collect.h"
#include "tinyq/calibrate.h"

namespace tinyq::quant {

/// The histogram a method reads, laid out from the first pass's min/max:
///   percentile: |x| over [0, max(|min|, |max|)]          (ONNX Runtime's layout)
///   entropy:    x over [0, max] for non-negative tensors, else x over [-a, a], a = max |x|
///   mse:        x over [min, max]
/// minmax needs none (returns an empty collector).
HistogramCollector make_histogram(CalibrationMethod method, const MinMaxCollector& mm, int bins);

/// The range a method chooses. Every method stays inside the observed [min, max]; a tensor with
/// no finite values gets [0, 0].
std::pair<float, float> choose_range(const CalibrationOptions& options, const MinMaxCollector& mm,
                                     const HistogramCollector& hist);

/// The pieces, for tests.
std::pair<float, float> percentile_range(const HistogramCollector& abs_hist, const MinMaxCollector& mm,
                                         double percentile);
/// `levels`: the integer values of the target type over the window (256 for 8 bits).
std::pair<float, float> entropy_range(const HistogramCollector& hist, const MinMaxCollector& mm, int levels);
std::pair<float, float> mse_range(const HistogramCollector& hist, const MinMaxCollector& mm);

/// Expected squared error of 8-bit asymmetric fake quantisation (256 levels covering
/// [min(lo, 0), max(hi, 0)]) of values spread uniformly over [u, v], times (v - u): the
/// integral of (x - fq(x))^2 over the interval, clipping included. Exact, in closed form.
double quant_error_integral(double u, double v, double lo, double hi);

}  // namespace tinyq::quant
