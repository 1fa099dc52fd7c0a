// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// The libtorch side of QAT, behind a plain C++ interface so only mlp_trainer_torch.cpp includes
// torch's (slow to compile) headers.
//
// The MLP's tensors carry the names the exported ONNX graph gives them (mlp_tensor_names), so
// fake quantisation can be switched on exactly at the tensors the static QDQ exporter quantises.

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace tinyq::qat {

struct MlpSpec {
  int64_t inputs = 0;
  std::vector<int64_t> hidden;
  std::vector<float> mean, stddev;  ///< the input scaler, baked in as Sub/Div
  bool squeeze = true;
  std::string input_name = "input";
  std::string output_name = "output";
};

/// Row-major [rows, features] inputs and [rows] targets.
struct Dataset {
  std::vector<float> x;
  std::vector<float> y;
  int64_t rows = 0;
  int64_t features = 0;
};

/// Names of the activation tensors in graph order: input, "scaled" (after Sub/Div), then per
/// layer i "gemm_i" and (hidden layers) "relu_i", then the output (after the optional Squeeze).
std::vector<std::string> mlp_tensor_names(const MlpSpec& spec);

struct LayerWeights {
  std::vector<float> weight;  ///< [out, in] row-major (Gemm transB = 1)
  std::vector<float> bias;    ///< [out]
  int64_t out = 0, in = 0;
};

class MlpTrainer {
 public:
  MlpTrainer(const MlpSpec& spec, uint64_t seed);
  ~MlpTrainer();
  MlpTrainer(const MlpTrainer&) = delete;
  MlpTrainer& operator=(const MlpTrainer&) = delete;

  /// Starts fake quantisation at the named activation tensors (observers start from the first
  /// batch) and on every layer's weights (symmetric per-channel int8, [-127, 127]).
  /// `running_minmax`: observers keep the running minimum/maximum (torch's MinMaxObserver)
  /// instead of the moving average of batch extremes (MovingAverageMinMaxObserver).
  void enable_fake_quant(const std::set<std::string>& activation_tensors, bool running_minmax = false);
  /// One pass over `data` in shuffled batches with Adam at `lr`; returns the mean batch loss.
  /// `targets` replaces data.y when non-empty (distillation).
  double train_epoch(const Dataset& data, const std::vector<float>& targets, int64_t batch_size,
                     double lr, bool mse);
  /// Forward pass without gradients (observers frozen); one value per row.
  std::vector<float> predict(const Dataset& data) const;
  std::vector<LayerWeights> weights() const;
  /// The moving-average ranges of the fake-quantised activations.
  std::map<std::string, std::pair<float, float>> activation_ranges() const;
  int64_t parameter_count() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tinyq::qat
