// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// Kernel selection for the op files and the fused ops: each function walks its family's
// best-first candidate list once (kernels/dispatch.h: CPU features after TINYQ_MAX_ISA, and
// the problem), packs the weights for the winner and returns it. With `allow_ref` false a
// choice of the reference level returns nullptr, so an op file keeps its own scalar path
// (kernels/ref), which stays the fallback and the oracle; fused ops pass true and get the
// portable version of the fast kernels instead. TINYQ_ONEDNN=0 / 1 turns the oneDNN candidates
// off / on everywhere they apply (default: where bench measured them faster).

#include <memory>
#include <string>
#include <vector>

#include "kernels/fast/conv_fast.h"
#include "tinyq/tensor.h"

namespace tinyq::kernels {

/// Geometry fields a convolution's weights and attributes fix (channels, group, kernel, and
/// strides and dilations when given); spatial sizes are left for the input. w_shape is
/// [M, C / group, kernel...].
ConvParams weight_geometry(const std::vector<int64_t>& w_shape, int64_t group,
                           const std::vector<int64_t>& strides = {}, const std::vector<int64_t>& dilations = {});

/// `has_residual`: the op adds a residual in the epilogue (the oneDNN adapter declines those).
std::shared_ptr<const ConvF32Kernel> select_conv_f32(const ConvParams& wg, const float* weights, bool has_residual,
                                                     bool allow_ref);
/// `requant`: the op requantises to 8 bits (QLinearConv) rather than producing int32 or fp32.
std::shared_ptr<const QConvKernel> select_qconv(const ConvParams& wg, const QWeights& w, bool allow_ref,
                                                bool requant = false);
std::shared_ptr<const QGemmFast> select_qgemm(int64_t k, int64_t n, const QWeights& b, bool b_transposed,
                                              bool allow_ref);
std::shared_ptr<const GemmF32Fast> select_gemm_f32(int64_t k, int64_t n, const float* b, bool b_transposed,
                                                   bool allow_ref);

/// For op files (ConvInteger, QLinearConv, MatMulInteger): the fast integer kernel for
/// constant 8-bit weights and weight zero points (null: 0; one value, or one per output
/// channel / column), or nullptr when they are not constant (w null), the kernels decline them,
/// or dispatch picks the reference level. `w` is [M, C/group, kernel...] for a convolution and
/// [K, N] for a GEMM.
std::shared_ptr<const QConvKernel> prepare_qconv(const Tensor* w, const Tensor* w_zero_point, int64_t group,
                                                 bool requant = false);
std::shared_ptr<const QGemmFast> prepare_qgemm(const Tensor* b, const Tensor* b_zero_point);

/// The ISA the element-wise helpers (range scan, quantisation) use.
Isa elementwise_isa();

}  // namespace tinyq::kernels
