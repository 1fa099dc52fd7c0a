// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// Broadcasting binary arithmetic, shared by the binary ops (binary.cpp) and the variadic ones
// (Min, Max, Sum, Mean in variadic.cpp).

#include "kernels/ref/elementwise_ref.h"
#include "tinyq/tensor.h"

namespace tinyq::rt {

/// op(a, b) under numpy broadcasting; a and b must have the same element type. Throws
/// tinyq::Error for mismatched types or shapes, a type the op is not defined for, and integer
/// division by zero.
Tensor binary_broadcast(kernels::BinaryOp op, const Tensor& a, const Tensor& b);

}  // namespace tinyq::rt
