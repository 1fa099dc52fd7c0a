// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool (opsets 1..18) on X [N, C, spatial...]
// with 1 to 3 spatial axes. ceil_mode (MaxPool/AveragePool 10+), dilations (MaxPool 10+) and
// count_include_pad (AveragePool 7+) are read whenever present; older opsets simply lack them.

#include <string>

#include "kernels/ref/pool_ref.h"
#include "runtime/ops/nn_common.h"

namespace tinyq::rt {

namespace {

using kernels::AutoPad;
using kernels::PoolParams;

struct PoolAttrs {
  nn::WindowAttrs window;
  bool ceil_mode = false;
};

PoolAttrs parse_pool_attrs(const OpContext& ctx) {
  PoolAttrs a;
  a.window = nn::parse_window_attrs(ctx, true);
  const int64_t ceil_mode = ctx.node.attr_int("ceil_mode", 0);
  if (ceil_mode != 0 && ceil_mode != 1) ctx.fail("ceil_mode must be 0 or 1");
  a.ceil_mode = ceil_mode == 1;
  // ONNX Runtime refuses pads as wide as the window (a window entirely in the padding has no
  // defined value); so does tinyq.
  const size_t rank = a.window.kernel_shape.size();
  for (size_t i = 0; i < a.window.pads.size(); ++i)
    if (a.window.pads[i] >= a.window.kernel_shape[i % rank])
      ctx.fail("pads must be smaller than kernel_shape");
  return a;
}

PoolParams pool_geometry(const PoolAttrs& a, const Shape& x) {
  const nn::WindowAttrs& w = a.window;
  const size_t rank = w.kernel_shape.size();
  if (x.size() != rank + 2)
    throw Error("input " + shape_to_string(x) + " must have rank " + std::to_string(rank + 2) +
                " ([N, C] and one dim per kernel_shape value)");
  PoolParams p;
  p.planes = x[0] * x[1];
  p.spatial_rank = static_cast<int>(rank);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t in = x[i + 2], k = w.kernel_shape[i], s = nn::stride_at(w, i), d = nn::dilation_at(w, i);
    const kernels::AxisPads pads = nn::resolve_pads(w, i, rank, [&] { return kernels::pool_same_pads(in, k, s, w.auto_pad); });
    const int64_t out = kernels::conv_output_size(in, k, s, d, pads.begin, pads.end, a.ceil_mode);
    if (out < 1)
      throw Error("the window (" + std::to_string(kernels::dilated_extent(k, d)) + " with dilation) does not fit input " +
                  shape_to_string(x) + " with its padding along spatial axis " + std::to_string(i));
    nn::set_window_axis(p, i, in, out, k, s, d, pads.begin);
    p.pad_end[i] = pads.end;
  }
  return p;
}

Shape pooled_shape(const Shape& x, const PoolParams& p) {
  Shape y = {x[0], x[1]};
  for (int i = 0; i < p.spatial_rank; ++i) y.push_back(p.out_size[i]);
  return y;
}

void check_one_input(const OpContext& ctx) {
  if (!ctx.node.has_input(0) || ctx.node.inputs.size() != 1) ctx.fail("takes one input X");
}

}  // namespace

std::unique_ptr<Op> make_max_pool(const OpContext& ctx) {
  check_one_input(ctx);
  if (ctx.node.outputs.size() > 2) ctx.fail("has at most two outputs (Y, Indices)");
  if (ctx.node.outputs.size() == 2 && !ctx.node.outputs[1].empty())
    ctx.fail("the optional Indices output is not supported by tinyq's runtime");
  PoolAttrs a = parse_pool_attrs(ctx);
  // storage_order only affects the Indices output, which is refused above.
  return make_lambda_op([a](const OpInputs& in, std::vector<Tensor>& out) {
    const Tensor& x = nn::f32_input(in[0], "input X");
    PoolParams p = pool_geometry(a, x.shape());
    Tensor y(DType::F32, pooled_shape(x.shape(), p));
    kernels::max_pool_f32_ref(p, x.data<float>(), y.data<float>());
    out[0] = std::move(y);
  });
}

std::unique_ptr<Op> make_average_pool(const OpContext& ctx) {
  check_one_input(ctx);
  if (ctx.node.outputs.size() != 1) ctx.fail("has one output");
  PoolAttrs a = parse_pool_attrs(ctx);
  const int64_t count_include_pad = ctx.node.attr_int("count_include_pad", 0);
  if (count_include_pad != 0 && count_include_pad != 1) ctx.fail("count_include_pad must be 0 or 1");
  return make_lambda_op([a, count_include_pad](const OpInputs& in, std::vector<Tensor>& out) {
    const Tensor& x = nn::f32_input(in[0], "input X");
    PoolParams p = pool_geometry(a, x.shape());
    Tensor y(DType::F32, pooled_shape(x.shape(), p));
    kernels::avg_pool_f32_ref(p, count_include_pad == 1, x.data<float>(), y.data<float>());
    out[0] = std::move(y);
  });
}

namespace {

// Global pools reduce every spatial axis of [N, C, spatial...] to 1.
template <void (*Kernel)(int64_t, int64_t, const float*, float*)>
std::unique_ptr<Op> make_global_pool(const OpContext& ctx) {
  check_one_input(ctx);
  if (ctx.node.outputs.size() != 1) ctx.fail("has one output");
  return make_lambda_op([](const OpInputs& in, std::vector<Tensor>& out) {
    const Tensor& x = nn::f32_input(in[0], "input X");
    if (x.rank() < 3) throw Error("input must be [N, C, spatial...], got " + shape_to_string(x.shape()));
    Shape y_shape = {x.dim(0), x.dim(1)};
    int64_t plane = 1;
    for (size_t i = 2; i < x.rank(); ++i) {
      plane *= x.dim(i);
      y_shape.push_back(1);
    }
    if (plane == 0) throw Error("input " + shape_to_string(x.shape()) + " has an empty spatial dimension");
    Tensor y(DType::F32, y_shape);
    Kernel(x.dim(0) * x.dim(1), plane, x.data<float>(), y.data<float>());
    out[0] = std::move(y);
  });
}

}  // namespace

std::unique_ptr<Op> make_global_average_pool(const OpContext& ctx) {
  return make_global_pool<kernels::global_avg_pool_f32_ref>(ctx);
}

std::unique_ptr<Op> make_global_max_pool(const OpContext& ctx) {
  return make_global_pool<kernels::global_max_pool_f32_ref>(ctx);
}

}  // namespace tinyq::rt
