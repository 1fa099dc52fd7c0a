// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// Kernel selection for the op files and the fused ops: each function walks its family's
// best-first candidate list once (kernels/dispatch.h: CPU features after TINYQ_MAX_ISA, and
// the problem), packs the weights for the winner and returns it. With `allow_ref` false a
// choice of the reference level returns nullptr, so an op file keeps its own scalar path
// (kernels/ref), which stays the fallback and the oracle; fused ops pass true and get the
// portable version of the fast kernels instead.

#include <memory>
#include <string>
#include <vector>

#include "kernels/fast/conv_fast.h"

namespace tinyq::kernels {

/// Geometry fields a convolution's weights fix (channels, group, kernel); spatial sizes are
/// left for the input. w_shape is [M, C / group, kernel...].
ConvParams weight_geometry(const std::vector<int64_t>& w_shape, int64_t group);

std::shared_ptr<const ConvF32Fast> select_conv_f32(const ConvParams& wg, const float* weights, bool allow_ref);
std::shared_ptr<const QConvFast> select_qconv(const ConvParams& wg, const QWeights& w, bool allow_ref);
std::shared_ptr<const QGemmFast> select_qgemm(int64_t k, int64_t n, const QWeights& b, bool b_transposed,
                                              bool allow_ref);
std::shared_ptr<const GemmF32Fast> select_gemm_f32(int64_t k, int64_t n, const float* b, bool b_transposed,
                                                   bool allow_ref);

/// The ISA the element-wise helpers (range scan, quantisation) use.
Isa elementwise_isa();

}  // namespace tinyq::kernels
