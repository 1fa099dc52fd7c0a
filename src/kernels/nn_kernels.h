// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// Kernel tables of the heavy fp32 nn ops (convolution, transposed convolution, matrix product).
// Each table lists its candidates best-first; an op takes the first row whose `accepts` says
// yes for the problem (and, for SIMD rows, the CPU: cpu_features() honours TINYQ_MAX_ISA).
// The scalar `_ref` row sits last and accepts everything, so a choice always exists. Faster
// kernels plug in as new rows above it, in nn_kernels.cpp, without touching the op files.

#include <vector>

#include "kernels/ref/conv_ref.h"
#include "kernels/ref/gemm_ref.h"

namespace tinyq::kernels {

template <typename Params, typename Fn>
struct KernelRow {
  const char* name;
  bool (*accepts)(const Params&);
  Fn run;
};

using ConvF32Fn = void (*)(const ConvParams&, const float* src, const float* weights, const float* bias, float* dst);
using GemmF32Fn = void (*)(const GemmParams&, const float* a, const float* b, const float* c, float* dst);

using ConvF32Kernel = KernelRow<ConvParams, ConvF32Fn>;
using GemmF32Kernel = KernelRow<GemmParams, GemmF32Fn>;

const std::vector<ConvF32Kernel>& conv_f32_kernels();
const std::vector<ConvF32Kernel>& conv_transpose_f32_kernels();
const std::vector<GemmF32Kernel>& gemm_f32_kernels();

/// The first row of `table` that accepts `p` (the `_ref` row at the latest).
template <typename Params, typename Fn>
const KernelRow<Params, Fn>& pick_kernel(const std::vector<KernelRow<Params, Fn>>& table, const Params& p) {
  for (const auto& row : table)
    if (row.accepts(p)) return row;
  return table.back();
}

}  // namespace tinyq::kernels
