// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// Dropout at inference: the output is the input. The optional mask follows ONNX Runtime, which
// the spec leaves open before opset 12: from opset 12 it is all true; at opsets 10-11 all false
// (bool), and before 10 all zeros in the data's type (ONNX Runtime's identity kernel leaves it
// cleared). Training mode (opset 12's third input) would need ONNX Runtime's random generator
// to be matched, so it is refused.

#include <cstring>

#include "runtime/ops/op_support.h"

namespace tinyq::rt {

namespace {

bool training_requested(const Tensor& t) {
  if (t.dtype() != DType::Bool || t.numel() != 1) throw Error("training_mode must be a bool scalar");
  return t.data<bool>()[0];
}

}  // namespace

std::unique_ptr<Op> make_dropout(const OpContext& ctx) {
  const bool inputs_form = ctx.opset >= 12;
  if (inputs_form) {
    check_attrs(ctx, {"seed"});
    check_arity(ctx, 1, 3, 1, 2);
  } else {
    check_attrs(ctx, {"ratio"});
    check_arity(ctx, 1, 1, 1, 2);
  }
  if (const Tensor* t = ctx.constant(2)) {
    bool training = false;
    try {
      training = training_requested(*t);
    } catch (const Error& e) {
      ctx.fail(e.what());
    }
    if (training) ctx.fail("training mode is not supported (tinyq runs inference only)");
  }
  const bool bool_mask = ctx.opset >= 10;
  const bool mask_set = ctx.opset >= 12;
  return make_lambda_op([bool_mask, mask_set](const OpInputs& in, std::vector<Tensor>& out) {
    const Tensor& x = *in[0];
    if (in.size() > 2 && in[2] && training_requested(*in[2]))
      throw Error("training mode is not supported (tinyq runs inference only)");
    out[0] = x;
    if (out.size() < 2) return;
    // Tensors start zero-filled, which is the cleared mask in any type.
    Tensor mask(bool_mask ? DType::Bool : x.dtype(), x.shape());
    if (mask_set && mask.nbytes()) std::memset(mask.raw(), 1, mask.nbytes());
    out[1] = std::move(mask);
  });
}

}  // namespace tinyq::rt
