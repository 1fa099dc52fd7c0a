// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// Conv (opsets 1..18; the semantics never changed): X [N, C, spatial...] (1 to 3 spatial axes),
// W [M, C / group, kernel...], optional B [M]. kernel_shape defaults to W's spatial shape.

#include <string>

#include "kernels/nn_kernels.h"
#include "runtime/ops/nn_common.h"

namespace tinyq::rt {

namespace {

using kernels::AutoPad;
using kernels::ConvParams;

// Checks the weights (and bias) shapes that do not depend on X.
void check_conv_weights(const nn::WindowAttrs& attrs, int64_t group, const Shape& w, const Tensor* bias) {
  if (w.size() < 3) throw Error("weights must have rank 3 to 5 ([M, C/group, kernel...]), got " + shape_to_string(w));
  nn::check_window_rank(attrs, w.size() - 2);
  for (size_t i = 0; !attrs.kernel_shape.empty() && i < attrs.kernel_shape.size(); ++i)
    if (attrs.kernel_shape[i] != w[i + 2])
      throw Error("kernel_shape does not match the weights " + shape_to_string(w));
  for (int64_t d : w)
    if (d < 1) throw Error("weights have an empty dimension: " + shape_to_string(w));
  if (w[0] % group != 0)
    throw Error("output channels " + std::to_string(w[0]) + " are not divisible by group " + std::to_string(group));
  if (bias && (bias->rank() != 1 || bias->dim(0) != w[0]))
    throw Error("bias must have shape [" + std::to_string(w[0]) + "], got " + shape_to_string(bias->shape()));
}

ConvParams conv_geometry(const nn::WindowAttrs& attrs, int64_t group, const Shape& x, const Shape& w) {
  if (x.size() != w.size())
    throw Error("input " + shape_to_string(x) + " and weights " + shape_to_string(w) + " differ in rank");
  if (x[1] != w[1] * group)
    throw Error("input has " + std::to_string(x[1]) + " channels, the weights expect " +
                std::to_string(w[1] * group) + " (" + std::to_string(w[1]) + " per group x group " +
                std::to_string(group) + ")");
  const size_t rank = x.size() - 2;
  ConvParams p;
  p.batch = x[0];
  p.in_channels = x[1];
  p.out_channels = w[0];
  p.group = group;
  p.spatial_rank = static_cast<int>(rank);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t in = x[i + 2], k = w[i + 2], s = nn::stride_at(attrs, i), d = nn::dilation_at(attrs, i);
    const kernels::AxisPads pads =
        nn::resolve_pads(attrs, i, rank, [&] { return kernels::conv_same_pads(in, k, s, d, attrs.auto_pad); });
    const int64_t out = kernels::conv_output_size(in, k, s, d, pads.begin, pads.end);
    if (out < 1)
      throw Error("the kernel (" + std::to_string(kernels::dilated_extent(k, d)) + " with dilation) does not fit input " +
                  shape_to_string(x) + " with its padding along spatial axis " + std::to_string(i));
    nn::set_window_axis(p, i, in, out, k, s, d, pads.begin);
  }
  return p;
}

}  // namespace

std::unique_ptr<Op> make_conv(const OpContext& ctx) {
  const Node& node = ctx.node;
  if (!node.has_input(0) || !node.has_input(1) || node.inputs.size() > 3 || node.outputs.size() != 1)
    ctx.fail("takes inputs X, W and an optional B, and one output");
  nn::WindowAttrs attrs = nn::parse_window_attrs(ctx, false);
  const int64_t group = node.attr_int("group", 1);
  if (group < 1) ctx.fail("group must be positive");
  const bool has_bias = node.has_input(2);
  // Constant weights (the usual case) are checked now, so a bad model fails at load time.
  if (const Tensor* w = ctx.constant(1)) {
    if (w->dtype() != DType::F32) ctx.fail("weights must be float32, got " + std::string(dtype_name(w->dtype())));
    const Tensor* b = has_bias ? ctx.constant(2) : nullptr;
    try {
      check_conv_weights(attrs, group, w->shape(), b && b->dtype() == DType::F32 ? b : nullptr);
    } catch (const Error& e) {
      ctx.fail(e.what());
    }
  }
  return make_lambda_op([attrs, group, has_bias](const OpInputs& in, std::vector<Tensor>& out) {
    const Tensor& x = nn::f32_input(in[0], "input X");
    const Tensor& w = nn::f32_input(in[1], "weights W");
    const Tensor* b = has_bias ? &nn::f32_input(in[2], "bias B") : nullptr;
    check_conv_weights(attrs, group, w.shape(), b);
    ConvParams p = conv_geometry(attrs, group, x.shape(), w.shape());
    Shape y_shape = {p.batch, p.out_channels};
    for (int i = 0; i < p.spatial_rank; ++i) y_shape.push_back(p.out_size[i]);
    Tensor y(DType::F32, y_shape);
    kernels::pick_kernel(kernels::conv_f32_kernels(), p)
        .run(p, x.data<float>(), w.data<float>(), b ? b->data<float>() : nullptr, y.data<float>());
    out[0] = std::move(y);
  });
}

}  // namespace tinyq::rt
