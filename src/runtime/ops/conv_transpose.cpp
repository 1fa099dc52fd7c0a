// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// ConvTranspose (opsets 1..18): X [N, C, spatial...], W [C, M / group, kernel...], optional B [M].
// The output size comes from output_shape when given (pads are then derived from it), else from
// the pads (explicit, or SAME_* aiming at in * stride), strides, dilations and output_padding.

#include <string>

#include "kernels/nn_kernels.h"
#include "runtime/ops/nn_common.h"

namespace tinyq::rt {

namespace {

using kernels::AutoPad;
using kernels::ConvParams;

struct ConvTransposeAttrs {
  nn::WindowAttrs window;
  int64_t group = 1;
  std::vector<int64_t> output_padding;  ///< empty: all 0
  std::vector<int64_t> output_shape;    ///< empty: computed; else spatial dims (or N, C, spatial)
};

void check_weights(const ConvTransposeAttrs& a, const Shape& w, const Tensor* bias) {
  if (w.size() < 3) throw Error("weights must have rank 3 to 5 ([C, M/group, kernel...]), got " + shape_to_string(w));
  const size_t rank = w.size() - 2;
  nn::check_window_rank(a.window, rank);
  for (size_t i = 0; !a.window.kernel_shape.empty() && i < rank; ++i)
    if (a.window.kernel_shape[i] != w[i + 2])
      throw Error("kernel_shape does not match the weights " + shape_to_string(w));
  for (int64_t d : w)
    if (d < 1) throw Error("weights have an empty dimension: " + shape_to_string(w));
  if (w[0] % a.group != 0)
    throw Error("input channels " + std::to_string(w[0]) + " are not divisible by group " + std::to_string(a.group));
  if (!a.output_padding.empty() && a.output_padding.size() != rank)
    throw Error("output_padding must have one value per spatial axis");
  if (!a.output_shape.empty() && a.output_shape.size() != rank && a.output_shape.size() != rank + 2)
    throw Error("output_shape must list the spatial output dims");
  const int64_t m = w[1] * a.group;
  if (bias && (bias->rank() != 1 || bias->dim(0) != m))
    throw Error("bias must have shape [" + std::to_string(m) + "], got " + shape_to_string(bias->shape()));
}

ConvParams conv_transpose_geometry(const ConvTransposeAttrs& a, const Shape& x, const Shape& w) {
  if (x.size() != w.size())
    throw Error("input " + shape_to_string(x) + " and weights " + shape_to_string(w) + " differ in rank");
  if (x[1] != w[0])
    throw Error("input has " + std::to_string(x[1]) + " channels, the weights expect " + std::to_string(w[0]));
  const size_t rank = x.size() - 2;
  const nn::WindowAttrs& wa = a.window;
  ConvParams p;
  p.batch = x[0];
  p.in_channels = x[1];
  p.out_channels = w[1] * a.group;
  p.group = a.group;
  p.spatial_rank = static_cast<int>(rank);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t in = x[i + 2], k = w[i + 2], s = nn::stride_at(wa, i), d = nn::dilation_at(wa, i);
    const int64_t adj = a.output_padding.empty() ? 0 : a.output_padding[i];
    int64_t pb = nn::pad_begin_at(wa, i), pe = nn::pad_end_at(wa, i, rank);
    int64_t out;
    if (!a.output_shape.empty()) {
      out = a.output_shape[a.output_shape.size() == rank ? i : i + 2];
      kernels::AxisPads ap = kernels::conv_transpose_pads_for_output(in, out, k, s, d, adj, wa.auto_pad);
      pb = ap.begin;
      pe = ap.end;
    } else {
      const kernels::AxisPads ap = nn::resolve_pads(
          wa, i, rank, [&] { return kernels::conv_transpose_pads_for_output(in, in * s, k, s, d, adj, wa.auto_pad); });
      pb = ap.begin;
      pe = ap.end;
      out = kernels::conv_transpose_output_size(in, k, s, d, pb, pe, adj);
    }
    if (out < 1)
      throw Error("the output would be empty along spatial axis " + std::to_string(i) + " (input " +
                  shape_to_string(x) + ", pads " + std::to_string(pb) + "+" + std::to_string(pe) + ")");
    nn::set_window_axis(p, i, in, out, k, s, d, pb);
  }
  return p;
}

}  // namespace

std::unique_ptr<Op> make_conv_transpose(const OpContext& ctx) {
  const Node& node = ctx.node;
  if (!node.has_input(0) || !node.has_input(1) || node.inputs.size() > 3 || node.outputs.size() != 1)
    ctx.fail("takes inputs X, W and an optional B, and one output");
  ConvTransposeAttrs a;
  a.window = nn::parse_window_attrs(ctx, false);
  a.group = node.attr_int("group", 1);
  if (a.group < 1) ctx.fail("group must be positive");
  a.output_padding = node.attr_ints("output_padding");
  a.output_shape = node.attr_ints("output_shape");
  for (int64_t v : a.output_padding)
    if (v < 0 || v > nn::kMaxWindowValue) ctx.fail("output_padding must be in [0, 2^31]");
  for (int64_t v : a.output_shape)
    if (v < 1 || v > nn::kMaxWindowValue) ctx.fail("output_shape values must be in [1, 2^31]");
  const bool has_bias = node.has_input(2);
  if (const Tensor* w = ctx.constant(1)) {
    if (w->dtype() != DType::F32) ctx.fail("weights must be float32, got " + std::string(dtype_name(w->dtype())));
    const Tensor* b = has_bias ? ctx.constant(2) : nullptr;
    try {
      check_weights(a, w->shape(), b && b->dtype() == DType::F32 ? b : nullptr);
    } catch (const Error& e) {
      ctx.fail(e.what());
    }
  }
  return make_lambda_op([a, has_bias](const OpInputs& in, std::vector<Tensor>& out) {
    const Tensor& x = nn::f32_input(in[0], "input X");
    const Tensor& w = nn::f32_input(in[1], "weights W");
    const Tensor* b = has_bias ? &nn::f32_input(in[2], "bias B") : nullptr;
    check_weights(a, w.shape(), b);
    ConvParams p = conv_transpose_geometry(a, x.shape(), w.shape());
    Shape y_shape = {p.batch, p.out_channels};
    for (int i = 0; i < p.spatial_rank; ++i) y_shape.push_back(p.out_size[i]);
    Tensor y(DType::F32, y_shape);
    kernels::pick_kernel(kernels::conv_transpose_f32_kernels(), p)
        .run(p, x.data<float>(), w.data<float>(), b ? b->data<float>() : nullptr, y.data<float>());
    out[0] = std::move(y);
  });
}

}  // namespace tinyq::rt
