// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// Scalar reference normalisations (fp32). Statistics are accumulated in double: these kernels are
// the oracle, so they aim at the exact answer rather than at one library's rounding.

#include <cstdint>

namespace tinyq::kernels {

/// Inference batch normalisation over [batch, channels, spatial]:
/// dst = (src - mean[c]) / sqrt(var[c] + epsilon) * scale[c] + bias[c].
void batch_norm_f32_ref(int64_t batch, int64_t channels, int64_t spatial, const float* src, const float* scale,
                        const float* bias, const float* mean, const float* var, float epsilon, float* dst);

/// Layer normalisation of `rows` independent rows of `cols` elements:
/// dst = (x - mean) / sqrt(var + epsilon) * scale + bias, var the biased variance. scale and bias
/// hold `cols` values (bias may be nullptr); mean_out / inv_std_out (per row) may be nullptr.
void layer_norm_f32_ref(int64_t rows, int64_t cols, const float* src, const float* scale, const float* bias,
                        float epsilon, float* dst, float* mean_out, float* inv_std_out);

/// Instance normalisation over [batch, channels, spatial]: each (n, c) plane normalised by its own
/// mean and biased variance, then scaled and shifted by scale[c], bias[c].
void instance_norm_f32_ref(int64_t batch, int64_t channels, int64_t spatial, const float* src, const float* scale,
                           const float* bias, float epsilon, float* dst);

}  // namespace tinyq::kernels
