// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include "runtime/op.h"

namespace tinyq::rt {

void Op::run_measured(const OpInputs& inputs, std::vector<Tensor>& outputs, const RunRanges& ranges) {
  run(inputs, outputs);
  if (!ranges.out) return;
  for (size_t k = 0; k < outputs.size(); ++k)
    if (outputs[k].dtype() == DType::F32) ranges.out[k].fold(outputs[k].data<float>(), outputs[k].numel());
}

}  // namespace tinyq::rt
