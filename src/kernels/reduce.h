// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// Reductions over float tensors that calibration runs on every activation of every sample
// (src/quant/calibrate_collect.cpp): fast enough that observing a tensor costs far less than
// computing it.

#include <cstdint>

namespace tinyq::kernels {

/// Folds the finite values of src[0, n) into the running [*lo, *hi] (start from +inf / -inf)
/// and returns how many values were NaN or infinite. The ISA version is chosen once (AVX-512
/// where usable, see dispatch.h), else the scalar reference.
int64_t finite_minmax_f32(const float* src, int64_t n, float* lo, float* hi);

int64_t finite_minmax_f32_ref(const float* src, int64_t n, float* lo, float* hi);
int64_t finite_minmax_f32_avx512(const float* src, int64_t n, float* lo, float* hi);

}  // namespace tinyq::kernels
