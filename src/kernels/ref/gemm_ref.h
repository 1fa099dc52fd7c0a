// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// Scalar reference matrix multiply (fp32), the building block of Gemm and MatMul.

#include <cstdint>

namespace tinyq::kernels {

/// dst[m][n] = alpha * sum_k A[m][k] * B[k][n] + beta * C[m][n], all matrices addressed through
/// element strides so transposes and broadcasts need no copies:
///   A[m][k] = a[m * a_row + k * a_col], B[k][n] = b[k * b_row + n * b_col],
///   C[m][n] = c[m * c_row + n * c_col] (a stride of 0 broadcasts; c may be nullptr),
///   dst[m][n] = dst[m * ldd + n].
struct GemmParams {
  int64_t M = 0, N = 0, K = 0;
  int64_t a_row = 0, a_col = 1;
  int64_t b_row = 0, b_col = 1;
  int64_t c_row = 0, c_col = 0;
  int64_t ldd = 0;
  float alpha = 1.0f;
  float beta = 0.0f;
};

void gemm_f32_ref(const GemmParams& p, const float* a, const float* b, const float* c, float* dst);

}  // namespace tinyq::kernels
