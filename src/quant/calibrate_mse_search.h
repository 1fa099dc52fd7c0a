// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// The mse method's range search, scored where the error matters: on the model's outputs.
//
// The range that minimises a tensor's own quantisation error squared is a poor guide when the
// tensor is heavy-tailed: a feature with a Pareto(1.5) tail has unbounded expected squared
// clipping error, so that range is (almost) minmax's, and the ordinary values get a handful of
// levels. What a model's user sees is the output. So, for each activation in graph order, a few
// candidate ranges (the tensor-level MSE optimum, minmax's, and two-sided percentile clips taken
// from the same histogram) are each tried with fake quantisation (QuantizeLinear ->
// DequantizeLinear, int8) on that tensor and on the tensors already decided, and the candidate
// whose model outputs have the least mean squared error against the fp32 outputs wins — a
// greedy, layer-by-layer search like AdaQuant's and NNCF's range selection, on the first samples
// of the calibration set (as many as fit a fixed budget of input elements).

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "quant/calibrate_collect.h"
#include "tinyq/calibrate.h"

namespace tinyq::quant {

struct TensorStats {
  const MinMaxCollector* minmax = nullptr;
  const HistogramCollector* histogram = nullptr;  ///< over [min, max] (make_histogram, Mse)
};

/// Candidate ranges for one tensor, deduplicated, the tensor-level MSE optimum first.
std::vector<std::pair<float, float>> mse_candidates(const MinMaxCollector& mm, const HistogramCollector& hist);

/// The chosen range of every tensor in `stats` (graph inputs and node outputs of `model`).
/// Tensors with a single candidate, or that the graph cannot fake-quantise, keep the
/// tensor-level MSE optimum.
std::map<std::string, std::pair<float, float>> mse_output_search(const Model& model, const CalibrationSource& source,
                                                                 const std::map<std::string, TensorStats>& stats,
                                                                 int workers);

}  // namespace tinyq::quant
