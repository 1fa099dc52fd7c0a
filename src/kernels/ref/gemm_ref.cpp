// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include "kernels/ref/gemm_ref.h"

#include <algorithm>

namespace tinyq::kernels {

// Row by row: each dst row accumulates alpha-free sums over k in order (k outer, n inner, so the
// inner loop walks a row of B), then applies alpha and adds beta * C once. beta * C is skipped
// when beta is 0 so a NaN in an unused C cannot leak in (ONNX: C is ignored then).
void gemm_f32_ref(const GemmParams& p, const float* a, const float* b, const float* c, float* dst) {
  for (int64_t m = 0; m < p.M; ++m) {
    float* row = dst + m * p.ldd;
    std::fill(row, row + p.N, 0.0f);
    for (int64_t k = 0; k < p.K; ++k) {
      const float av = a[m * p.a_row + k * p.a_col];
      const float* brow = b + k * p.b_row;
      for (int64_t n = 0; n < p.N; ++n) row[n] += av * brow[n * p.b_col];
    }
    const bool add_c = c != nullptr && p.beta != 0.0f;
    for (int64_t n = 0; n < p.N; ++n) {
      float v = p.alpha * row[n];
      if (add_c) v += p.beta * c[m * p.c_row + n * p.c_col];
      row[n] = v;
    }
  }
}

}  // namespace tinyq::kernels
