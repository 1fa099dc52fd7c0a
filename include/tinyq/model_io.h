// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tinyq/model.h"

namespace tinyq {

/// Caps that keep a hostile file from making tinyq allocate without bound. The defaults are
/// generous for tiny models (tinyq's largest real model is 3.3 MB).
struct LoadLimits {
  uint64_t max_file_bytes = 1ull << 30;          ///< the .onnx file itself
  uint64_t max_total_tensor_bytes = 2ull << 30;  ///< all initializers and constants together
  uint64_t max_nodes = 1u << 20;                 ///< nodes, subgraphs included
};

/// Where an initializer's bytes came from, for `tinyq inspect`.
struct ExternalDataRef {
  std::string tensor;
  std::string location;
  uint64_t offset = 0;
  uint64_t length = 0;
};

struct LoadedModel {
  Model model;
  std::vector<ExternalDataRef> external_data;  ///< empty when every tensor was inline
};

/// Loads an .onnx file, resolving external data relative to the file's folder. Throws
/// tinyq::Error naming the file (or the external data file) for anything wrong.
LoadedModel load_model_file(const std::string& path, const LoadLimits& limits = {});
/// Shorthand for load_model_file(path).model.
Model load_model(const std::string& path, const LoadLimits& limits = {});
/// Parses serialized ModelProto bytes; external data is resolved under base_dir.
LoadedModel parse_model(const std::string& bytes, const std::string& name_for_errors,
                        const std::string& base_dir, const LoadLimits& limits = {});

/// Serializes a model to ModelProto bytes; every tensor is written inline (raw_data).
std::string serialize_model(const Model& model);
/// Serializes and writes atomically (temp file + rename); returns the bytes written. Nothing
/// in it allocates after the rename, so a caller that does no more can report failure only
/// when the file was not written.
uint64_t save_model(const Model& model, const std::string& path);

}  // namespace tinyq
