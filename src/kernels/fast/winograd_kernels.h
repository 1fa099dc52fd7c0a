// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// Micro-kernels of the Winograd fp32 convolution (kernels/fast/conv_winograd.h is the driver):
// a portable `_ref` version (kernels/fast/winograd_ref.cpp, the fallback and the oracle) and
// SIMD versions in kernels/x86/winograd_f32_<isa>.cpp. All three work on one block of tiles:
// up to `ld` consecutive output tiles of one tile row of one image, "lanes = tiles".
//
// F(m x m, 3 x 3), m = 2 or 4, alpha = m + 2: output tile t of the block covers output rows
// [row0, row0 + m) and columns [col0 + m t, col0 + m t + m); it reads the alpha x alpha input
// window whose first row is rows[.] (see WinoInput) and first column in_col0 + m t. With the
// input window d, the transformed weights u = G g G^T (done once, in double, by the driver) and
// xi = alpha * i + j running over the alpha^2 transformed positions:
//     v = B^T d B                         (input transform, per channel and tile)
//     o[xi][k] = sum_c u[xi][k][c] v[xi][c]   (alpha^2 small GEMMs, lanes = tiles)
//     y = A^T o A                         (output transform, then the epilogue)
// B, G, A are the Lavin-Gray matrices for interpolation points {0, 1, -1} (m = 2) and
// {0, 1, -1, 2, -2} (m = 4), each with the point at infinity.

#include <cstdint>

#include "kernels/reduce.h"

namespace tinyq::kernels {

/// Input transform of a block: for every channel c and tile t < tiles (lanes up to ld are
/// written too, from zeros or from real data; the GEMM computes them, the output transform
/// never reads them).
struct WinoInput {
  int m = 2;                      ///< output tile size (2 or 4)
  const float* const* rows = nullptr;  ///< rows[c * alpha + r]: input row r of the window, null = padding
  int64_t in_col0 = 0;            ///< input column of tile 0's first tap (negative inside the left pad)
  int64_t width = 0;              ///< valid input columns [0, width); others read as 0
  int64_t tiles = 0;              ///< tiles in the block
  int64_t channels = 0;
  float* dst = nullptr;           ///< v[xi][c][t] at dst[xi * xi_stride + c * ld + t]
  int64_t ld = 0;                 ///< >= tiles; a multiple of 8 (AVX-512: whole or half vectors)
  int64_t xi_stride = 0;          ///< >= channels * ld; not a multiple of 4 KiB (L1 set conflicts)
};

/// The alpha^2 GEMMs of a block. u is packed per position xi in blocks of `mr` output channels
/// ([xi][m_block][c][mr], zero-padded rows); o gets round_up(m, mr) rows per position.
/// v[xi][c][t] at v[xi * v_stride + c * ld + t], o[xi][k][t] at o[xi * o_stride + k * ld + t].
struct WinoGemm {
  const float* v = nullptr;
  const float* u = nullptr;       ///< [xi][m_blocks][c][mr]
  float* o = nullptr;
  int64_t v_stride = 0, o_stride = 0;
  int64_t positions = 0;          ///< alpha^2
  int64_t channels = 0;           ///< c
  int64_t m_padded = 0;           ///< output channels rounded up to mr
  int64_t ld = 0;                 ///< tiles per row of v and o (a multiple of 8)
  int mr = 8;
};

/// Output transform of a block and the epilogue of ConvF32Epilogue, in its order and with
/// separate roundings: y = (A^T o A) + bias[k] + residual; clamp. Only outputs inside the
/// plane are written. Calibration's measurements are taken here, in registers, as the values
/// are stored (a later pass over the block cost about 10% of a calibration run): the finite
/// range of what goes to dst, and with a residual that of conv + bias before it (`pre`).
struct WinoOutput {
  int m = 2;
  const float* o = nullptr;       ///< o[xi][k][t] at o[xi * xi_stride + k * ld + t]
  int64_t ld = 0, xi_stride = 0;
  int64_t channels = 0;           ///< output channels k < channels are written
  int64_t tiles = 0;
  float* dst = nullptr;           ///< output channel k, position (h, w) at dst[k * plane + h * out_w + w]
  int64_t out_h = 0, out_w = 0, plane = 0;
  int64_t row0 = 0, col0 = 0;     ///< the block's first output row and column
  const float* bias = nullptr;    ///< per channel or null
  const float* residual = nullptr;  ///< same layout as dst, or null
  bool clamp = false;
  float lo = 0.0f, hi = 0.0f;
  /// With a residual, or null: conv + bias (before the residual and the clamp) is also stored
  /// here, in dst's layout.
  float* pre = nullptr;
  /// Or null: the finite range of the values stored to dst is folded in.
  FiniteRange* range = nullptr;
  /// With a residual, or null: the finite range of conv + bias is folded in.
  FiniteRange* pre_range = nullptr;
};

/// The end of a SIMD output kernel's block (both ISAs): the ranges its registers kept (a
/// StoredRange with all_finite() and merge_into(range, count)) go to a.range / a.pre_range;
/// when a value was NaN or infinite the block is measured exactly instead: dst's rows as
/// stored, conv + bias through remeasure_pre (the kernel again, storing nothing).
template <typename StoredRange, typename Remeasure>
void finish_stored_ranges(const WinoOutput& a, int64_t rows, int64_t limit, const StoredRange& range,
                          const StoredRange& pre_range, Remeasure remeasure_pre) {
  const int64_t count = a.channels * rows * (limit - a.col0);  // values stored
  if (a.range) {
    if (range.all_finite())
      range.merge_into(a.range, count);
    else
      a.range->fold(RowSet{a.dst + a.row0 * a.out_w + a.col0, a.channels, a.plane, rows, a.out_w, limit - a.col0});
  }
  if (a.pre_range) {
    if (pre_range.all_finite())
      pre_range.merge_into(a.pre_range, count);
    else
      remeasure_pre();
  }
}

using WinoInputFn = void (*)(const WinoInput&);
using WinoGemmFn = void (*)(const WinoGemm&);
using WinoOutputFn = void (*)(const WinoOutput&);

void wino_input_ref(const WinoInput& a);
void wino_gemm_ref(const WinoGemm& a);
void wino_output_ref(const WinoOutput& a);
void wino_input_avx2(const WinoInput& a);
void wino_gemm_avx2(const WinoGemm& a);
void wino_output_avx2(const WinoOutput& a);
void wino_input_avx512(const WinoInput& a);
void wino_gemm_avx512(const WinoGemm& a);
void wino_output_avx512(const WinoOutput& a);

}  // namespace tinyq::kernels
