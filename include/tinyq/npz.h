// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// numpy's .npy and .npz formats: little-endian, C order; float32/64, int8/16/32/64,
// uint8/16/32/64, bool. Object arrays (pickles), Fortran order and big-endian data are refused.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "tinyq/tensor.h"

namespace tinyq {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

struct NpzLimits {
  uint64_t max_file_bytes = 4ull << 30;
  uint64_t max_total_bytes = 4ull << 30;  ///< uncompressed, all members together
  uint64_t max_members = 100000;
};

/// Parses one .npy image; `subject` names it in errors.
Tensor parse_npy(const std::string& bytes, const std::string& subject);
/// Serializes a tensor as .npy (format 1.0).
std::string serialize_npy(const Tensor& t);

Tensor read_npy(const std::string& path);
void write_npy(const std::string& path, const Tensor& t);

/// Reads every array of an .npz in archive order; keys drop the ".npy" suffix.
NamedTensors read_npz(const std::string& path, const NpzLimits& limits = {});
/// Writes an .npz atomically; `compress` deflates members like numpy.savez_compressed.
void write_npz(const std::string& path, const NamedTensors& arrays, bool compress = false);

/// The array named `key`, or nullptr.
const Tensor* find_array(const NamedTensors& arrays, const std::string& key);

}  // namespace tinyq
