// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include "kernels/ref/qgemm_ref.h"

namespace tinyq::kernels {

namespace {

// Row by row: C's row i starts at zero, then for each p the scalar (A[i][p] - za[i]) times B's
// row p (less its zero points) is added along j, so the innermost loop is contiguous in B and C
// and the compiler can vectorise it. Both differences fit int16 (|v - z| <= 255), and are held
// as int16 so the product is a 16 x 16 -> 32-bit widening multiply, which baseline x86-64 (SSE2)
// vectorises well; a 32-bit multiply it would emulate. Sums go through uint32 so that a wrap is
// defined behaviour.
template <typename TA, typename TB>
void qgemm_impl(const QGemmArgs<TA, TB>& g) {
  for (int64_t i = 0; i < g.m; ++i) {
    uint32_t* c = reinterpret_cast<uint32_t*>(g.c + i * g.ldc);
    for (int64_t j = 0; j < g.n; ++j) c[j] = 0;
    const int32_t za = g.a_zero_points ? g.a_zero_points[i * g.a_zp_stride] : 0;
    const TA* a = g.a + i * g.lda;
    for (int64_t p = 0; p < g.k; ++p) {
      const int16_t av = static_cast<int16_t>(static_cast<int32_t>(a[p]) - za);
      if (av == 0) continue;
      const TB* b = g.b + p * g.ldb;
      if (g.b_zp_stride == 0 || !g.b_zero_points) {
        const int16_t zb = static_cast<int16_t>(g.b_zero_points ? g.b_zero_points[0] : 0);
        for (int64_t j = 0; j < g.n; ++j) {
          const int16_t bv = static_cast<int16_t>(static_cast<int16_t>(b[j]) - zb);
          c[j] += static_cast<uint32_t>(static_cast<int32_t>(av) * static_cast<int32_t>(bv));
        }
      } else {
        const int32_t* zb = g.b_zero_points;
        for (int64_t j = 0; j < g.n; ++j) {
          const int16_t bv = static_cast<int16_t>(static_cast<int32_t>(b[j]) - zb[j]);
          c[j] += static_cast<uint32_t>(static_cast<int32_t>(av) * static_cast<int32_t>(bv));
        }
      }
    }
  }
}

}  // namespace

void qgemm_u8u8_ref(const QGemmArgs<uint8_t, uint8_t>& args) { qgemm_impl(args); }
void qgemm_u8s8_ref(const QGemmArgs<uint8_t, int8_t>& args) { qgemm_impl(args); }
void qgemm_s8u8_ref(const QGemmArgs<int8_t, uint8_t>& args) { qgemm_impl(args); }
void qgemm_s8s8_ref(const QGemmArgs<int8_t, int8_t>& args) { qgemm_impl(args); }

}  // namespace tinyq::kernels
