// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// The model registry (registry.json): each model's file, digests and quantisation decision.
// The loader opens <basename>.onnx for quant_mode fp32 and the sibling <basename>.int8.onnx for
// dynamic/static/qat, the fp32 file staying on disk as the regression baseline.

#include <optional>
#include <string>
#include <vector>

namespace tinyq {

enum class QuantMode { Fp32, Dynamic, Static, Qat };
const char* quant_mode_name(QuantMode mode);

struct RegistryEntry {
  size_t index = 0;  ///< position in models[], for messages
  std::string id;
  std::string kind;  ///< fr / nr / filter
  std::string onnx;  ///< relative to the registry's folder
  std::string sha256;
  int64_t opset = 0;
  QuantMode quant_mode = QuantMode::Fp32;
  std::string quant_calibration_set;  ///< relative to the repo root; "" when absent
  double quant_accuracy_budget_plcc = 0.01;
  std::string int8_sha256;  ///< "" when absent
  bool smoke = false;
};

struct Registry {
  std::string path;  ///< registry.json as given
  std::string dir;   ///< its folder
  std::vector<RegistryEntry> models;

  const RegistryEntry* find(const std::string& id) const;
  /// Path of the fp32 model: <dir>/<onnx>.
  std::string fp32_path(const RegistryEntry& e) const;
  /// Path of the int8 sidecar: <dir>/<basename>.int8.onnx.
  std::string int8_path(const RegistryEntry& e) const;
  /// The file the loader opens for this entry (fp32_path or int8_path by quant_mode).
  std::string resolved_path(const RegistryEntry& e) const;
};

/// The sibling int8 path of a model path: "a/b/model.onnx" -> "a/b/model.int8.onnx".
std::string int8_sibling_path(const std::string& onnx_path);

}  // namespace tinyq
