// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// Scalar reference integer GEMM (MatMulInteger, ConvInteger, QLinearMatMul, QLinearConv):
//     C[i][j] = sum_p (A[i][p] - za[i]) * (B[p][j] - zb[j])
// with 8-bit A and B, int32 zero points and int32 accumulation. Every product fits in int32
// (|a - za| <= 255, |b - zb| <= 255); the sum wraps modulo 2^32 if it overflows, which is the
// only overflow ONNX allows ("the accumulation may overflow if and only if in 32 bits").
// The name carries the types of A then B: u8 = uint8, s8 = int8.

#include <cstdint>

namespace tinyq::kernels {

/// Row-major operands with leading dimensions (elements between rows). A zero-point stride of 0
/// gives one zero point for the whole operand; 1 gives one per row of A (za[i]) or per column
/// of B (zb[j]). A null zero-point pointer means 0.
template <typename TA, typename TB>
struct QGemmArgs {
  int64_t m = 0, n = 0, k = 0;
  const TA* a = nullptr;
  int64_t lda = 0;
  const TB* b = nullptr;
  int64_t ldb = 0;
  int32_t* c = nullptr;
  int64_t ldc = 0;
  const int32_t* a_zero_points = nullptr;
  int64_t a_zp_stride = 0;
  const int32_t* b_zero_points = nullptr;
  int64_t b_zp_stride = 0;
};

void qgemm_u8u8_ref(const QGemmArgs<uint8_t, uint8_t>& args);
void qgemm_u8s8_ref(const QGemmArgs<uint8_t, int8_t>& args);
void qgemm_s8u8_ref(const QGemmArgs<int8_t, uint8_t>& args);
void qgemm_s8s8_ref(const QGemmArgs<int8_t, int8_t>& args);

/// The reference kernel for any pair of 8-bit types (overloads of the named ones above), for
/// callers that are themselves templated on the element types.
inline void qgemm_ref(const QGemmArgs<uint8_t, uint8_t>& args) { qgemm_u8u8_ref(args); }
inline void qgemm_ref(const QGemmArgs<uint8_t, int8_t>& args) { qgemm_u8s8_ref(args); }
inline void qgemm_ref(const QGemmArgs<int8_t, uint8_t>& args) { qgemm_s8u8_ref(args); }
inline void qgemm_ref(const QGemmArgs<int8_t, int8_t>& args) { qgemm_s8s8_ref(args); }

}  // namespace tinyq::kernels
