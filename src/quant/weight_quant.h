// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// Offline weight quantisation, shared by every quantisation mode. The scale and rounding maths
// are qmath's (src/common/qmath.h); this file only walks tensors and channels.

#include <string>
#include <vector>

#include "tinyq/tensor.h"

namespace tinyq::quant {

struct QuantizedWeight {
  Tensor values;              ///< int8, the weight's shape
  std::vector<float> scales;  ///< one per channel along the axis, or one for the whole tensor
};

/// Symmetric int8 quantisation as ONNX Runtime's quantiser does it for weights: range [-127, 127]
/// so -absmax and +absmax both map exactly, zero point 0, scale = 2 * absmax / 254 (qmath's
/// choose_qparams), values round-half-even(w / scale) saturated. Per tensor when axis < 0, else
/// one scale per index along `axis`. The weight must be float32.
QuantizedWeight quantize_weight_symmetric_int8(const Tensor& weights, int axis);

/// Why a float tensor cannot be quantised as a weight ("" when it can): not float32, empty, or
/// holding NaN or infinity (which would poison the scale).
std::string weight_problem(const Tensor& weights);

/// A 2-D tensor transposed ([K,N] -> [N,K]), any element type.
Tensor transpose_2d(const Tensor& t);

}  // namespace tinyq::quant
