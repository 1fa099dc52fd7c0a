// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// Reductions over float tensors that calibration runs on every activation of every sample
// (src/quant/calibrate_collect.cpp): fast enough that observing a tensor costs far less than
// computing it.

#include <cstdint>
#include <limits>

namespace tinyq::kernels {

/// Folds the finite values of src[0, n) into the running [*lo, *hi] (start from +inf / -inf)
/// and returns how many values were NaN or infinite. The ISA version is chosen once (AVX-512
/// where usable, see dispatch.h), else the scalar reference.
int64_t finite_minmax_f32(const float* src, int64_t n, float* lo, float* hi);

/// A 2-D set of equal rows: row (i, j) of `len` values at src + i * outer_stride + j * stride,
/// for i < outer, j < rows (an output block of a convolution: channels x rows of a plane).
struct RowSet {
  const float* src = nullptr;
  int64_t outer = 1, outer_stride = 0, rows = 1, stride = 0, len = 0;
};

/// finite_minmax_f32 over every row of the set, with one running state for the whole set
/// (short rows each paid a reduction and a call of their own).
int64_t finite_minmax_rows_f32(const RowSet& set, float* lo, float* hi);

/// A running finite range: what finite_minmax_f32 folds, with its count of NaN / infinite values.
/// Kernels that write a tensor block by block (ConvF32Epilogue::range) fold each block while it
/// is still in cache, or measure values as they store them and merge, so calibration's observer
/// needs no pass over the tensor afterwards.
struct FiniteRange {
  float lo = std::numeric_limits<float>::infinity();
  float hi = -std::numeric_limits<float>::infinity();
  int64_t count = 0;  ///< values folded in
  int64_t nonfinite = 0;
  void fold(const float* src, int64_t n) {
    nonfinite += finite_minmax_f32(src, n, &lo, &hi);
    count += n;
  }
  void fold(const RowSet& set) {
    nonfinite += finite_minmax_rows_f32(set, &lo, &hi);
    count += set.outer * set.rows * set.len;
  }
  void add(float x) {  // as finite_minmax_f32_ref
    ++count;
    if (!(x - x == 0.0f)) {  // NaN or infinite
      ++nonfinite;
      return;
    }
    lo = x < lo ? x : lo;
    hi = x > hi ? x : hi;
  }
  void merge(const FiniteRange& o) {
    lo = o.lo < lo ? o.lo : lo;
    hi = o.hi > hi ? o.hi : hi;
    count += o.count;
    nonfinite += o.nonfinite;
  }
};

int64_t finite_minmax_f32_ref(const float* src, int64_t n, float* lo, float* hi);
int64_t finite_minmax_f32_avx512(const float* src, int64_t n, float* lo, float* hi);
int64_t finite_minmax_rows_f32_ref(const RowSet& set, float* lo, float* hi);
int64_t finite_minmax_rows_f32_avx512(const RowSet& set, float* lo, float* hi);

}  // namespace tinyq::kernels
