// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// Quantisation-aware training (QAT) on libtorch: build a built-in architecture (mlp,
// learned_filter, nr_metric) or import an existing fp32 .onnx (`model: onnx`), warm-start it in
// fp32, insert fake quantisation where tinyq's static QDQ exporter puts Q/DQ pairs (symmetric
// per-channel int8 weights, per-tensor int8 activations with moving-average min/max observers),
// fine-tune, then export the fp32 graph through tinyq's own IR and the QDQ int8 file through the
// static PTQ writer, fed with the ranges QAT learned (or, with `recalibrate`, re-calibrated as
// the seed pipeline does). Every architecture is a tinyq Model trained by one graph interpreter
// on libtorch, so the exported graph is the trained graph. Only built when libtorch is found
// (TINYQ_WITH_QAT).

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "tinyq/calibrate.h"

namespace tinyq::qat {

struct QatConfig {
  /// "mlp", "learned_filter", "nr_metric" (built-in architectures) or "onnx" (fine-tune the
  /// fp32 model at model_path).
  std::string model = "mlp";
  std::vector<int64_t> hidden = {16, 16};  ///< mlp: model_args.hidden
  bool squeeze = true;                     ///< mlp: model_args.squeeze: output [N] instead of [N, 1]
  /// learned_filter / nr_metric: model_args.channels, the image channels (0 = the data's, or 1
  /// for smoke data); model_args.width, the first conv's output channels; model_args.num_blocks
  /// (0 = the architecture's default: 4 residual blocks, 5 depthwise-separable blocks).
  int64_t channels = 0;
  int64_t width = 16;
  int64_t num_blocks = 0;
  /// onnx: model_args.path, the fp32 model to fine-tune (a relative path is looked up beside the
  /// config file too).
  std::string model_path;
  double lr = 1e-4;                        ///< model_args.lr (fp32 phase)
  /// .parquet (features/target) or .npz (x [N, ...] and, optionally, y [N, ...]: without y the
  /// student is distilled from the fp32 model); "" = smoke
  std::string cache;
  std::vector<std::string> features;       ///< parquet feature columns
  std::string target;                      ///< parquet target column
  int64_t batch_size = 32;
  double val_frac = 0.1;
  double test_frac = 0.1;
  uint64_t seed = 0;
  std::string loss = "l1";  ///< l1 | mse
  /// < 0: the default, 20 for a built-in architecture and 0 when fine-tuning an onnx model.
  int epochs_fp32 = -1;
  int epochs_qat = 10;
  double lr_qat = 0.0;  ///< <= 0: lr / 10
  /// [batch, features] or [batch, channels, height, width]: the shape of smoke data (default 6
  /// features, 32x32 images), and, for an onnx model, the shape to train at when its declared
  /// one is symbolic or different (its export then declares those dimensions symbolic).
  std::vector<int64_t> input_shape;
  std::string input_name = "input";    ///< built-in architectures (an onnx model keeps its names)
  std::string output_name = "output";
  bool smoke = false;      ///< synthetic data, one epoch per phase
  bool distill = false;    ///< the fake-quant student matches the fp32 teacher's outputs
  /// The distillation teacher: an existing fp32 .onnx run in tinyq's runtime on the training
  /// rows (one input, the model's outputs per row); "" = the warm-started (or imported) net.
  std::string teacher;
  bool recalibrate = false;
  /// Activation observers: "moving_average" (default; batch extremes averaged with constant
  /// 0.01) or "minmax" (running extremes, so heavy tails are never clipped).
  std::string observer = "moving_average";
  /// Nodes kept fp32 in the int8 file (and not fake-quantised in training), e.g. "fc0" to keep
  /// the first layer's input, which a heavy-tailed feature dominates, in float.
  std::vector<std::string> exclude_nodes;
  int n_calibration = 64;
  std::string output;  ///< the int8 QDQ file; the fp32 graph goes to <basename>.qat.fp32.onnx
  /// Called after every epoch (phase "fp32" or "qat"); the CLI draws its progress line with it.
  std::function<void(const std::string& phase, int epoch, int epochs, double loss, double elapsed_s)> on_epoch;
};

/// Reads a YAML config (the seed's shape); Error(path, ...) for anything malformed.
QatConfig load_qat_config(const std::string& path);

struct EpochRecord {
  std::string phase;  ///< "fp32" | "qat"
  int epoch = 0;
  double train_loss = 0.0;
  double val_loss = 0.0;
  double seconds = 0.0;
};

struct QatResult {
  std::string fp32_path;
  std::string int8_path;
  int64_t parameters = 0;
  std::string architecture;           ///< config.model
  std::vector<int64_t> sample_shape;  ///< one input row: [features] or [channels, height, width]
  int64_t train_rows = 0, val_rows = 0, test_rows = 0;
  int64_t features = 0;       ///< values per input row
  int64_t outputs_per_row = 0;
  int epochs_fp32 = 0, epochs_qat = 0;  ///< the epochs run
  bool distilled = false;     ///< trained on teacher outputs (asked for, or the data had no labels)
  /// The trainer's fake-quantised tensors, as the exporter names them: activations with a Q/DQ
  /// pair of their own, and weights with their channel axis (-1: per tensor).
  std::vector<std::string> fake_quant_activations;
  std::vector<std::pair<std::string, int>> fake_quant_weights;
  size_t weights_quantised = 0;  ///< weights the int8 file holds as int8 (the exporter's count)
  bool smoke = false;
  std::vector<std::string> warnings;
  std::vector<EpochRecord> epochs;
  double fp32_seconds = 0.0, qat_seconds = 0.0, export_seconds = 0.0;
  /// Held-out (test split) loss and PLCC against the target, and PLCC / max |diff| of the int8
  /// file (run in tinyq's runtime) against the exported fp32 file.
  double test_loss_fp32 = 0.0, test_loss_int8 = 0.0;
  double test_plcc_fp32 = 0.0, test_plcc_int8 = 0.0;
  double int8_vs_fp32_plcc = 0.0, int8_vs_fp32_max_abs = 0.0;
  /// The int8 file (tinyq's runtime) against the trainer's own fake-quantised forward pass on
  /// the held-out rows: small when fake quantisation sits where the exporter puts Q/DQ.
  double int8_vs_qat_max_abs = 0.0;
  /// Baselines on the same held-out rows: the warm-started fp32 net (the distillation teacher)
  /// and static minmax PTQ of it (n_calibration training rows, the same QDQ options).
  double test_plcc_warm_fp32 = 0.0, test_plcc_static_ptq = 0.0;
  double test_plcc_teacher = 0.0;  ///< the .onnx teacher's, when one was given
  std::string ranges_source;  ///< "qat" (learned) or "recalibrated"
  RangeTable ranges;          ///< the activation ranges the int8 file was written with
  std::vector<ActivationQuantRecord> activations;
};

/// The whole pipeline; writes both files atomically.
QatResult run_qat(const QatConfig& config);

}  // namespace tinyq::qat
