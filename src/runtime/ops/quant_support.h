// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// Helpers the quantised ops share (QuantizeLinear ... QLinearConv): reading scale and
// zero-point inputs, the [outer, channels, inner] view of a per-axis quantisation, numpy matmul
// shapes with per-row / per-column parameters, and convolution attributes. Scale and
// zero-point arithmetic itself stays in common/qmath.h.

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "kernels/conv_geometry.h"
#include "kernels/ref/qconv_ref.h"
#include "kernels/ref/qgemm_ref.h"
#include "kernels/ref/qlinear_ref.h"
#include "runtime/broadcast.h"
#include "runtime/ops/nn_common.h"
#include "runtime/ops/op_support.h"

namespace tinyq::rt::quant {

inline bool is_8bit(DType t) { return t == DType::U8 || t == DType::I8; }

/// A scale input's values: float32 and non-empty. The values are not policed (ONNX does not
/// restrict them): a zero scale quantises to the saturated ends, as qmath documents.
inline std::vector<float> scale_values(const Tensor& t, const std::string& what) {
  if (t.dtype() != DType::F32) throw Error(what + " must be float, is " + dtype_name(t.dtype()));
  if (t.numel() == 0) throw Error(what + " is empty");
  return t.to_vector<float>();
}

/// A zero-point input's values widened to int32; an omitted one (nullptr) gives `count` zeros.
/// `want` is the type it must have (the data's type), Undefined for any 8-bit or int32 type.
inline std::vector<int32_t> zero_point_values(const Tensor* t, DType want, size_t count, const std::string& what) {
  if (!t) return std::vector<int32_t>(count, 0);
  if (want != DType::Undefined && t->dtype() != want)
    throw Error(what + " must have type " + dtype_name(want) + ", has " + dtype_name(t->dtype()));
  std::vector<int32_t> v(static_cast<size_t>(t->numel()));
  dispatch_types<uint8_t, int8_t, int32_t>(t->dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* p = t->data<T>();
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<int32_t>(p[i]);
  });
  return v;
}

/// Per-tensor quantisation parameters: a scalar or a 1-element 1-D tensor (ONNX Runtime treats
/// both alike, and ONNX Runtime's quantiser writes the latter for some biases).
inline bool is_per_tensor(const Tensor& t) { return t.numel() == 1 && t.rank() <= 1; }

/// Fails the node when one of these inputs is a constant that is not 8-bit data.
inline void check_8bit_constants(const OpContext& ctx, std::initializer_list<size_t> inputs) {
  for (size_t i : inputs)
    if (const Tensor* t = ctx.constant(i); t && !is_8bit(t->dtype()))
      ctx.fail("input " + std::to_string(i) + " must be uint8 or int8, is " + dtype_name(t->dtype()));
}

/// Fails the node when one of these inputs (scales) is a constant that is not float.
inline void check_scale_constants(const OpContext& ctx, std::initializer_list<size_t> inputs) {
  for (size_t i : inputs)
    if (const Tensor* t = ctx.constant(i); t && t->dtype() != DType::F32)
      ctx.fail("input " + std::to_string(i) + " (a scale) must be float, is " + dtype_name(t->dtype()));
}

/// The [outer, channels, inner] view of `shape` around `axis` (already normalised).
inline kernels::QAxisLayout axis_layout(const Shape& shape, int64_t axis) {
  kernels::QAxisLayout l;
  l.outer = 1;
  l.inner = 1;
  for (int64_t d = 0; d < axis; ++d) l.outer *= shape[static_cast<size_t>(d)];
  l.channels = shape[static_cast<size_t>(axis)];
  for (size_t d = static_cast<size_t>(axis) + 1; d < shape.size(); ++d) l.inner *= shape[d];
  return l;
}
inline kernels::QAxisLayout tensor_layout(const Shape& shape) {
  kernels::QAxisLayout l;
  l.inner = shape_numel(shape);
  return l;
}

/// QuantizeLinear / DequantizeLinear (opsets 10 and 13) share their parameters: a scale (per
/// tensor, or from opset 13 a 1-D one along `axis`, default 1) and a zero point. `prefix` is the
/// ONNX name of the quantised side ("y" for QuantizeLinear, "x" for DequantizeLinear) and
/// `zp_types` the zero-point types the op takes, in words.
struct LinearQuantSpec {
  const char* prefix;
  bool (*zero_point_ok)(DType);
  const char* zp_types;
  int64_t axis = 1;
  bool per_axis = false;  ///< opset >= 13
};

/// Checks arity, attributes and the constant parameters when the op is made.
inline LinearQuantSpec make_linear_quant_spec(const OpContext& ctx, const char* prefix, bool (*zero_point_ok)(DType),
                                              const char* zp_types) {
  check_arity(ctx, 2, 3, 1, 1);
  LinearQuantSpec spec{prefix, zero_point_ok, zp_types};
  spec.per_axis = ctx.opset >= 13;
  if (spec.per_axis) check_attrs(ctx, {"axis"});
  else check_attrs(ctx, {});
  spec.axis = ctx.node.attr_int("axis", 1);
  const std::string p = prefix;
  if (const Tensor* s = ctx.constant(1); s && s->dtype() != DType::F32)
    ctx.fail(p + "_scale must be float, is " + dtype_name(s->dtype()));
  if (const Tensor* z = ctx.constant(2); z && !zero_point_ok(z->dtype()))
    ctx.fail(p + "_zero_point must be " + zp_types + ", is " + dtype_name(z->dtype()));
  if (const Tensor* s = ctx.constant(1); s && !spec.per_axis && !is_per_tensor(*s))
    ctx.fail(p + "_scale must be a scalar before opset 13, has shape " + shape_to_string(s->shape()));
  return spec;
}

/// The parameters of one run: scales, zero points (of type `zp_type`) and the layout of x they
/// apply along, checked against x's shape.
struct LinearQuantParams {
  std::vector<float> scales;
  std::vector<int32_t> zero_points;
  kernels::QAxisLayout layout;
};
inline LinearQuantParams linear_quant_params(const LinearQuantSpec& spec, const Tensor& x, const Tensor& scale,
                                             const Tensor* zp, DType zp_type) {
  const std::string p = spec.prefix;
  if (!spec.zero_point_ok(zp_type))
    throw Error(p + "_zero_point must be " + spec.zp_types + ", is " + dtype_name(zp_type));
  LinearQuantParams q;
  q.scales = scale_values(scale, p + "_scale");
  q.zero_points = zero_point_values(zp, zp_type, q.scales.size(), p + "_zero_point");
  if (q.zero_points.size() != q.scales.size())
    throw Error(p + "_zero_point has shape " + shape_to_string(zp->shape()) + " but " + p + "_scale has shape " +
                shape_to_string(scale.shape()));
  q.layout = tensor_layout(x.shape());
  if (!is_per_tensor(scale)) {
    if (!spec.per_axis) throw Error(p + "_scale must be a scalar before opset 13, has shape " + shape_to_string(scale.shape()));
    if (scale.rank() != 1) throw Error(p + "_scale must be a scalar or 1-D, has shape " + shape_to_string(scale.shape()));
    q.layout = axis_layout(x.shape(), normalize_axis(spec.axis, static_cast<int64_t>(x.rank())));
    if (q.layout.channels != scale.numel())
      throw Error(p + "_scale has " + std::to_string(scale.numel()) + " values but axis " + std::to_string(spec.axis) +
                  " of x " + shape_to_string(x.shape()) + " has " + std::to_string(q.layout.channels));
  }
  return q;
}

/// numpy.matmul of A [..., M, K] and B [..., K, N] (1-D operands promoted and the promoted axis
/// dropped from the output, as numpy does), with batch dimensions broadcast. For each output
/// matrix, the element offsets of its A and B matrices.
struct MatMulPlan {
  Shape out;
  Shape batch;  ///< broadcast batch dims of the output
  int64_t m = 0, n = 0, k = 0;
  std::vector<int64_t> a_offsets, b_offsets;
};

/// For each index of `batch` (C order), the offset of the matching slice of a tensor whose
/// leading dims `dims` broadcast to `batch`, in units of `slice` elements.
inline std::vector<int64_t> batch_offsets(const Shape& dims, const Shape& batch, int64_t slice) {
  const std::vector<int64_t> strides = broadcast_strides(dims, batch);
  const int64_t count = shape_numel(batch);
  std::vector<int64_t> offsets(static_cast<size_t>(count));
  std::vector<int64_t> index(batch.size(), 0);
  int64_t off = 0;
  for (int64_t b = 0; b < count; ++b) {
    offsets[static_cast<size_t>(b)] = off * slice;
    for (size_t d = batch.size(); d-- > 0;) {
      off += strides[d];
      if (++index[d] < batch[d]) break;
      off -= strides[d] * batch[d];
      index[d] = 0;
    }
  }
  return offsets;
}

inline MatMulPlan plan_matmul(const Shape& a_shape, const Shape& b_shape) {
  if (a_shape.empty() || b_shape.empty()) throw Error("matmul operands must have rank >= 1");
  Shape a = a_shape, b = b_shape;
  const bool a_vec = a.size() == 1, b_vec = b.size() == 1;
  if (a_vec) a.insert(a.begin(), 1);
  if (b_vec) b.push_back(1);
  MatMulPlan p;
  p.m = a[a.size() - 2];
  p.k = a[a.size() - 1];
  p.n = b[b.size() - 1];
  if (b[b.size() - 2] != p.k)
    throw Error("matmul shapes " + shape_to_string(a_shape) + " and " + shape_to_string(b_shape) +
                " do not agree on K (" + std::to_string(p.k) + " vs " + std::to_string(b[b.size() - 2]) + ")");
  const Shape a_batch(a.begin(), a.end() - 2), b_batch(b.begin(), b.end() - 2);
  p.batch = broadcast_shapes(a_batch, b_batch);
  p.a_offsets = batch_offsets(a_batch, p.batch, p.m * p.k);
  p.b_offsets = batch_offsets(b_batch, p.batch, p.k * p.n);
  p.out = p.batch;
  if (!a_vec) p.out.push_back(p.m);
  if (!b_vec) p.out.push_back(p.n);
  return p;
}

/// Per-row (of A) or per-column (of B) quantisation parameters of a matmul, as ONNX allows:
/// a scalar or 1-element tensor (per tensor), a 1-D tensor of M (rows) / N (columns) values
/// shared by every batch, or an N-D tensor [..., M, 1] / [..., 1, N] whose leading dims
/// broadcast to the batch. `stride` is 0 (per tensor) or 1; `offsets` gives each output
/// matrix's first value.
struct MatMulParamLayout {
  int64_t stride = 0;
  std::vector<int64_t> offsets;
};

inline MatMulParamLayout matmul_param_layout(const Shape& shape, const MatMulPlan& plan, bool rows,
                                             const std::string& what) {
  MatMulParamLayout l;
  const int64_t count = rows ? plan.m : plan.n;
  const int64_t numel = shape_numel(shape);
  const size_t batches = static_cast<size_t>(shape_numel(plan.batch));
  if (numel == 1 && shape.size() <= 1) {
    l.offsets.assign(batches, 0);
    return l;
  }
  l.stride = 1;
  if (shape.size() == 1 && shape[0] == count) {
    l.offsets.assign(batches, 0);
    return l;
  }
  const size_t r = shape.size();
  const bool fits = r >= 2 && (rows ? shape[r - 2] == count && shape[r - 1] == 1 : shape[r - 2] == 1 && shape[r - 1] == count);
  const Shape lead(shape.begin(), shape.end() - (r >= 2 ? 2 : 0));
  bool broadcasts = fits && lead.size() <= plan.batch.size();
  for (size_t i = 0; broadcasts && i < lead.size(); ++i) {
    int64_t want = plan.batch[plan.batch.size() - lead.size() + i];
    broadcasts = lead[i] == 1 || lead[i] == want;
  }
  if (!broadcasts)
    throw Error(what + " has shape " + shape_to_string(shape) + "; expected a scalar, [" + std::to_string(count) +
                "] or [..., " + (rows ? std::to_string(count) + ", 1]" : "1, " + std::to_string(count) + "]") +
                " for a " + (rows ? "per-row" : "per-column") + " quantisation");
  l.offsets = batch_offsets(lead, plan.batch, count);
  return l;
}

/// Same for an optional input: an omitted one (nullptr) is per tensor.
inline MatMulParamLayout matmul_param_layout(const Tensor* t, const MatMulPlan& plan, bool rows,
                                             const std::string& what) {
  if (t) return matmul_param_layout(t->shape(), plan, rows, what);
  MatMulParamLayout l;
  l.offsets.assign(static_cast<size_t>(shape_numel(plan.batch)), 0);
  return l;
}

/// ConvInteger / QLinearConv attributes, parsed and checked as Conv's are (nn_common.h: known
/// auto_pad, positive strides, dilations and kernel_shape, non-negative pads, consistent
/// lengths), plus group >= 1.
/// The integer GEMM of output matrix `i` of a planned MatMul: A's and B's slices with their
/// zero points, into c (leading dimension n).
template <typename TA, typename TB>
kernels::QGemmArgs<TA, TB> batch_qgemm_args(const MatMulPlan& plan, size_t i, const Tensor& a, const Tensor& b,
                                            const std::vector<int32_t>& za, const MatMulParamLayout& la,
                                            const std::vector<int32_t>& zb, const MatMulParamLayout& lb, int32_t* c) {
  kernels::QGemmArgs<TA, TB> g;
  g.m = plan.m;
  g.n = plan.n;
  g.k = plan.k;
  g.a = a.data<TA>() + plan.a_offsets[i];
  g.lda = plan.k;
  g.b = b.data<TB>() + plan.b_offsets[i];
  g.ldb = plan.n;
  g.c = c;
  g.ldc = plan.n;
  g.a_zero_points = za.data() + la.offsets[i];
  g.a_zp_stride = la.stride;
  g.b_zero_points = zb.data() + lb.offsets[i];
  g.b_zp_stride = lb.stride;
  return g;
}

/// A convolution node's window and group, whatever other attributes it has (the fused nodes of
/// runtime/passes carry their activation's too).
inline kernels::QConvAttrs read_conv_attrs(const OpContext& ctx) {
  const nn::WindowAttrs w = nn::parse_window_attrs(ctx, false);
  kernels::QConvAttrs a;
  a.kernel_shape = w.kernel_shape;
  a.strides = w.strides;
  a.dilations = w.dilations;
  a.pads = w.pads;
  a.auto_pad = w.auto_pad;
  a.group = ctx.node.attr_int("group", 1);
  if (a.group < 1) ctx.fail("group must be at least 1, is " + std::to_string(a.group));
  return a;
}

/// The same for ConvInteger and QLinearConv, which have no other attributes.
inline kernels::QConvAttrs parse_conv_attrs(const OpContext& ctx) {
  check_attrs(ctx, {"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"});
  return read_conv_attrs(ctx);
}

/// The geometry for these inputs, or a tinyq::Error with qconv_resolve's reason.
inline kernels::ConvParams resolve_conv(const kernels::QConvAttrs& attrs, const Shape& x, const Shape& w) {
  kernels::ConvParams p;
  std::string why;
  if (!kernels::qconv_resolve(attrs, x, w, &p, &why))
    throw Error(why + " (input " + shape_to_string(x) + ", weights " + shape_to_string(w) + ")");
  return p;
}

/// The output shape [N, M, out...] of a resolved convolution.
inline Shape conv_output_shape(const kernels::ConvParams& p) {
  Shape s{p.batch, p.out_channels};
  for (int a = 0; a < p.spatial_rank; ++a) s.push_back(p.out_size[a]);
  return s;
}

}  // namespace tinyq::rt::quant
