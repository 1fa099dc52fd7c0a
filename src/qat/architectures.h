// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// What `model:` can name, one row per architecture. Each row only writes a tinyq Model (graph
// and initial weights); training, fake quantisation and export are the same code for all of them
// (graph_trainer.h), so the exported graph is exactly the graph that was trained.

#include <cstdint>
#include <string>
#include <vector>

#include "qat/qat_data.h"
#include "tinyq/model.h"
#include "tinyq/qat.h"

namespace tinyq::qat {

struct Architecture {
  const char* name;
  /// An existing model is fine-tuned: no fp32 warm start unless epochs_fp32 asks for one.
  bool fine_tune;
  /// Labels of smoke rows: None drops them (the fp32 model is the teacher); image rows are
  /// labelled Clean or Quality; feature rows keep smoke_vectors' score otherwise.
  SmokeImageTarget smoke_target;
  /// The shape of one smoke row ([features] or [channels, height, width]).
  std::vector<int64_t> (*smoke_shape)(const QatConfig& config);
  /// The fp32 model for training rows shaped like `train` (whose statistics an architecture
  /// may bake in, as mlp's input scaler). Initial weights are drawn from `seed`.
  Model (*build)(const QatConfig& config, const Dataset& train, uint64_t seed);
};

const std::vector<Architecture>& architectures();
/// The row named `name`; Error listing the names otherwise.
const Architecture& find_architecture(const std::string& name);

// The rows' functions (arch_*.cpp).
std::vector<int64_t> mlp_smoke_shape(const QatConfig& config);
Model build_mlp(const QatConfig& config, const Dataset& train, uint64_t seed);
std::vector<int64_t> image_smoke_shape(const QatConfig& config);
Model build_learned_filter(const QatConfig& config, const Dataset& train, uint64_t seed);
Model build_nr_metric(const QatConfig& config, const Dataset& train, uint64_t seed);
std::vector<int64_t> onnx_smoke_shape(const QatConfig& config);
Model build_onnx(const QatConfig& config, const Dataset& train, uint64_t seed);

/// The single float input and first output of a model QAT can train; Error(subject) otherwise.
const ValueInfo& qat_model_input(const Model& model, const std::string& subject);
const ValueInfo& qat_model_output(const Model& model, const std::string& subject);

}  // namespace tinyq::qat
