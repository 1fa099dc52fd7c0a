// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// BatchNormalization in inference mode (opsets 7..18): X [N, C, spatial...] normalised with the
// stored statistics input_mean / input_var [C]. Training mode (training_mode = 1, or asking for the
// running/saved statistics outputs) and the opset-7 per-activation form (spatial = 0) are refused
// at load time.

#include <string>

#include "kernels/ref/norm_ref.h"
#include "runtime/ops/nn_common.h"

namespace tinyq::rt {

std::unique_ptr<Op> make_batch_norm(const OpContext& ctx) {
  const Node& node = ctx.node;
  if (node.inputs.size() != 5) ctx.fail("takes inputs X, scale, B, input_mean, input_var");
  for (size_t i = 0; i < 5; ++i)
    if (!node.has_input(i)) ctx.fail("input " + std::to_string(i) + " is required");
  if (node.outputs.empty()) ctx.fail("has no output");
  for (size_t i = 1; i < node.outputs.size(); ++i)
    if (!node.outputs[i].empty())
      ctx.fail("outputs beyond Y are training-mode statistics, which tinyq's inference runtime does not produce");
  if (node.attr_int("training_mode", 0) != 0) ctx.fail("training_mode = 1 is not supported (inference only)");
  if (node.attr_int("spatial", 1) != 1) ctx.fail("spatial = 0 (per-activation statistics) is not supported");
  const float epsilon = node.attr_float("epsilon", 1e-5f);
  // momentum only matters in training.
  return make_lambda_op([epsilon](const OpInputs& in, std::vector<Tensor>& out) {
    const Tensor& x = nn::f32_input(in[0], "input X");
    if (x.rank() < 2) throw Error("input X must be [N, C, ...], got " + shape_to_string(x.shape()));
    const int64_t c = x.dim(1);
    const char* names[] = {"scale", "B", "input_mean", "input_var"};
    const float* params[4];
    for (int i = 0; i < 4; ++i) {
      const Tensor& t = nn::f32_input(in[static_cast<size_t>(i) + 1], names[i]);
      if (t.rank() != 1 || t.dim(0) != c)
        throw Error(std::string(names[i]) + " must have shape [" + std::to_string(c) + "], got " +
                    shape_to_string(t.shape()));
      params[i] = t.data<float>();
    }
    int64_t spatial = 1;
    for (size_t i = 2; i < x.rank(); ++i) spatial *= x.dim(i);
    Tensor y(DType::F32, x.shape());
    kernels::batch_norm_f32_ref(x.dim(0), c, spatial, x.data<float>(), params[0], params[1], params[2], params[3],
                                epsilon, y.data<float>());
    out[0] = std::move(y);
  });
}

}  // namespace tinyq::rt
