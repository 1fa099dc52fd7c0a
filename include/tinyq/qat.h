// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// Quantisation-aware training (QAT) on libtorch: warm-start a built-in architecture in fp32,
// insert fake quantisation where tinyq's static QDQ exporter puts Q/DQ pairs (symmetric
// per-channel int8 weights, per-tensor int8 activations with moving-average min/max observers),
// fine-tune, then export the fp32 graph through tinyq's own IR and the QDQ int8 file through the
// static PTQ writer, fed with the ranges QAT learned (or, with `recalibrate`, re-calibrated as
// the seed pipeline does). Only built when libtorch is found (TINYQ_WITH_QAT).

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "tinyq/calibrate.h"

namespace tinyq::qat {

struct QatConfig {
  std::string model = "mlp";               ///< built-in architecture ("mlp")
  std::vector<int64_t> hidden = {16, 16};  ///< model_args.hidden
  bool squeeze = true;                     ///< model_args.squeeze: output [N] instead of [N, 1]
  double lr = 1e-4;                        ///< model_args.lr (fp32 phase)
  std::string cache;                       ///< .parquet (features/target) or .npz (x/y); "" = smoke
  std::vector<std::string> features;       ///< parquet feature columns
  std::string target;                      ///< parquet target column
  int64_t batch_size = 32;
  double val_frac = 0.1;
  double test_frac = 0.1;
  uint64_t seed = 0;
  std::string loss = "l1";  ///< l1 | mse
  int epochs_fp32 = 20;
  int epochs_qat = 10;
  double lr_qat = 0.0;  ///< <= 0: lr / 10
  std::vector<int64_t> input_shape;  ///< [batch, features]; the feature count when no cache
  std::string input_name = "input";
  std::string output_name = "output";
  bool smoke = false;      ///< synthetic data, one epoch per phase
  bool distill = false;    ///< the fake-quant student matches the fp32 teacher's outputs
  /// The distillation teacher: an existing fp32 .onnx run in tinyq's runtime on the training
  /// rows (one input [rows, features], one value per row out); "" = the warm-started net.
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
  int64_t train_rows = 0, val_rows = 0, test_rows = 0, features = 0;
  bool smoke = false;
  std::vector<std::string> warnings;
  std::vector<EpochRecord> epochs;
  double fp32_seconds = 0.0, qat_seconds = 0.0, export_seconds = 0.0;
  /// Held-out (test split) loss and PLCC against the target, and PLCC / max |diff| of the int8
  /// file (run in tinyq's runtime) against the exported fp32 file.
  double test_loss_fp32 = 0.0, test_loss_int8 = 0.0;
  double test_plcc_fp32 = 0.0, test_plcc_int8 = 0.0;
  double int8_vs_fp32_plcc = 0.0, int8_vs_fp32_max_abs = 0.0;
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
