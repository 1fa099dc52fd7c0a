// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// The header of a .npy image, parsed apart from its data so that a reader can learn the
// array's type and shape first and then read the data straight into the tensor (read_npz
// streams archive members this way instead of copying them through a buffer).

#include <cstddef>
#include <cstdint>
#include <string>

#include "tinyq/tensor.h"

namespace tinyq {

struct NpyLayout {
  DType dtype = DType::Undefined;
  Shape shape;
  size_t data_start = 0;  ///< offset of the array data in the image
};

/// numpy writes headers of a few hundred bytes (and reads at most 10,000 by default); a
/// longer one is refused before it is read.
constexpr size_t kMaxNpyHeaderBytes = 64 * 1024;

/// Bytes before the data (magic, version, length and header) of an image that starts with
/// `prefix` (at least 12 bytes, or the whole image when shorter). Throws on a bad magic or
/// version, a header longer than kMaxNpyHeaderBytes, or one past `total_bytes`.
size_t npy_header_bytes(const std::string& prefix, uint64_t total_bytes, const std::string& subject);

/// Parses the header of an image of `total_bytes` bytes; `head` holds at least its first
/// npy_header_bytes(). Checks that the data left is exactly what dtype and shape need.
NpyLayout parse_npy_header(const std::string& head, uint64_t total_bytes, const std::string& subject);

}  // namespace tinyq
