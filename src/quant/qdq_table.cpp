// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include "quant/qdq_table.h"

#include <algorithm>
#include <limits>

#include "quant/weight_quant.h"

namespace tinyq::quant {
namespace {

const std::string& in(const Node& n, size_t i) { return n.input(i); }
const std::string& out0(const Node& n) {
  static const std::string kNone;
  return n.outputs.empty() ? kNone : n.outputs[0];
}

// A constant weight that would poison its scale keeps the whole node fp32.
std::string weight_check(const QdqWriter& w, const Node& n, size_t index) {
  if (!n.has_input(index)) return "has no weight input";
  if (const Tensor* c = w.constant(n.input(index))) return weight_problem(*c);
  return "";
}

// Conv (weight [M, C/group, k...], output channels on axis 0) and ConvTranspose (weight
// [C, M/group, k...], output channels on axis 1).
std::string quantise_conv_like(QdqWriter& w, const Node& n, bool transposed) {
  std::string why = weight_check(w, n, 1);
  if (!why.empty()) return why;
  w.mark_activation(in(n, 0));
  w.mark_activation(out0(n));
  int axis = -1;
  if (w.per_channel() && w.constant(in(n, 1))) {
    // A grouped ConvTranspose has M/group channels on axis 1 but M biases: per tensor then.
    axis = transposed ? (n.attr_int("group", 1) == 1 ? 1 : -1) : 0;
  }
  w.mark_weight(in(n, 1), axis);
  if (n.has_input(2)) w.mark_bias(in(n, 2), in(n, 0), in(n, 1));
  return "";
}

std::string quantise_conv(QdqWriter& w, const Node& n, size_t) { return quantise_conv_like(w, n, false); }
std::string quantise_conv_transpose(QdqWriter& w, const Node& n, size_t) { return quantise_conv_like(w, n, true); }

// Gemm: Y = alpha * A' B' + beta * C. The weight's output channels are its rows when transB,
// else its columns. The bias keeps the scale input x weight and Gemm keeps beta. (ONNX Runtime
// quantises C at scale input x weight x beta, so its DequantizeLinear gives back C itself, and
// then sets beta to 1: the result loses its beta whenever beta != 1.)
std::string quantise_gemm(QdqWriter& w, const Node& n, size_t) {
  std::string why = weight_check(w, n, 1);
  if (!why.empty()) return why;
  w.mark_activation(in(n, 0));
  w.mark_activation(out0(n));
  const Tensor* b = w.constant(in(n, 1));
  const int axis = w.per_channel() && b && b->rank() == 2 ? (n.attr_int("transB", 0) ? 0 : 1) : -1;
  w.mark_weight(in(n, 1), axis);
  if (n.has_input(2) && w.constant(in(n, 2))) w.mark_bias(in(n, 2), in(n, 0), in(n, 1));
  return "";
}

// MatMul: a constant B is a weight (per channel along its last axis, the output columns);
// anything else is an activation.
std::string quantise_matmul(QdqWriter& w, const Node& n, size_t) {
  for (size_t i = 0; i < 2 && i < n.inputs.size(); ++i) {
    const Tensor* c = w.constant(in(n, i));
    if (c && !weight_problem(*c).empty()) return "constant input '" + in(n, i) + "': " + weight_problem(*c);
  }
  for (size_t i = 0; i < 2 && i < n.inputs.size(); ++i) {
    if (const Tensor* c = w.constant(in(n, i))) {
      const int axis = w.per_channel() && i == 1 && c->rank() >= 2 ? static_cast<int>(c->rank()) - 1 : -1;
      w.mark_weight(in(n, i), axis);
    } else {
      w.mark_activation(in(n, i));
    }
  }
  w.mark_activation(out0(n));
  return "";
}

// Constant bounds of a Clip (inputs from opset 11, attributes before); false when a bound is
// computed at run time.
bool clip_bounds(const QdqWriter& w, const Node& n, float& lo, float& hi) {
  lo = n.attr_float("min", -std::numeric_limits<float>::max());
  hi = n.attr_float("max", std::numeric_limits<float>::max());
  for (size_t i = 1; i <= 2; ++i) {
    if (!n.has_input(i)) continue;
    const Tensor* c = w.constant(in(n, i));
    if (!c || c->dtype() != DType::F32 || c->numel() != 1) return false;
    (i == 1 ? lo : hi) = c->data<float>()[0];
  }
  return true;
}

// Relu and Clip: folded into the producer's Q/DQ when the producer's output goes nowhere else
// (the quantised range of the activation's output starts at the clip, so Q does the clipping).
// ONNX Runtime folds every Clip; tinyq only folds bounds that hold 0 (Q/DQ ranges always
// include 0, so a Clip excluding 0 would stop clipping).
std::string quantise_removable(QdqWriter& w, const Node& n, size_t index) {
  if (!w.is_marked(in(n, 0))) return "its input is not quantised";
  bool foldable = true;
  if (n.op_type == "Clip") {
    float lo = 0, hi = 0;
    foldable = clip_bounds(w, n, lo, hi) && lo <= 0.0f && hi >= 0.0f;
  }
  if (!(foldable && w.try_fold(in(n, 0), out0(n), index))) w.mark_activation(in(n, 0));
  w.mark_activation(out0(n));
  return "";
}

// Data movement (Reshape, Transpose, Squeeze, pooling, ...): the output reuses the input's
// scale and zero point, when the input is quantised.
std::string quantise_direct(QdqWriter& w, const Node& n, size_t) {
  if (!w.is_marked(in(n, 0))) return "its input is not quantised";
  w.mark_shared(out0(n), in(n, 0));
  return "";
}

// Gather / GatherElements: constant data (an embedding table) is quantised; the output shares
// the data's parameters.
std::string quantise_gather(QdqWriter& w, const Node& n, size_t) {
  const Tensor* c = w.constant(in(n, 0));
  if (c && c->dtype() == DType::F32) {
    w.mark_activation(in(n, 0));
  } else if (!w.is_marked(in(n, 0))) {
    return "its data input is not quantised";
  }
  w.mark_shared(out0(n), in(n, 0));
  return "";
}

// Split: the input is quantised and every output shares its parameters.
std::string quantise_split(QdqWriter& w, const Node& n, size_t) {
  w.mark_activation(in(n, 0));
  for (const auto& o : n.outputs) w.mark_shared(o, in(n, 0));
  return "";
}

// Everything else on the list: Q/DQ on every float input and output.
std::string quantise_default(QdqWriter& w, const Node& n, size_t) {
  for (const auto& i : n.inputs) w.mark_activation(i);
  for (const auto& o : n.outputs) w.mark_activation(o);
  return "";
}

}  // namespace

const std::vector<QdqOpQuantiser>& qdq_quantisers() {
  static const std::vector<QdqOpQuantiser> table = {
      {"Conv", quantise_conv},
      {"ConvTranspose", quantise_conv_transpose},
      {"Gemm", quantise_gemm},
      {"MatMul", quantise_matmul},
      {"Relu", quantise_removable},
      {"Clip", quantise_removable},
      {"Reshape", quantise_direct},
      {"Transpose", quantise_direct},
      {"Squeeze", quantise_direct},
      {"Unsqueeze", quantise_direct},
      {"MaxPool", quantise_direct},
      {"AveragePool", quantise_direct},
      {"Resize", quantise_direct},
      {"Slice", quantise_direct},
      {"TopK", quantise_direct},
      {"Gather", quantise_gather},
      {"GatherElements", quantise_gather},
      {"Split", quantise_split},
      {"Add", quantise_default},
      {"Mul", quantise_default},
      {"Sigmoid", quantise_default},
      {"LeakyRelu", quantise_default},
      {"GlobalAveragePool", quantise_default},
      {"Concat", quantise_default},
      {"Softmax", quantise_default},
      {"ArgMax", quantise_default},
  };
  return table;
}

const QdqOpQuantiser* find_qdq_quantiser(const std::string& op_type) {
  for (const auto& row : qdq_quantisers())
    if (op_type == row.op_type) return &row;
  return nullptr;
}

void adjust_ranges(const Graph& g, std::map<std::string, TensorRange>& ranges, const std::vector<std::string>& skip) {
  auto skipped = [&](const Node& n) { return std::find(skip.begin(), skip.end(), n.name) != skip.end(); };
  for (const Node& n : g.nodes) {
    if (!n.domain.empty() && n.domain != "ai.onnx") continue;
    if ((n.op_type == "Relu" || n.op_type == "Clip") && !skipped(n) && !n.inputs.empty() && !n.outputs.empty()) {
      size_t readers = 0;
      for (const Node& m : g.nodes)
        for (const auto& i : m.inputs) readers += i == n.inputs[0];
      auto src = ranges.find(n.inputs[0]);
      auto dst = ranges.find(n.outputs[0]);
      if (readers == 1 && src != ranges.end() && dst != ranges.end()) src->second = dst->second;
    } else if (n.op_type == "Softmax" && !skipped(n) && !n.outputs.empty()) {
      auto it = ranges.find(n.outputs[0]);
      if (it != ranges.end()) {
        it->second.min = 0.0f;
        it->second.max = 1.0f;
      }
    }
  }
}

}  // namespace tinyq::quant
