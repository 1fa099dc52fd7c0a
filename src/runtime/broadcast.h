// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// Shape and index helpers shared by the ops: numpy broadcasting, strides, and a strided copy.
//
// Broadcast loops walk the output one innermost "row" at a time: for each row the walker gives
// the output offset and each input's offset, and every input advances along the row by a stride
// of 0 (broadcast) or 1 (contiguous). Adjacent dimensions that every input walks the same way
// are merged first, so [8,3,4] + [4] becomes 24 rows of 4 and [8,3,4] + [8,3,4] one row of 96.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "tinyq/tensor.h"

namespace tinyq::rt {

/// numpy (ONNX multidirectional) broadcasting of two shapes; throws tinyq::Error naming both.
Shape broadcast_shapes(const Shape& a, const Shape& b);
/// The broadcast of every shape in the list (at least one).
Shape broadcast_shapes(const std::vector<Shape>& shapes);

/// C-order strides, in elements.
std::vector<int64_t> contiguous_strides(const Shape& shape);
/// Strides, in elements, of a C-ordered tensor of shape `in` read as shape `out` under
/// broadcasting: right-aligned, 0 where `in` has a 1 (or no dimension). `in` must broadcast to `out`.
std::vector<int64_t> broadcast_strides(const Shape& in, const Shape& out);

/// Walks a broadcast op's output row by row (see the header comment).
class BroadcastRows {
 public:
  /// `inputs` must each broadcast to `out`.
  BroadcastRows(const Shape& out, const std::vector<Shape>& inputs);

  int64_t row_length() const { return row_length_; }
  int64_t row_count() const { return row_count_; }
  /// Stride of input k along a row: 0 (broadcast) or 1.
  int64_t row_stride(size_t k) const { return row_stride_[k]; }

  /// Calls fn(out_offset, in_offsets) for each row, in C order; in_offsets has one entry per input.
  template <typename Fn>
  void for_each_row(Fn&& fn) const {
    if (row_count_ == 0 || row_length_ == 0) return;
    const size_t n_in = row_stride_.size();
    const size_t n_outer = outer_dims_.size();
    std::vector<int64_t> index(n_outer, 0);
    std::vector<int64_t> offsets(n_in, 0);
    for (int64_t row = 0; row < row_count_; ++row) {
      fn(row * row_length_, offsets.data());
      // Odometer over the outer dimensions, innermost first.
      for (size_t d = n_outer; d-- > 0;) {
        for (size_t k = 0; k < n_in; ++k) offsets[k] += outer_strides_[k][d];
        if (++index[d] < outer_dims_[d]) break;
        for (size_t k = 0; k < n_in; ++k) offsets[k] -= outer_strides_[k][d] * outer_dims_[d];
        index[d] = 0;
      }
    }
  }

 private:
  int64_t row_length_ = 1;
  int64_t row_count_ = 1;
  std::vector<int64_t> row_stride_;
  std::vector<int64_t> outer_dims_;
  std::vector<std::vector<int64_t>> outer_strides_;  // per input, per outer dim
};

/// Copies the elements of a strided source view into a dense C-ordered destination of `shape`:
/// dst[i0..in] = src[offset + sum(ik * src_strides[k])] (strides and offset in elements, strides
/// may be 0 or negative). Used for transpose, slice and expand.
void strided_copy(void* dst, const void* src, size_t elem_size, const Shape& shape,
                  const std::vector<int64_t>& src_strides, int64_t src_offset = 0);

/// An axis in [-rank, rank-1] made non-negative; throws tinyq::Error otherwise.
int64_t normalize_axis(int64_t axis, int64_t rank);

}  // namespace tinyq::rt
