// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// Parquet's RLE / bit-packing hybrid, used for definition levels and dictionary indices.
//
//   stream   := run*
//   run      := varint header, then
//               header & 1 == 0: an RLE run of (header >> 1) copies of one value stored in
//                                ceil(bit_width / 8) little-endian bytes;
//               header & 1 == 1: (header >> 1) groups of 8 bit-packed values, bit_width * groups
//                                bytes, values packed from the least significant bit of each byte.
//
// The decoder produces exactly the count the caller asks for and refuses a stream that ends
// early; a run longer than needed is cut (writers pad the last bit-packed group). Output never
// grows past `count`, so a run declaring 2^31 values cannot make it allocate.

#include <cstddef>
#include <cstdint>
#include <string>

namespace tinyq::calib {

class RleHybridDecoder {
 public:
  /// `bit_width` 0..32; `subject` and `what` name the stream in errors.
  RleHybridDecoder(const uint8_t* data, size_t size, int bit_width, std::string subject, std::string what);

  /// Decodes the next `count` values into out[0..count).
  void decode(uint32_t* out, size_t count);
  /// Bytes consumed so far.
  size_t position() const { return pos_; }

 private:
  [[noreturn]] void fail(const std::string& text) const;
  bool next_run();

  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  int bit_width_;
  std::string subject_;
  std::string what_;
  // The run being consumed.
  bool rle_ = false;
  uint64_t run_left_ = 0;      ///< values left in the run
  uint32_t rle_value_ = 0;
  uint64_t packed_bit_ = 0;    ///< bit offset of the next packed value, from packed_start_
  size_t packed_start_ = 0;
  size_t packed_bytes_ = 0;    ///< bytes of the bit-packed run actually present
};

/// Bits needed for values 0..max_value (0 for max_value 0).
int bit_width_for(uint32_t max_value);

}  // namespace tinyq::calib
