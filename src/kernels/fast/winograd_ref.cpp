// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// Portable Winograd micro-kernels (see winograd_kernels.h): the fallback under
// TINYQ_MAX_ISA=ref and the oracle of the SIMD versions. Plain matrix products with the
// integer matrices B^T and A^T, in float; lanes past `tiles` are written as zeros.

#include <algorithm>

#include "kernels/fast/winograd_kernels.h"

namespace tinyq::kernels {

namespace {

constexpr int kMaxAlpha = 6;

// B^T (alpha x alpha) and A^T (m x alpha) for m = 2 and m = 4 (interpolation points 0, 1, -1
// and 0, 1, -1, 2, -2, plus infinity). Row-major, alpha columns.
constexpr float kBt2[4 * 4] = {1, 0, -1, 0,  //
                               0, 1, 1, 0,   //
                               0, -1, 1, 0,  //
                               0, 1, 0, -1};
constexpr float kAt2[2 * 4] = {1, 1, 1, 0,  //
                               0, 1, -1, -1};
constexpr float kBt4[6 * 6] = {4, 0, -5, 0, 1, 0,    //
                               0, -4, -4, 1, 1, 0,   //
                               0, 4, -4, -1, 1, 0,   //
                               0, -2, -1, 2, 1, 0,   //
                               0, 2, -1, -2, 1, 0,   //
                               0, 4, 0, -5, 0, 1};
constexpr float kAt4[4 * 6] = {1, 1, 1, 1, 1, 0,   //
                               0, 1, -1, 2, -2, 0,  //
                               0, 1, 1, 4, 4, 0,    //
                               0, 1, -1, 8, -8, 1};

}  // namespace

void wino_input_ref(const WinoInput& a) {
  const int m = a.m, alpha = m + 2;
  const float* bt = m == 2 ? kBt2 : kBt4;
  float d[kMaxAlpha][kMaxAlpha], s[kMaxAlpha][kMaxAlpha];
  for (int64_t c = 0; c < a.channels; ++c) {
    for (int64_t t = 0; t < a.ld; ++t) {
      for (int r = 0; r < alpha; ++r) {
        const float* row = a.rows[c * alpha + r];
        for (int j = 0; j < alpha; ++j) {
          const int64_t col = a.in_col0 + m * t + j;
          d[r][j] = row && t < a.tiles && col >= 0 && col < a.width ? row[col] : 0.0f;
        }
      }
      // s = B^T d, then v = s B.
      for (int i = 0; i < alpha; ++i)
        for (int j = 0; j < alpha; ++j) {
          float acc = 0.0f;
          for (int r = 0; r < alpha; ++r) acc += bt[i * alpha + r] * d[r][j];
          s[i][j] = acc;
        }
      for (int i = 0; i < alpha; ++i)
        for (int j = 0; j < alpha; ++j) {
          float acc = 0.0f;
          for (int q = 0; q < alpha; ++q) acc += s[i][q] * bt[j * alpha + q];
          a.dst[(i * alpha + j) * a.xi_stride + c * a.ld + t] = acc;
        }
    }
  }
}

void wino_gemm_ref(const WinoGemm& a) {
  const int64_t blocks = a.m_padded / a.mr;
  for (int64_t xi = 0; xi < a.positions; ++xi) {
    const float* v = a.v + xi * a.v_stride;
    for (int64_t b = 0; b < blocks; ++b) {
      const float* u = a.u + (xi * blocks + b) * a.channels * a.mr;
      for (int i = 0; i < a.mr; ++i) {
        float* o = a.o + xi * a.o_stride + (b * a.mr + i) * a.ld;
        for (int64_t t = 0; t < a.ld; ++t) {
          float acc = 0.0f;
          for (int64_t c = 0; c < a.channels; ++c) acc += u[c * a.mr + i] * v[c * a.ld + t];
          o[t] = acc;
        }
      }
    }
  }
}

void wino_output_ref(const WinoOutput& a) {
  const int m = a.m, alpha = m + 2;
  const float* at = m == 2 ? kAt2 : kAt4;
  float o[kMaxAlpha][kMaxAlpha], s[kMaxAlpha][kMaxAlpha];
  for (int64_t k = 0; k < a.channels; ++k) {
    for (int64_t t = 0; t < a.tiles; ++t) {
      for (int i = 0; i < alpha; ++i)
        for (int j = 0; j < alpha; ++j) o[i][j] = a.o[(i * alpha + j) * a.xi_stride + k * a.ld + t];
      // s = A^T o (m x alpha), then y = s A (m x m).
      for (int i = 0; i < m; ++i)
        for (int j = 0; j < alpha; ++j) {
          float acc = 0.0f;
          for (int r = 0; r < alpha; ++r) acc += at[i * alpha + r] * o[r][j];
          s[i][j] = acc;
        }
      for (int i = 0; i < m; ++i) {
        const int64_t h = a.row0 + i;
        if (h >= a.out_h) break;
        for (int j = 0; j < m; ++j) {
          const int64_t w = a.col0 + m * t + j;
          if (w >= a.out_w) break;
          float y = 0.0f;
          for (int q = 0; q < alpha; ++q) y += s[i][q] * at[j * alpha + q];
          const int64_t idx = k * a.plane + h * a.out_w + w;
          if (a.bias) y = y + a.bias[k];
          if (a.pre) a.pre[idx] = y;
          if (a.pre_range) a.pre_range->add(y);
          if (a.residual) y = y + a.residual[idx];
          if (a.clamp) {  // as clip_ref: NaN passes
            y = y < a.lo ? a.lo : y;
            y = y > a.hi ? a.hi : y;
          }
          a.dst[idx] = y;
          if (a.range) a.range->add(y);
        }
      }
    }
  }
}

}  // namespace tinyq::kernels
