// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// The one trainer behind every architecture: it interprets a tinyq Model's nodes with libtorch
// calls (graph_ops_torch.cpp, one row per ONNX op), holds the chosen initializers as trainable
// parameters, and fake-quantises exactly the tensors a FakeQuantPlan names. Training changes
// nothing but initializer values, so store_weights() gives back the same graph with the trained
// weights. Only the *_torch.cpp files include libtorch's (slow to compile) headers.

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "qat/qat_data.h"
#include "tinyq/model.h"

namespace tinyq::qat {

/// Where quantisation happens in the exported int8 file (fake_quant_plan.h builds it from the
/// static QDQ exporter's rules).
struct FakeQuantPlan {
  /// Tensors (graph input or node outputs) with a Q/DQ pair of their own: per-tensor
  /// asymmetric int8 whose range a min/max observer learns.
  std::vector<std::string> activations;
  /// Weight initializers stored as symmetric int8, with the channel axis of their scales
  /// (-1: one scale for the whole tensor).
  std::map<std::string, int> weights;
  /// Observers keep the running minimum/maximum (torch's MinMaxObserver) instead of the moving
  /// average of batch extremes (MovingAverageMinMaxObserver, averaging constant 0.01).
  bool running_minmax = false;
};

/// The op types the trainer can run (the ops of tinyq's real models and their usual company).
std::vector<std::string> trainer_op_types();

class GraphTrainer {
 public:
  /// Compiles `model` (one float input, its first output is trained) for libtorch; the
  /// `trainable` initializers become parameters. Error(subject, ...) names the first node whose
  /// op or attributes the trainer cannot run.
  GraphTrainer(const Model& model, const std::vector<std::string>& trainable, const std::string& subject,
               uint64_t seed);
  ~GraphTrainer();
  GraphTrainer(const GraphTrainer&) = delete;
  GraphTrainer& operator=(const GraphTrainer&) = delete;

  /// Starts fake quantisation as `plan` says (observers start from the next training batch).
  /// Error for a plan naming a tensor or weight the graph lacks.
  void enable_fake_quant(const FakeQuantPlan& plan);
  /// One pass over `data` in shuffled batches with Adam at `lr`; returns the mean batch loss.
  /// `targets` (rows x outputs per row) replaces data.y when non-empty (distillation).
  double train_epoch(const Dataset& data, const std::vector<float>& targets, int64_t batch_size, double lr, bool mse);
  /// Forward pass without gradients (observers frozen), in chunks; outputs per row, row-major.
  std::vector<float> predict(const Dataset& data) const;
  /// The output shape for a batch of `rows` rows shaped like data's (one forward pass).
  std::vector<int64_t> output_shape(const Dataset& data, int64_t rows) const;
  /// Writes the parameters' current values into `model`'s initializers of the same names.
  void store_weights(Model& model) const;
  /// The observed ranges of the fake-quantised float activations.
  std::map<std::string, std::pair<float, float>> activation_ranges() const;
  /// Planned activations that turned out not to hold float32 (shapes, indices): never quantised.
  std::vector<std::string> non_float_activations() const;
  int64_t parameter_count() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tinyq::qat
