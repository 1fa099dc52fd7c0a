// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// LayerNormalization (opsets 17..18): X normalised over the axes [axis, rank), then multiplied by
// Scale and shifted by the optional B, both broadcastable to X[axis:]. The optional outputs Mean
// and InvStdDev have X's shape with the normalised axes set to 1. stash_type must be 1 (float).

#include <string>
#include <vector>

#include "kernels/ref/norm_ref.h"
#include "runtime/ops/nn_common.h"

namespace tinyq::rt {

namespace {

// `t` broadcast (numpy rules, right-aligned) to `shape`, flattened: what the kernel multiplies
// element i of every normalised row by.
std::vector<float> broadcast_to(const Tensor& t, const Shape& shape, const char* what) {
  const Shape& s = t.shape();
  if (s.size() > shape.size())
    throw Error(std::string(what) + " " + shape_to_string(s) + " cannot be broadcast to the normalised shape " +
                shape_to_string(shape));
  const size_t lead = shape.size() - s.size();
  for (size_t i = 0; i < s.size(); ++i)
    if (s[i] != 1 && s[i] != shape[lead + i])
      throw Error(std::string(what) + " " + shape_to_string(s) + " cannot be broadcast to the normalised shape " +
                  shape_to_string(shape));
  const int64_t n = shape_numel(shape);
  std::vector<float> out(static_cast<size_t>(n));
  const float* src = t.data<float>();
  for (int64_t flat = 0; flat < n; ++flat) {
    // source offset: drop the coordinates of broadcast (size 1) and missing dims
    int64_t rem = flat, off = 0, stride = 1;
    for (size_t i = shape.size(); i-- > 0;) {
      const int64_t coord = rem % shape[i];
      rem /= shape[i];
      if (i >= lead) {
        const int64_t d = s[i - lead];
        if (d != 1) off += coord * stride;
        stride *= d;
      }
    }
    out[static_cast<size_t>(flat)] = src[off];
  }
  return out;
}

}  // namespace

std::unique_ptr<Op> make_layer_norm(const OpContext& ctx) {
  const Node& node = ctx.node;
  if (!node.has_input(0) || !node.has_input(1) || node.inputs.size() > 3)
    ctx.fail("takes inputs X, Scale and an optional B");
  if (node.outputs.empty() || node.outputs.size() > 3) ctx.fail("has outputs Y and optional Mean, InvStdDev");
  const int64_t axis = node.attr_int("axis", -1);
  const float epsilon = node.attr_float("epsilon", 1e-5f);
  if (node.attr_int("stash_type", 1) != 1) ctx.fail("only stash_type = 1 (float statistics) is supported");
  const bool has_bias = node.has_input(2);
  const bool want_mean = node.outputs.size() > 1 && !node.outputs[1].empty();
  const bool want_inv_std = node.outputs.size() > 2 && !node.outputs[2].empty();
  return make_lambda_op([=](const OpInputs& in, std::vector<Tensor>& out) {
    const Tensor& x = nn::f32_input(in[0], "input X");
    const Tensor& scale = nn::f32_input(in[1], "Scale");
    const Tensor* bias = has_bias ? &nn::f32_input(in[2], "B") : nullptr;
    const int64_t rank = static_cast<int64_t>(x.rank());
    if (axis < -rank || axis >= rank)
      throw Error("axis " + std::to_string(axis) + " is out of range for input " + shape_to_string(x.shape()));
    const size_t a = static_cast<size_t>(axis < 0 ? axis + rank : axis);
    const Shape norm_shape(x.shape().begin() + static_cast<std::ptrdiff_t>(a), x.shape().end());
    Shape stat_shape(x.shape().begin(), x.shape().begin() + static_cast<std::ptrdiff_t>(a));
    const int64_t rows = shape_numel(stat_shape), cols = shape_numel(norm_shape);
    stat_shape.resize(x.rank(), 1);

    const std::vector<float> scale_v = broadcast_to(scale, norm_shape, "Scale");
    std::vector<float> bias_v;
    if (bias) bias_v = broadcast_to(*bias, norm_shape, "B");
    Tensor y(DType::F32, x.shape());
    Tensor mean(DType::F32, stat_shape), inv_std(DType::F32, stat_shape);
    kernels::layer_norm_f32_ref(rows, cols, x.data<float>(), scale_v.data(), bias ? bias_v.data() : nullptr, epsilon,
                                y.data<float>(), mean.data<float>(), inv_std.data<float>());
    out[0] = std::move(y);
    if (want_mean) out[1] = std::move(mean);
    if (want_inv_std) out[2] = std::move(inv_std);
  });
}

}  // namespace tinyq::rt
