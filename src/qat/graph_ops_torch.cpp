// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// The trainer's op table: one row per ONNX op, each compiling a node into ATen calls that
// autograd can differentiate. Semantics follow the ONNX spec for the opsets tinyq's models use
// (attributes that later opsets turned into inputs are accepted both ways).

#include "qat/graph_ops_torch.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "qat/graph_trainer.h"
#include "tinyq/error.h"

namespace tinyq::qat {

namespace {

using Inputs = std::vector<at::Tensor>;
using Outputs = std::vector<at::Tensor>;

// --- helpers

std::vector<int64_t> to_ints(const at::Tensor& t) {
  at::Tensor c = t.to(at::kLong).contiguous().reshape({-1});
  const int64_t* p = c.data_ptr<int64_t>();
  return std::vector<int64_t>(p, p + c.numel());
}

int64_t normalise_axis(int64_t axis, int64_t rank, const Node& n) {
  if (axis < -rank || axis >= std::max<int64_t>(rank, 1))
    throw Error(n.label(), "axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
  return axis < 0 ? axis + rank : axis;
}

const at::Tensor& need(const Inputs& in, size_t i, const Node& n) {
  if (i >= in.size() || !in[i].defined()) throw Error(n.label(), "input " + std::to_string(i) + " is missing");
  return in[i];
}

// An axes list given as an attribute (older opsets) or as input `index` (newer ones); absent
// means "none given".
std::vector<int64_t> axes_of(const Node& n, const Inputs& in, size_t index, bool& given) {
  if (const Attribute* a = n.find_attr("axes")) {
    given = true;
    return a->ints;
  }
  given = index < in.size() && in[index].defined();
  return given ? to_ints(in[index]) : std::vector<int64_t>{};
}

std::string auto_pad_of(const Node& n) {
  std::string s = n.attr_string("auto_pad", "NOTSET");
  if (s != "NOTSET" && s != "VALID" && s != "SAME_UPPER" && s != "SAME_LOWER")
    throw Error(n.label(), "auto_pad '" + s + "' is not supported");
  return s;
}

// --- ops

TorchOp compile_conv(const Node& n, int64_t) {
  const std::vector<int64_t> strides_attr = n.attr_ints("strides"), dil_attr = n.attr_ints("dilations"),
                             pads_attr = n.attr_ints("pads");
  const int64_t group = n.attr_int("group", 1);
  const std::string auto_pad = auto_pad_of(n);
  if (group < 1) throw Error(n.label(), "group must be at least 1");
  return [=](const Inputs& in) -> Outputs {
    const at::Tensor& x = need(in, 0, n);
    const at::Tensor& w = need(in, 1, n);
    const int64_t k = w.dim() - 2;
    if (k < 1 || x.dim() != w.dim()) throw Error(n.label(), "input and weight ranks do not fit a convolution");
    std::vector<int64_t> strides = strides_attr.empty() ? std::vector<int64_t>(k, 1) : strides_attr;
    std::vector<int64_t> dil = dil_attr.empty() ? std::vector<int64_t>(k, 1) : dil_attr;
    std::vector<int64_t> pads = pads_attr.empty() ? std::vector<int64_t>(2 * k, 0) : pads_attr;
    if (static_cast<int64_t>(strides.size()) != k || static_cast<int64_t>(dil.size()) != k ||
        static_cast<int64_t>(pads.size()) != 2 * k)
      throw Error(n.label(), "strides, dilations and pads do not match the kernel's rank");
    if (auto_pad == "VALID") {
      std::fill(pads.begin(), pads.end(), 0);
    } else if (auto_pad != "NOTSET") {
      // SAME_*: output size ceil(in / stride); the odd pixel goes at the end (UPPER) or start.
      for (int64_t d = 0; d < k; ++d) {
        const int64_t size = x.size(2 + d), kernel = (w.size(2 + d) - 1) * dil[d] + 1;
        const int64_t total = std::max<int64_t>(0, ((size + strides[d] - 1) / strides[d] - 1) * strides[d] + kernel - size);
        pads[d] = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
        pads[d + k] = total - pads[d];
      }
    }
    at::Tensor src = x;
    std::vector<int64_t> padding(pads.begin(), pads.begin() + k);
    if (!std::equal(pads.begin(), pads.begin() + k, pads.begin() + k)) {
      // Asymmetric padding: pad explicitly (torch lists the last dimension first).
      std::vector<int64_t> torch_pads;
      for (int64_t d = k - 1; d >= 0; --d) {
        torch_pads.push_back(pads[d]);
        torch_pads.push_back(pads[d + k]);
      }
      src = at::constant_pad_nd(x, torch_pads, 0);
      std::fill(padding.begin(), padding.end(), 0);
    }
    c10::optional<at::Tensor> bias;
    if (in.size() > 2 && in[2].defined()) bias = in[2];
    return {at::convolution(src, w, bias, strides, padding, dil, false, std::vector<int64_t>(k, 0), group)};
  };
}

TorchOp compile_gemm(const Node& n, int64_t) {
  const float alpha = n.attr_float("alpha", 1.0f), beta = n.attr_float("beta", 1.0f);
  const bool trans_a = n.attr_int("transA", 0) != 0, trans_b = n.attr_int("transB", 0) != 0;
  return [=](const Inputs& in) -> Outputs {
    const at::Tensor& a = need(in, 0, n);
    const at::Tensor& b = need(in, 1, n);
    const bool has_c = in.size() > 2 && in[2].defined();
    if (a.dim() != 2 || b.dim() != 2) throw Error(n.label(), "Gemm needs 2-D A and B");
    // nn.Linear's own path (one fused addmm) for the usual exported form.
    if (!trans_a && trans_b && alpha == 1.0f && beta == 1.0f) {
      c10::optional<at::Tensor> bias;
      if (has_c) bias = in[2];
      return {at::linear(a, b, bias)};
    }
    at::Tensor y = at::matmul(trans_a ? a.t() : a, trans_b ? b.t() : b);
    if (alpha != 1.0f) y = y * alpha;
    if (has_c) y = y + (beta != 1.0f ? in[2] * beta : in[2]);
    return {y};
  };
}

TorchOp compile_matmul(const Node& n, int64_t) {
  return [n](const Inputs& in) -> Outputs { return {at::matmul(need(in, 0, n), need(in, 1, n))}; };
}

TorchOp compile_binary(const Node& n, int64_t) {
  enum class Kind { Add, Sub, Mul, Div } kind = n.op_type == "Add"   ? Kind::Add
                                                : n.op_type == "Sub" ? Kind::Sub
                                                : n.op_type == "Mul" ? Kind::Mul
                                                                     : Kind::Div;
  return [n, kind](const Inputs& in) -> Outputs {
    const at::Tensor& a = need(in, 0, n);
    const at::Tensor& b = need(in, 1, n);
    switch (kind) {
      case Kind::Add: return {a + b};
      case Kind::Sub: return {a - b};
      case Kind::Mul: return {a * b};
      default:
        // Integer Div truncates in ONNX (shape arithmetic); floats divide.
        if (!at::isFloatingType(a.scalar_type()) && !at::isFloatingType(b.scalar_type())) return {at::div(a, b, "trunc")};
        return {a / b};
    }
  };
}

TorchOp compile_unary(const Node& n, int64_t) {
  const std::string op = n.op_type;
  const float alpha = n.attr_float("alpha", op == "LeakyRelu" ? 0.01f : 0.2f), beta = n.attr_float("beta", 0.5f);
  return [n, op, alpha, beta](const Inputs& in) -> Outputs {
    const at::Tensor& x = need(in, 0, n);
    if (op == "Relu") return {at::relu(x)};
    if (op == "Sigmoid") return {at::sigmoid(x)};
    if (op == "Tanh") return {at::tanh(x)};
    if (op == "Erf") return {at::erf(x)};
    if (op == "LeakyRelu") return {at::leaky_relu(x, alpha)};
    if (op == "HardSigmoid") return {at::clamp(x * alpha + beta, 0.0, 1.0)};
    return {x};  // Identity
  };
}

// Clip: bounds as inputs 1 and 2 (opset 11+) or min/max attributes (before).
TorchOp compile_clip(const Node& n, int64_t) {
  const Attribute* amin = n.find_attr("min");
  const Attribute* amax = n.find_attr("max");
  c10::optional<double> attr_lo, attr_hi;
  if (amin) attr_lo = amin->f;
  if (amax) attr_hi = amax->f;
  return [n, attr_lo, attr_hi](const Inputs& in) -> Outputs {
    c10::optional<at::Scalar> lo, hi;
    if (attr_lo) lo = *attr_lo;
    if (attr_hi) hi = *attr_hi;
    if (in.size() > 1 && in[1].defined()) lo = in[1].item<double>();
    if (in.size() > 2 && in[2].defined()) hi = in[2].item<double>();
    return {at::clamp(need(in, 0, n), lo, hi)};
  };
}

TorchOp compile_softmax(const Node& n, int64_t opset) {
  const int64_t axis_attr = n.attr_int("axis", opset >= 13 ? -1 : 1);
  return [n, axis_attr, opset](const Inputs& in) -> Outputs {
    const at::Tensor& x = need(in, 0, n);
    const int64_t axis = normalise_axis(axis_attr, x.dim(), n);
    if (opset >= 13) return {at::softmax(x, axis)};
    // Before opset 13 the input is seen as 2-D [prod(dims < axis), prod(dims >= axis)].
    int64_t outer = 1;
    for (int64_t d = 0; d < axis; ++d) outer *= x.size(d);
    return {at::softmax(x.reshape({outer, x.numel() / std::max<int64_t>(outer, 1)}), 1).reshape(x.sizes())};
  };
}

TorchOp compile_reshape(const Node& n, int64_t) {
  const bool allowzero = n.attr_int("allowzero", 0) != 0;
  return [n, allowzero](const Inputs& in) -> Outputs {
    const at::Tensor& x = need(in, 0, n);
    std::vector<int64_t> shape = to_ints(need(in, 1, n));
    for (size_t i = 0; i < shape.size(); ++i) {
      if (shape[i] == 0 && !allowzero) {
        if (static_cast<int64_t>(i) >= x.dim()) throw Error(n.label(), "a 0 in the shape has no input dimension to copy");
        shape[i] = x.size(static_cast<int64_t>(i));
      }
    }
    return {x.reshape(shape)};
  };
}

TorchOp compile_flatten(const Node& n, int64_t) {
  const int64_t axis_attr = n.attr_int("axis", 1);
  return [n, axis_attr](const Inputs& in) -> Outputs {
    const at::Tensor& x = need(in, 0, n);
    const int64_t axis = axis_attr < 0 ? axis_attr + x.dim() : axis_attr;
    if (axis < 0 || axis > x.dim()) throw Error(n.label(), "axis is out of range");
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < x.dim(); ++d) (d < axis ? outer : inner) *= x.size(d);
    return {x.reshape({outer, inner})};
  };
}

TorchOp compile_squeeze(const Node& n, int64_t) {
  return [n](const Inputs& in) -> Outputs {
    at::Tensor x = need(in, 0, n);
    bool given = false;
    std::vector<int64_t> axes = axes_of(n, in, 1, given);
    if (!given) {
      for (int64_t d = x.dim() - 1; d >= 0; --d)
        if (x.size(d) == 1) axes.push_back(d);
    }
    for (auto& a : axes) a = normalise_axis(a, x.dim(), n);
    std::sort(axes.rbegin(), axes.rend());
    for (int64_t a : axes) {
      if (x.size(a) != 1) throw Error(n.label(), "cannot squeeze a dimension of size " + std::to_string(x.size(a)));
      x = x.squeeze(a);
    }
    return {x};
  };
}

TorchOp compile_unsqueeze(const Node& n, int64_t) {
  return [n](const Inputs& in) -> Outputs {
    at::Tensor x = need(in, 0, n);
    bool given = false;
    std::vector<int64_t> axes = axes_of(n, in, 1, given);
    const int64_t rank = x.dim() + static_cast<int64_t>(axes.size());
    for (auto& a : axes) a = normalise_axis(a, rank, n);
    std::sort(axes.begin(), axes.end());
    for (int64_t a : axes) x = x.unsqueeze(a);
    return {x};
  };
}

TorchOp compile_transpose(const Node& n, int64_t) {
  const std::vector<int64_t> perm_attr = n.attr_ints("perm");
  return [n, perm_attr](const Inputs& in) -> Outputs {
    const at::Tensor& x = need(in, 0, n);
    std::vector<int64_t> perm = perm_attr;
    if (perm.empty())
      for (int64_t d = x.dim() - 1; d >= 0; --d) perm.push_back(d);
    return {x.permute(perm)};
  };
}

TorchOp compile_global_average_pool(const Node& n, int64_t) {
  return [n](const Inputs& in) -> Outputs {
    const at::Tensor& x = need(in, 0, n);
    if (x.dim() < 3) throw Error(n.label(), "GlobalAveragePool needs [N, C, spatial...]");
    std::vector<int64_t> dims;
    for (int64_t d = 2; d < x.dim(); ++d) dims.push_back(d);
    return {x.mean(dims, /*keepdim=*/true)};
  };
}

TorchOp compile_reduce_mean(const Node& n, int64_t) {
  const bool keepdims = n.attr_int("keepdims", 1) != 0;
  const bool noop_empty = n.attr_int("noop_with_empty_axes", 0) != 0;
  return [n, keepdims, noop_empty](const Inputs& in) -> Outputs {
    const at::Tensor& x = need(in, 0, n);
    bool given = false;
    std::vector<int64_t> axes = axes_of(n, in, 1, given);
    if (axes.empty()) {
      if (noop_empty) return {x};
      for (int64_t d = 0; d < x.dim(); ++d) axes.push_back(d);
    }
    for (auto& a : axes) a = normalise_axis(a, x.dim(), n);
    return {x.mean(axes, keepdims)};
  };
}

TorchOp compile_shape(const Node& n, int64_t) {
  const int64_t start_attr = n.attr_int("start", 0);
  const Attribute* end_attr = n.find_attr("end");
  const int64_t end_value = end_attr ? end_attr->i : std::numeric_limits<int64_t>::max();
  return [n, start_attr, end_value](const Inputs& in) -> Outputs {
    const at::Tensor& x = need(in, 0, n);
    const int64_t rank = x.dim();
    auto clamp = [rank](int64_t v) { return std::min(std::max(v < 0 ? v + rank : v, int64_t{0}), rank); };
    const int64_t start = clamp(start_attr), end = clamp(end_value);
    std::vector<int64_t> dims;
    for (int64_t d = start; d < end; ++d) dims.push_back(x.size(d));
    return {at::tensor(dims, at::TensorOptions().dtype(at::kLong))};
  };
}

TorchOp compile_gather(const Node& n, int64_t) {
  const int64_t axis_attr = n.attr_int("axis", 0);
  return [n, axis_attr](const Inputs& in) -> Outputs {
    const at::Tensor& data = need(in, 0, n);
    at::Tensor idx = need(in, 1, n).to(at::kLong);
    const int64_t axis = normalise_axis(axis_attr, data.dim(), n);
    idx = at::where(idx < 0, idx + data.size(axis), idx);
    at::Tensor picked = at::index_select(data, axis, idx.reshape({-1}));
    std::vector<int64_t> shape(data.sizes().begin(), data.sizes().begin() + axis);
    shape.insert(shape.end(), idx.sizes().begin(), idx.sizes().end());
    shape.insert(shape.end(), data.sizes().begin() + axis + 1, data.sizes().end());
    return {picked.reshape(shape)};
  };
}

TorchOp compile_concat(const Node& n, int64_t) {
  const Attribute* a = n.find_attr("axis");
  if (!a) throw Error(n.label(), "Concat needs an axis");
  const int64_t axis_attr = a->i;
  return [n, axis_attr](const Inputs& in) -> Outputs {
    std::vector<at::Tensor> parts;
    for (const auto& t : in)
      if (t.defined()) parts.push_back(t);
    if (parts.empty()) throw Error(n.label(), "Concat has no inputs");
    return {at::cat(parts, normalise_axis(axis_attr, parts[0].dim(), n))};
  };
}

TorchOp compile_constant(const Node& n, int64_t) {
  at::Tensor value;
  if (const Attribute* a = n.find_attr("value")) value = to_torch(a->t, n.label());
  else if (const Attribute* a = n.find_attr("value_float")) value = at::scalar_tensor(a->f, at::kFloat);
  else if (const Attribute* a = n.find_attr("value_floats")) value = at::tensor(a->floats, at::TensorOptions().dtype(at::kFloat));
  else if (const Attribute* a = n.find_attr("value_int")) value = at::scalar_tensor(a->i, at::kLong);
  else if (const Attribute* a = n.find_attr("value_ints")) value = at::tensor(a->ints, at::TensorOptions().dtype(at::kLong));
  else throw Error(n.label(), "Constant needs a value, value_float(s) or value_int(s) attribute");
  return [value](const Inputs&) -> Outputs { return {value}; };
}

struct TorchOpRow {
  const char* op_type;
  TorchOp (*compile)(const Node& node, int64_t opset);
};

// The ops of tinyq's real models (../shared/models/real: Conv, Gemm, Relu, Clip, Add, Sub, Div,
// Squeeze, ReduceMean, Shape, Concat, Reshape, Erf, Mul) and their usual company.
const std::vector<TorchOpRow>& torch_op_table() {
  static const std::vector<TorchOpRow> table = {
      {"Conv", compile_conv},
      {"Gemm", compile_gemm},
      {"MatMul", compile_matmul},
      {"Add", compile_binary},
      {"Sub", compile_binary},
      {"Mul", compile_binary},
      {"Div", compile_binary},
      {"Relu", compile_unary},
      {"LeakyRelu", compile_unary},
      {"Sigmoid", compile_unary},
      {"HardSigmoid", compile_unary},
      {"Tanh", compile_unary},
      {"Erf", compile_unary},
      {"Identity", compile_unary},
      {"Clip", compile_clip},
      {"Softmax", compile_softmax},
      {"Reshape", compile_reshape},
      {"Flatten", compile_flatten},
      {"Squeeze", compile_squeeze},
      {"Unsqueeze", compile_unsqueeze},
      {"Transpose", compile_transpose},
      {"GlobalAveragePool", compile_global_average_pool},
      {"ReduceMean", compile_reduce_mean},
      {"Shape", compile_shape},
      {"Gather", compile_gather},
      {"Concat", compile_concat},
      {"Constant", compile_constant},
  };
  return table;
}

}  // namespace

std::vector<std::string> trainer_op_types() {
  std::vector<std::string> out;
  for (const auto& row : torch_op_table()) out.emplace_back(row.op_type);
  return out;
}

TorchOp compile_torch_op(const Node& node, int64_t opset) {
  if (is_default_domain(node.domain))
    for (const auto& row : torch_op_table())
      if (node.op_type == row.op_type) return row.compile(node, opset);
  throw Error(node.label(), "QAT cannot train this op (domain '" + node.domain + "')");
}

at::Tensor to_torch(const Tensor& t, const std::string& subject) {
  std::vector<int64_t> shape(t.shape().begin(), t.shape().end());
  switch (t.dtype()) {
    case DType::F32:
      return at::from_blob(const_cast<void*>(t.raw()), shape, at::kFloat).clone();
    case DType::I64:
      return at::from_blob(const_cast<void*>(t.raw()), shape, at::kLong).clone();
    case DType::I32:
      return at::from_blob(const_cast<void*>(t.raw()), shape, at::kInt).clone();
    default:
      throw Error(subject, std::string("QAT cannot use a ") + dtype_name(t.dtype()) + " tensor (float32, int64, int32 only)");
  }
}

}  // namespace tinyq::qat
