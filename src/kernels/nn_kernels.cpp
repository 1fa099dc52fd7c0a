// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include "kernels/nn_kernels.h"

namespace tinyq::kernels {

namespace {

template <typename Params>
bool accepts_any(const Params&) {
  return true;
}

}  // namespace

// Best first; the reference rows stay last.
const std::vector<ConvF32Kernel>& conv_f32_kernels() {
  static const std::vector<ConvF32Kernel> table = {
      {"conv_f32_ref", accepts_any<ConvParams>, conv_f32_ref},
  };
  return table;
}

const std::vector<ConvF32Kernel>& conv_transpose_f32_kernels() {
  static const std::vector<ConvF32Kernel> table = {
      {"conv_transpose_f32_ref", accepts_any<ConvParams>, conv_transpose_f32_ref},
  };
  return table;
}

const std::vector<GemmF32Kernel>& gemm_f32_kernels() {
  static const std::vector<GemmF32Kernel> table = {
      {"gemm_f32_ref", accepts_any<GemmParams>, gemm_f32_ref},
  };
  return table;
}

}  // namespace tinyq::kernels
