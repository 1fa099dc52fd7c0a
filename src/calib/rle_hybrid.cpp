// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include "calib/rle_hybrid.h"

#include <algorithm>

#include "tinyq/error.h"

namespace tinyq::calib {

int bit_width_for(uint32_t max_value) {
  int w = 0;
  while (max_value) {
    ++w;
    max_value >>= 1;
  }
  return w;
}

RleHybridDecoder::RleHybridDecoder(const uint8_t* data, size_t size, int bit_width, std::string subject,
                                   std::string what)
    : data_(data), size_(size), bit_width_(bit_width), subject_(std::move(subject)), what_(std::move(what)) {
  if (bit_width < 0 || bit_width > 32) fail("bit width " + std::to_string(bit_width) + " is not in 0..32");
}

void RleHybridDecoder::fail(const std::string& text) const {
  throw Error(subject_, what_ + ": " + text);
}

bool RleHybridDecoder::next_run() {
  if (pos_ >= size_) return false;
  uint64_t header = 0;
  for (int i = 0;; ++i) {
    if (i == 5) fail("run header varint is too long");
    if (pos_ >= size_) fail("run header is truncated");
    uint8_t b = data_[pos_++];
    header |= static_cast<uint64_t>(b & 0x7f) << (7 * i);
    if (!(b & 0x80)) break;
  }
  if ((header & 1) == 0) {
    rle_ = true;
    run_left_ = header >> 1;
    size_t value_bytes = static_cast<size_t>((bit_width_ + 7) / 8);
    if (size_ - pos_ < value_bytes) fail("RLE run value is truncated");
    uint64_t v = 0;
    for (size_t i = 0; i < value_bytes; ++i) v |= static_cast<uint64_t>(data_[pos_ + i]) << (8 * i);
    pos_ += value_bytes;
    if (bit_width_ < 32 && (v >> bit_width_) != 0) fail("RLE run value " + std::to_string(v) + " does not fit in " + std::to_string(bit_width_) + " bits");
    rle_value_ = static_cast<uint32_t>(v);
  } else {
    rle_ = false;
    uint64_t groups = header >> 1;
    uint64_t declared = groups * static_cast<uint64_t>(bit_width_);  // bytes; groups < 2^31, fits
    packed_start_ = pos_;
    // Writers may leave out the padding bytes of a final partial group: take what is there and
    // let decode() refuse only if values it actually needs are missing.
    packed_bytes_ = static_cast<size_t>(std::min<uint64_t>(declared, size_ - pos_));
    pos_ += packed_bytes_;
    packed_bit_ = 0;
    run_left_ = groups * 8;
    if (bit_width_ > 0) run_left_ = std::min<uint64_t>(run_left_, packed_bytes_ * 8 / static_cast<uint64_t>(bit_width_));
    // A packed run whose bytes are all missing still declares values; make decode() notice.
    if (run_left_ == 0 && groups > 0 && bit_width_ > 0) fail("bit-packed run is truncated");
  }
  return true;
}

void RleHybridDecoder::decode(uint32_t* out, size_t count) {
  size_t done = 0;
  while (done < count) {
    if (run_left_ == 0) {
      if (!next_run()) fail("stream ends after " + std::to_string(done) + " of " + std::to_string(count) + " values");
      continue;
    }
    size_t take = static_cast<size_t>(std::min<uint64_t>(run_left_, count - done));
    if (rle_) {
      std::fill(out + done, out + done + take, rle_value_);
    } else if (bit_width_ == 0) {
      std::fill(out + done, out + done + take, 0u);
    } else {
      const uint8_t* base = data_ + packed_start_;
      const uint64_t mask = bit_width_ == 32 ? 0xffffffffull : ((1ull << bit_width_) - 1);
      for (size_t i = 0; i < take; ++i) {
        // Gather the value's bits from up to 5 bytes, least significant first. run_left_ was
        // capped by the bytes present, so every byte read here exists.
        uint64_t bit = packed_bit_;
        size_t byte = static_cast<size_t>(bit >> 3);
        unsigned shift = static_cast<unsigned>(bit & 7);
        size_t need = (shift + static_cast<unsigned>(bit_width_) + 7) / 8;
        uint64_t word = 0;
        for (size_t k = 0; k < need; ++k) word |= static_cast<uint64_t>(base[byte + k]) << (8 * k);
        out[done + i] = static_cast<uint32_t>((word >> shift) & mask);
        packed_bit_ += static_cast<uint64_t>(bit_width_);
      }
    }
    run_left_ -= take;
    done += take;
  }
}

}  // namespace tinyq::calib
