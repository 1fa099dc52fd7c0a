// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// ScatterND: out = copy of data; then, in order, each k-tuple of indices selects the block
// out[i0..ik-1] (prod(data.shape[k:]) elements), which takes the matching block of updates
// (reduction "none") or combines with it (add, mul from opset 16; max, min from 18).
// updates.shape must be indices.shape[:-1] + data.shape[k:].

#include <cstring>
#include <type_traits>

#include "runtime/broadcast.h"
#include "runtime/ops/op_support.h"

namespace tinyq::rt {

namespace {

enum class Reduction { None, Add, Mul, Max, Min };

template <typename T>
void combine(Reduction red, T* dst, const T* src, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    switch (red) {
      // Integers wrap (computed in uint64, where overflow is defined).
      case Reduction::Add:
        if constexpr (std::is_integral<T>::value) dst[i] = static_cast<T>(static_cast<uint64_t>(dst[i]) + static_cast<uint64_t>(src[i]));
        else dst[i] = dst[i] + src[i];
        break;
      case Reduction::Mul:
        if constexpr (std::is_integral<T>::value) dst[i] = static_cast<T>(static_cast<uint64_t>(dst[i]) * static_cast<uint64_t>(src[i]));
        else dst[i] = dst[i] * src[i];
        break;
      case Reduction::Max: dst[i] = src[i] > dst[i] ? src[i] : dst[i]; break;
      case Reduction::Min: dst[i] = src[i] < dst[i] ? src[i] : dst[i]; break;
      case Reduction::None: dst[i] = src[i]; break;
    }
  }
}

}  // namespace

std::unique_ptr<Op> make_scatter_nd(const OpContext& ctx) {
  Reduction red = Reduction::None;
  if (ctx.opset >= 16) {
    check_attrs(ctx, {"reduction"});
    const std::string name = ctx.node.attr_string("reduction", "none");
    if (name == "add") red = Reduction::Add;
    else if (name == "mul") red = Reduction::Mul;
    else if (name == "max" && ctx.opset >= 18) red = Reduction::Max;
    else if (name == "min" && ctx.opset >= 18) red = Reduction::Min;
    else if (name != "none")
      ctx.fail("attribute 'reduction' is '" + name + "'; expected none, add, mul" +
               (ctx.opset >= 18 ? ", max or min" : " (max and min need opset 18)"));
  } else {
    check_attrs(ctx, {});
  }
  check_arity(ctx, 3, 3, 1, 1);
  return make_lambda_op([red](const OpInputs& in, std::vector<Tensor>& out) {
    const Tensor& data = *in[0];
    const Tensor& indices = *in[1];
    const Tensor& updates = *in[2];
    if (updates.dtype() != data.dtype())
      throw Error(std::string("updates are ") + dtype_name(updates.dtype()) + ", data " + dtype_name(data.dtype()));
    const size_t r = data.rank(), q = indices.rank();
    if (r < 1 || q < 1) throw Error("ScatterND needs data and indices of rank 1 or more");
    const size_t k = static_cast<size_t>(indices.dim(q - 1));
    if (k > r) throw Error("indices' last dimension " + std::to_string(k) + " exceeds the data's rank " + std::to_string(r));
    Shape want(indices.shape().begin(), indices.shape().end() - 1);
    want.insert(want.end(), data.shape().begin() + static_cast<int64_t>(k), data.shape().end());
    if (updates.shape() != want)
      throw Error("updates have shape " + shape_to_string(updates.shape()) + ", expected " + shape_to_string(want));
    const std::vector<int64_t> idx = int_values(indices, "indices");
    Tensor y = data.clone();
    int64_t tuples = 1, block = 1;
    for (size_t d = 0; d + 1 < q; ++d) tuples *= indices.dim(d);
    for (size_t d = k; d < r; ++d) block *= data.dim(d);
    const std::vector<int64_t> strides = contiguous_strides(data.shape());
    const size_t esize = dtype_size(data.dtype());
    auto* dst = static_cast<uint8_t*>(y.raw());
    const auto* src = static_cast<const uint8_t*>(updates.raw());
    for (int64_t t = 0; t < tuples; ++t) {
      int64_t offset = 0;
      for (size_t j = 0; j < k; ++j) {
        int64_t i = idx[static_cast<size_t>(t) * k + j];
        const int64_t dim = data.dim(j);
        if (i < -dim || i >= dim)
          throw Error("index " + std::to_string(i) + " is out of range for a dimension of size " + std::to_string(dim));
        offset += (i < 0 ? i + dim : i) * strides[j];
      }
      uint8_t* d = dst + static_cast<size_t>(offset) * esize;
      const uint8_t* s = src + static_cast<size_t>(t * block) * esize;
      if (red == Reduction::None) {
        if (block) std::memcpy(d, s, static_cast<size_t>(block) * esize);
        continue;
      }
      dispatch_types<TINYQ_ARITH_TYPES>(data.dtype(), [&](auto tag) {
        using T = decltype(tag);
        combine<T>(red, reinterpret_cast<T*>(d), reinterpret_cast<const T*>(s), block);
      });
    }
    out[0] = std::move(y);
  });
}

}  // namespace tinyq::rt
