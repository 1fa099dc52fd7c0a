// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// Conv(X, W, B) with a constant W:
//   DynamicQuantizeLinear(X) -> ConvInteger(X_q, W_q, X_z, 0) -> Cast -> Mul(X_s * W_s)
//   -> Add(B as [1,M,1,1]) = Y
// ConvInteger has no bias input, so the fp32 bias is added after rescaling; a constant bias is
// stored already shaped [1,M,1,...] (ONNX Runtime adds a Reshape node and a shape initializer
// per Conv instead). Per channel, W ([M, C/group, k...]) gets one scale per output channel,
// stored [1,M,1,...] so the Mul broadcasts over Y; its zero point stays the shared scalar 0.
#include "quant/dynamic/dynamic_rewriter.h"
#include "quant/weight_quant.h"

namespace tinyq::quant {
namespace {
// [1, M, 1, ...] with as many dims as the weight (and Y) have.
Shape channel_shape(const Tensor& w) {
  Shape s(w.rank(), 1);
  s[1] = w.dim(0);
  return s;
}
}  // namespace

std::string conv_why_not(const DynamicRewriter& rw, const Node& node) {
  if (node.inputs.size() < 2 || node.inputs.size() > 3 || node.outputs.size() != 1)
    return "expects 2 or 3 inputs and 1 output";
  if (rw.constant(node.input(0))) return "input X is a constant, not an activation";
  const Initializer* w = rw.constant(node.input(1));
  if (!w) return "weight is not a constant initializer";
  if (w->tensor.rank() < 3) return "weight has rank " + std::to_string(w->tensor.rank()) + ", expected 3 or more";
  if (const Initializer* b = rw.constant(node.input(2))) {
    if (b->tensor.dtype() != DType::F32) return "bias is not float";
    if (b->tensor.numel() != w->tensor.dim(0)) return "bias does not have one value per output channel";
  }
  return weight_problem(w->tensor);
}

void conv_rewrite(DynamicRewriter& rw, const Node& node) {
  const std::string& y = node.outputs[0];
  const Tensor& weight = rw.constant(node.input(1))->tensor;
  const Shape per_channel_shape = channel_shape(weight);

  WeightRequest req;
  req.name = node.input(1);
  if (rw.per_channel()) {
    req.channel_axis = 0;
    req.scale_shape = per_channel_shape;
  }
  const DynamicActivation& x = rw.quantize_activation(node.input(0));
  const StoredWeight& w = rw.quantize_weight(req);

  const bool has_bias = node.has_input(2);
  const std::string product = has_bias ? rw.fresh_name(y + "_m") : y;
  const std::string acc = rw.fresh_name(y + "_i");
  Node& conv = rw.emit("ConvInteger", {x.quantized, w.quantized, x.zero_point, w.zero_point}, {acc});
  conv.name = node.name;
  conv.attributes = node.attributes;  // auto_pad, dilations, group, kernel_shape, pads, strides
  rw.emit_rescale(acc, x, w, product, y);
  if (!has_bias) return;

  std::string bias = node.input(2);
  if (rw.constant(bias)) {
    bias = rw.reshaped_constant(bias, per_channel_shape);
  } else {
    Tensor shape_values = Tensor::from_vector<int64_t>({static_cast<int64_t>(per_channel_shape.size())},
                                                       std::vector<int64_t>(per_channel_shape.size(), 1));
    shape_values.data<int64_t>()[1] = -1;
    const std::string shape_name = rw.add_initializer(y + "_bshape", std::move(shape_values));
    const std::string reshaped = rw.fresh_name(bias + "_r");
    rw.emit("Reshape", {bias, shape_name}, {reshaped});
    bias = reshaped;
  }
  rw.emit("Add", {product, bias}, {y});
}

}  // namespace tinyq::quant
