// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// InstanceNormalization (opsets 6..18): every (n, c) plane of X [N, C, spatial...] normalised by
// its own mean and variance, then scaled and shifted by scale[c], B[c].

#include <string>

#include "kernels/ref/norm_ref.h"
#include "runtime/ops/nn_common.h"

namespace tinyq::rt {

std::unique_ptr<Op> make_instance_norm(const OpContext& ctx) {
  const Node& node = ctx.node;
  if (node.inputs.size() != 3 || !node.has_input(0) || !node.has_input(1) || !node.has_input(2) ||
      node.outputs.size() != 1)
    ctx.fail("takes inputs input, scale, B and one output");
  const float epsilon = node.attr_float("epsilon", 1e-5f);
  return make_lambda_op([epsilon](const OpInputs& in, std::vector<Tensor>& out) {
    const Tensor& x = nn::f32_input(in[0], "input");
    const Tensor& scale = nn::f32_input(in[1], "scale");
    const Tensor& bias = nn::f32_input(in[2], "B");
    if (x.rank() < 3) throw Error("input must be [N, C, spatial...], got " + shape_to_string(x.shape()));
    const int64_t c = x.dim(1);
    if (scale.rank() != 1 || scale.dim(0) != c || bias.rank() != 1 || bias.dim(0) != c)
      throw Error("scale and B must have shape [" + std::to_string(c) + "], got " + shape_to_string(scale.shape()) +
                  " and " + shape_to_string(bias.shape()));
    int64_t spatial = 1;
    for (size_t i = 2; i < x.rank(); ++i) spatial *= x.dim(i);
    Tensor y(DType::F32, x.shape());
    kernels::instance_norm_f32_ref(x.dim(0), c, spatial, x.data<float>(), scale.data<float>(), bias.data<float>(),
                                   epsilon, y.data<float>());
    out[0] = std::move(y);
  });
}

}  // namespace tinyq::rt
