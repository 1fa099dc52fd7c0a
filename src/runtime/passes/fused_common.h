// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// Helpers the internal fused ops share: reading a per-channel (or per-column) constant whose
// shape broadcasts along one output axis, the activation, and the broadcasting fallback for a
// residual whose shape is not the output's.

#include <cstdint>
#include <limits>
#include <string>
#include <unordered_map>
#include <vector>

#include "runtime/broadcast.h"
#include "runtime/passes/fused_ops.h"
#include "tinyq/error.h"
#include "tinyq/tensor.h"

namespace tinyq::rt::passes {

/// True when `shape`, right-aligned against an output of rank `out_rank`, is 1 everywhere
/// except (possibly) at output axis `axis`, and no longer than the output. Such a constant
/// holds one value per index of that axis (or one value), in order.
inline bool per_axis_shape(const Shape& shape, size_t out_rank, size_t axis) {
  if (shape.size() > out_rank) return false;
  const size_t lead = out_rank - shape.size();
  for (size_t i = 0; i < shape.size(); ++i)
    if (lead + i != axis && shape[i] != 1) return false;
  return true;
}

/// A fused node's constant input i (weights, scales), or the node fails.
inline const Tensor& constant_input(const OpContext& ctx, size_t i, const char* what) {
  const Tensor* t = ctx.constant(i);
  if (!t) ctx.fail(std::string(what) + " must be constant");
  return *t;
}

/// The values of a per-axis constant expanded to `count` entries (one value repeats).
inline std::vector<float> per_axis_values(const Tensor& t, int64_t count, const std::string& what) {
  if (t.dtype() != DType::F32) throw Error(what + " must be float, is " + dtype_name(t.dtype()));
  std::vector<float> v = t.to_vector<float>();
  if (static_cast<int64_t>(v.size()) == count) return v;
  if (v.size() == 1) return std::vector<float>(static_cast<size_t>(count), v[0]);
  throw Error(what + " has " + std::to_string(v.size()) + " values, expected 1 or " + std::to_string(count));
}

/// y = act(y) in place; NaN passes through as Relu and Clip pass it.
inline void apply_activation(float* y, int64_t n, const Activation& a) {
  if (!a.on) return;
  for (int64_t i = 0; i < n; ++i) {
    float v = y[i] < a.lo ? a.lo : y[i];
    y[i] = v > a.hi ? a.hi : v;
  }
}

/// act(y + r) with numpy broadcasting, as a new tensor of the broadcast shape.
inline Tensor add_broadcast(const Tensor& y, const Tensor& r, const Activation& a) {
  if (r.dtype() != DType::F32) throw Error(std::string("the residual must be float, is ") + dtype_name(r.dtype()));
  const Shape out_shape = broadcast_shapes(y.shape(), r.shape());
  Tensor out(DType::F32, out_shape);
  BroadcastRows rows(out_shape, {y.shape(), r.shape()});
  const float* py = y.data<float>();
  const float* pr = r.data<float>();
  float* po = out.data<float>();
  const int64_t sy = rows.row_stride(0), sr = rows.row_stride(1), len = rows.row_length();
  rows.for_each_row([&](int64_t o, const int64_t* in) {
    for (int64_t i = 0; i < len; ++i) po[o + i] = py[in[0] + i * sy] + pr[in[1] + i * sr];
  });
  apply_activation(po, out.numel(), a);
  return out;
}

/// The sub-graph a program op (Mlp, ConvChain) runs, and its constants by name: every input
/// but X (input 0) must be constant; the op is refused otherwise.
struct FusedProgram {
  const Graph* graph = nullptr;
  std::unordered_map<std::string, const Tensor*> consts;
};
inline FusedProgram fused_program(const OpContext& ctx) {
  const Attribute* prog = ctx.node.find_attr("program");
  if (!prog || prog->kind != Attribute::Kind::Graph || !prog->g) ctx.fail("needs its program");
  FusedProgram p;
  p.graph = prog->g.get();
  for (size_t i = 1; i < ctx.node.inputs.size(); ++i) {
    if (!ctx.constant(i)) ctx.fail("input " + std::to_string(i) + " must be constant");
    p.consts[ctx.node.inputs[i]] = ctx.constant(i);
  }
  return p;
}

}  // namespace tinyq::rt::passes
