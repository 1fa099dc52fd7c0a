// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include "runtime/op.h"

namespace tinyq::rt {

// Identity forwards its input buffer: tensors are shared, never written in place.
std::unique_ptr<Op> make_identity(const OpContext& ctx) {
  if (ctx.node.inputs.size() != 1 || ctx.node.outputs.size() != 1) ctx.fail("takes one input and one output");
  return make_lambda_op([](const OpInputs& in, std::vector<Tensor>& out) { out[0] = *in[0]; });
}

}  // namespace tinyq::rt
