// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include "runtime/op.h"

namespace tinyq::rt {

void Op::run_measured(const OpInputs& inputs, std::vector<Tensor>& outputs, kernels::FiniteRange* range) {
  run(inputs, outputs);
  const Tensor& y = outputs.front();
  if (y.dtype() == DType::F32) range->fold(y.data<float>(), y.numel());
}

}  // namespace tinyq::rt
