// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// Gather and GatherND. Both copy whole contiguous blocks of the data tensor selected by
// indices; negative indices count from the end; an index out of range is an error (ONNX
// Runtime refuses it too), never a read outside the buffer.

#include <cstring>

#include "runtime/broadcast.h"
#include "runtime/ops/op_support.h"

namespace tinyq::rt {

namespace {

int64_t checked_index(int64_t i, int64_t dim) {
  if (i < -dim || i >= dim)
    throw Error("index " + std::to_string(i) + " is out of range for a dimension of size " + std::to_string(dim));
  return i < 0 ? i + dim : i;
}

}  // namespace

// Gather: out = data[:axis] + indices.shape + data[axis+1:]; for each outer index and each
// index value, one block of prod(data[axis+1:]) elements.
std::unique_ptr<Op> make_gather(const OpContext& ctx) {
  check_attrs(ctx, {"axis"});
  check_arity(ctx, 2, 2, 1, 1);
  const int64_t axis = ctx.node.attr_int("axis", 0);
  return make_lambda_op([axis](const OpInputs& in, std::vector<Tensor>& out) {
    const Tensor& data = *in[0];
    const Tensor& indices = *in[1];
    const int64_t rank = static_cast<int64_t>(data.rank());
    if (rank == 0) throw Error("Gather needs data of rank 1 or more");
    const size_t a = static_cast<size_t>(normalize_axis(axis, rank));
    const std::vector<int64_t> idx = int_values(indices, "indices");
    Shape shape(data.shape().begin(), data.shape().begin() + static_cast<int64_t>(a));
    shape.insert(shape.end(), indices.shape().begin(), indices.shape().end());
    shape.insert(shape.end(), data.shape().begin() + static_cast<int64_t>(a) + 1, data.shape().end());
    Tensor y(data.dtype(), shape);
    const int64_t dim = data.dim(a);
    int64_t outer = 1, inner = 1;
    for (size_t d = 0; d < a; ++d) outer *= data.dim(d);
    for (size_t d = a + 1; d < data.rank(); ++d) inner *= data.dim(d);
    const size_t block = static_cast<size_t>(inner) * dtype_size(data.dtype());
    std::vector<int64_t> rows(idx.size());
    for (size_t j = 0; j < idx.size(); ++j) rows[j] = checked_index(idx[j], dim);
    const auto* src = static_cast<const uint8_t*>(data.raw());
    auto* dst = static_cast<uint8_t*>(y.raw());
    if (block == 0) {
      out[0] = std::move(y);
      return;
    }
    for (int64_t o = 0; o < outer; ++o)
      for (size_t j = 0; j < rows.size(); ++j, dst += block)
        std::memcpy(dst, src + static_cast<size_t>(o * dim + rows[j]) * block, block);
    out[0] = std::move(y);
  });
}

// GatherND with batch_dims b: data [B..., D...], indices [B..., I..., k]; each k-tuple picks a
// block data[batch][i0..ik-1] of prod(D[k:]) elements. out = B + I + D[k:].
std::unique_ptr<Op> make_gather_nd(const OpContext& ctx) {
  if (ctx.opset >= 12) check_attrs(ctx, {"batch_dims"});
  else check_attrs(ctx, {});
  check_arity(ctx, 2, 2, 1, 1);
  const int64_t batch_dims = ctx.node.attr_int("batch_dims", 0);
  if (batch_dims < 0) ctx.fail("batch_dims must not be negative, is " + std::to_string(batch_dims));
  return make_lambda_op([batch_dims](const OpInputs& in, std::vector<Tensor>& out) {
    const Tensor& data = *in[0];
    const Tensor& indices = *in[1];
    const size_t r = data.rank(), q = indices.rank();
    const size_t b = static_cast<size_t>(batch_dims);
    if (r < 1 || q < 1) throw Error("GatherND needs data and indices of rank 1 or more");
    if (b >= std::min(r, q))
      throw Error("batch_dims " + std::to_string(b) + " must be below both ranks (" + std::to_string(r) + ", " +
                  std::to_string(q) + ")");
    for (size_t d = 0; d < b; ++d)
      if (data.dim(d) != indices.dim(d))
        throw Error("batch dimensions of data " + shape_to_string(data.shape()) + " and indices " +
                    shape_to_string(indices.shape()) + " differ");
    const size_t k = static_cast<size_t>(indices.dim(q - 1));
    if (k < 1 || k > r - b)
      throw Error("indices' last dimension is " + std::to_string(k) + "; it must be between 1 and " +
                  std::to_string(r - b));
    const std::vector<int64_t> idx = int_values(indices, "indices");
    Shape shape(indices.shape().begin(), indices.shape().end() - 1);
    shape.insert(shape.end(), data.shape().begin() + static_cast<int64_t>(b + k), data.shape().end());
    Tensor y(data.dtype(), shape);
    int64_t batches = 1, tuples = 1, block = 1, batch_size = 1;
    for (size_t d = 0; d < b; ++d) batches *= data.dim(d);
    for (size_t d = b; d + 1 < q; ++d) tuples *= indices.dim(d);
    for (size_t d = b + k; d < r; ++d) block *= data.dim(d);
    for (size_t d = b; d < r; ++d) batch_size *= data.dim(d);
    const std::vector<int64_t> strides = contiguous_strides(data.shape());
    const size_t esize = dtype_size(data.dtype());
    const auto* src = static_cast<const uint8_t*>(data.raw());
    auto* dst = static_cast<uint8_t*>(y.raw());
    const size_t block_bytes = static_cast<size_t>(block) * esize;
    for (int64_t bi = 0; bi < batches; ++bi) {
      for (int64_t t = 0; t < tuples; ++t) {
        const int64_t* tuple = idx.data() + (bi * tuples + t) * static_cast<int64_t>(k);
        int64_t offset = bi * batch_size;
        for (size_t j = 0; j < k; ++j) offset += checked_index(tuple[j], data.dim(b + j)) * strides[b + j];
        if (block_bytes) std::memcpy(dst, src + static_cast<size_t>(offset) * esize, block_bytes);
        dst += block_bytes;
      }
    }
    out[0] = std::move(y);
  });
}

}  // namespace tinyq::rt
