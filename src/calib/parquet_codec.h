// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// Page decompression for the codecs Debian's libraries cover: UNCOMPRESSED, SNAPPY (raw snappy
// blocks), GZIP (zlib's gzip or zlib streams) and ZSTD (one or more frames). The caller passes
// the page's declared uncompressed size, already checked against its limit; the output must
// have exactly that size, and codecs that state their output size in a header (snappy, zstd)
// are checked against it before the buffer is allocated.

#include <cstddef>
#include <cstdint>
#include <string>

namespace tinyq::calib {

/// True for the codecs decompress_page() handles.
bool parquet_codec_supported(int32_t codec);

/// Decompresses one page body into a string of exactly `uncompressed_size` bytes.
std::string decompress_page(int32_t codec, const uint8_t* src, size_t src_size, size_t uncompressed_size,
                            const std::string& subject, const std::string& where);

}  // namespace tinyq::calib
