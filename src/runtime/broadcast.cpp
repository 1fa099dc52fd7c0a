// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include "runtime/broadcast.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "tinyq/error.h"

namespace tinyq::rt {

Shape broadcast_shapes(const Shape& a, const Shape& b) {
  const size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (size_t i = 0; i < rank; ++i) {
    // Right-aligned: dimension i of the result pairs the i-th from the end of each input.
    int64_t da = i < a.size() ? a[a.size() - 1 - i] : 1;
    int64_t db = i < b.size() ? b[b.size() - 1 - i] : 1;
    if (da != db && da != 1 && db != 1)
      throw Error("cannot broadcast shapes " + shape_to_string(a) + " and " + shape_to_string(b));
    out[rank - 1 - i] = da == 1 ? db : da;
  }
  return out;
}

Shape broadcast_shapes(const std::vector<Shape>& shapes) {
  if (shapes.empty()) throw Error("cannot broadcast an empty list of shapes");
  Shape out = shapes[0];
  for (size_t k = 1; k < shapes.size(); ++k) out = broadcast_shapes(out, shapes[k]);
  return out;
}

std::vector<int64_t> contiguous_strides(const Shape& shape) {
  std::vector<int64_t> strides(shape.size(), 1);
  for (size_t i = shape.size(); i-- > 1;) strides[i - 1] = strides[i] * shape[i];
  return strides;
}

std::vector<int64_t> broadcast_strides(const Shape& in, const Shape& out) {
  if (in.size() > out.size())
    throw Error("cannot broadcast shape " + shape_to_string(in) + " to " + shape_to_string(out));
  std::vector<int64_t> own = contiguous_strides(in);
  std::vector<int64_t> strides(out.size(), 0);
  const size_t lead = out.size() - in.size();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == out[lead + i]) {
      strides[lead + i] = in[i] == 1 ? 0 : own[i];
    } else if (in[i] != 1) {
      throw Error("cannot broadcast shape " + shape_to_string(in) + " to " + shape_to_string(out));
    }
  }
  return strides;
}

namespace {

// Drops size-1 dimensions and merges neighbours that every stride list walks contiguously
// (stride[outer] == stride[inner] * dim[inner]); the element order is unchanged.
void coalesce(Shape& dims, std::vector<std::vector<int64_t>>& strides) {
  Shape out_dims;
  std::vector<std::vector<int64_t>> out_strides(strides.size());
  for (size_t d = 0; d < dims.size(); ++d) {
    if (dims[d] == 1) continue;
    bool merge = !out_dims.empty();
    for (size_t k = 0; merge && k < strides.size(); ++k)
      merge = out_strides[k].back() == strides[k][d] * dims[d];
    if (merge) {
      out_dims.back() *= dims[d];
      for (size_t k = 0; k < strides.size(); ++k) out_strides[k].back() = strides[k][d];
    } else {
      out_dims.push_back(dims[d]);
      for (size_t k = 0; k < strides.size(); ++k) out_strides[k].push_back(strides[k][d]);
    }
  }
  dims = std::move(out_dims);
  strides = std::move(out_strides);
}

}  // namespace

BroadcastRows::BroadcastRows(const Shape& out, const std::vector<Shape>& inputs) {
  Shape dims = out;
  std::vector<std::vector<int64_t>> strides;
  for (const Shape& in : inputs) strides.push_back(broadcast_strides(in, out));
  row_count_ = shape_numel(out) == 0 ? 0 : 1;
  coalesce(dims, strides);
  row_stride_.assign(inputs.size(), 0);
  if (dims.empty()) return;  // a single element
  // The innermost dimension becomes the row; its strides are 0 or 1 (see broadcast_strides).
  row_length_ = dims.back();
  for (size_t k = 0; k < inputs.size(); ++k) row_stride_[k] = strides[k].back();
  outer_dims_.assign(dims.begin(), dims.end() - 1);
  outer_strides_.resize(inputs.size());
  for (size_t k = 0; k < inputs.size(); ++k)
    outer_strides_[k].assign(strides[k].begin(), strides[k].end() - 1);
  for (int64_t d : outer_dims_) row_count_ *= d;
}

namespace {

template <size_t N>
void strided_rows(uint8_t* dst, const uint8_t* src, const Shape& dims,
                  const std::vector<int64_t>& strides, int64_t offset) {
  const size_t rank = dims.size();
  const int64_t len = dims.back();
  const int64_t inner = strides.back();
  int64_t rows = 1;
  for (size_t d = 0; d + 1 < rank; ++d) rows *= dims[d];
  std::vector<int64_t> index(rank - 1, 0);
  int64_t src_off = offset;
  for (int64_t r = 0; r < rows; ++r) {
    if (inner == 1) {
      std::memcpy(dst, src + src_off * static_cast<int64_t>(N), static_cast<size_t>(len) * N);
    } else {
      const uint8_t* s = src + src_off * static_cast<int64_t>(N);
      for (int64_t j = 0; j < len; ++j) std::memcpy(dst + j * static_cast<int64_t>(N), s + j * inner * static_cast<int64_t>(N), N);
    }
    dst += len * static_cast<int64_t>(N);
    for (size_t d = rank - 1; d-- > 0;) {
      src_off += strides[d];
      if (++index[d] < dims[d]) break;
      src_off -= strides[d] * dims[d];
      index[d] = 0;
    }
  }
}

}  // namespace

void strided_copy(void* dst, const void* src, size_t elem_size, const Shape& shape,
                  const std::vector<int64_t>& src_strides, int64_t src_offset) {
  if (shape_numel(shape) == 0) return;
  Shape dims = shape;
  std::vector<std::vector<int64_t>> strides{src_strides};
  coalesce(dims, strides);
  if (dims.empty()) {  // one element
    std::memcpy(dst, static_cast<const uint8_t*>(src) + src_offset * static_cast<int64_t>(elem_size), elem_size);
    return;
  }
  auto* d = static_cast<uint8_t*>(dst);
  const auto* s = static_cast<const uint8_t*>(src);
  switch (elem_size) {
    case 1: strided_rows<1>(d, s, dims, strides[0], src_offset); break;
    case 2: strided_rows<2>(d, s, dims, strides[0], src_offset); break;
    case 4: strided_rows<4>(d, s, dims, strides[0], src_offset); break;
    case 8: strided_rows<8>(d, s, dims, strides[0], src_offset); break;
    default: throw Error("strided copy of " + std::to_string(elem_size) + "-byte elements is not supported");
  }
}

int64_t normalize_axis(int64_t axis, int64_t rank) {
  if (axis < -rank || axis >= rank)
    throw Error("axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
  return axis < 0 ? axis + rank : axis;
}

}  // namespace tinyq::rt
