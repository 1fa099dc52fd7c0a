// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include "quant/weight_quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/qmath.h"
#include "tinyq/error.h"

namespace tinyq::quant {

QuantizedWeight quantize_weight_symmetric_int8(const Tensor& weights, int axis) {
  if (weights.dtype() != DType::F32) throw Error("weight", "expected float32, got " + std::string(dtype_name(weights.dtype())));
  const Shape& shape = weights.shape();
  if (axis >= static_cast<int>(shape.size())) throw Error("weight", "channel axis " + std::to_string(axis) + " is out of range for " + shape_to_string(shape));

  // The tensor seen as [outer, channels, inner]; per tensor is one channel over everything.
  int64_t outer = 1, channels = 1, inner = weights.numel();
  if (axis >= 0) {
    outer = 1;
    for (int i = 0; i < axis; ++i) outer *= shape[i];
    channels = shape[axis];
    inner = 1;
    for (size_t i = axis + 1; i < shape.size(); ++i) inner *= shape[i];
  }

  const float* src = weights.data<float>();
  QuantizedWeight out;
  out.values = Tensor(DType::I8, shape);
  int8_t* dst = out.values.data<int8_t>();
  out.scales.resize(static_cast<size_t>(channels));
  const qmath::QRange range = qmath::qrange_int8(/*symmetric=*/true);

  for (int64_t c = 0; c < channels; ++c) {
    float lo = 0.0f, hi = 0.0f;
    for (int64_t o = 0; o < outer; ++o) {
      const float* p = src + (o * channels + c) * inner;
      for (int64_t i = 0; i < inner; ++i) {
        lo = std::min(lo, p[i]);
        hi = std::max(hi, p[i]);
      }
    }
    const qmath::QParams qp = qmath::choose_qparams(lo, hi, range, /*symmetric=*/true);
    out.scales[static_cast<size_t>(c)] = qp.scale;
    for (int64_t o = 0; o < outer; ++o) {
      const int64_t base = (o * channels + c) * inner;
      for (int64_t i = 0; i < inner; ++i)
        dst[base + i] = static_cast<int8_t>(qmath::quantize(src[base + i], qp.scale, qp.zero_point, range.qmin, range.qmax));
    }
  }
  return out;
}

std::string weight_problem(const Tensor& weights) {
  if (weights.dtype() != DType::F32) return std::string("weight is ") + dtype_name(weights.dtype()) + ", not float";
  if (weights.numel() == 0) return "weight is empty";
  const float* p = weights.data<float>();
  for (int64_t i = 0; i < weights.numel(); ++i)
    if (!std::isfinite(p[i])) return "weight holds NaN or infinity";
  return "";
}

Tensor transpose_2d(const Tensor& t) {
  if (t.rank() != 2) throw Error("weight", "expected a 2-D tensor, got " + shape_to_string(t.shape()));
  const int64_t rows = t.dim(0), cols = t.dim(1);
  Tensor out(t.dtype(), {cols, rows});
  const size_t es = dtype_size(t.dtype());
  const auto* src = static_cast<const uint8_t*>(t.raw());
  auto* dst = static_cast<uint8_t*>(out.raw());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      std::memcpy(dst + (c * rows + r) * es, src + (r * cols + c) * es, es);
  return out;
}

}  // namespace tinyq::quant
