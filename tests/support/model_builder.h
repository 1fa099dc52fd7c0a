// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// Builds small ONNX models in tests (one op, or a short chain) so each op can be checked
// against ONNX Runtime on the same file.

#include <random>
#include <string>
#include <vector>

#include "tinyq/model.h"

namespace tinyq::test {

struct ModelBuilder {
  Model model;

  explicit ModelBuilder(int64_t opset = 17, int64_t ir_version = 8) {
    model.ir_version = ir_version;
    model.producer_name = "tinyq-tests";
    model.opset_imports.push_back({"", opset});
    model.graph.name = "test";
  }
  /// A graph input with a fully known shape taken from `example`.
  ModelBuilder& input(const std::string& name, DType dtype, const Shape& shape) {
    ValueInfo v;
    v.name = name;
    v.dtype = dtype;
    v.has_shape = true;
    for (int64_t d : shape) v.dims.push_back(Dim{d, ""});
    model.graph.inputs.push_back(v);
    return *this;
  }
  ModelBuilder& initializer(const std::string& name, const Tensor& t) {
    model.graph.initializers.push_back(Initializer{name, t, ""});
    return *this;
  }
  /// A graph output with a type and unknown shape.
  ModelBuilder& output(const std::string& name, DType dtype = DType::F32) {
    ValueInfo v;
    v.name = name;
    v.dtype = dtype;
    model.graph.outputs.push_back(v);
    return *this;
  }
  ModelBuilder& node(const std::string& op_type, std::vector<std::string> inputs,
                     std::vector<std::string> outputs, std::vector<Attribute> attrs = {}) {
    Node n;
    n.op_type = op_type;
    n.name = op_type + "_" + std::to_string(model.graph.nodes.size());
    n.inputs = std::move(inputs);
    n.outputs = std::move(outputs);
    n.attributes = std::move(attrs);
    model.graph.nodes.push_back(std::move(n));
    return *this;
  }
};

/// Uniform float32 values in [lo, hi).
inline Tensor random_f32(std::mt19937& rng, const Shape& shape, float lo = -1.0f, float hi = 1.0f) {
  Tensor t(DType::F32, shape);
  std::uniform_real_distribution<float> d(lo, hi);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = d(rng);
  return t;
}

/// Uniform int8 values in [-127, 127] (symmetric weights, as the quantisers write them).
inline Tensor random_int8(std::mt19937& rng, const Shape& shape) {
  Tensor t(DType::I8, shape);
  std::uniform_int_distribution<int> d(-127, 127);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<int8_t>()[i] = static_cast<int8_t>(d(rng));
  return t;
}

/// A convolution as ONNX Runtime's quantize_dynamic writes it, with random int8 weights
/// (w_shape, scale w_scale) and a random bias [1, M, 1, 1]: DynamicQuantizeLinear ->
/// ConvInteger (pads 1) -> Cast -> Mul -> Add(bias) [-> Add(residual)] -> Relu, writing y.
inline void add_dynamic_conv_relu(ModelBuilder& mb, std::mt19937& rng, const std::string& x, const std::string& y,
                                  const Shape& w_shape, float w_scale, int64_t group = 1,
                                  std::vector<int64_t> strides = {1, 1}, const std::string& residual = "") {
  const std::string p = y + "_";
  mb.initializer(p + "w", random_int8(rng, w_shape)).initializer(p + "wz", Tensor::scalar<int8_t>(0));
  mb.initializer(p + "ws", Tensor::scalar<float>(w_scale)).initializer(p + "b", random_f32(rng, {1, w_shape[0], 1, 1}));
  mb.node("DynamicQuantizeLinear", {x}, {p + "q", p + "s", p + "z"});
  mb.node("Mul", {p + "s", p + "ws"}, {p + "scale"});
  mb.node("ConvInteger", {p + "q", p + "w", p + "z", p + "wz"}, {p + "acc"},
          {Attribute::make_ints("pads", {1, 1, 1, 1}), Attribute::make_ints("strides", std::move(strides)),
           Attribute::make_int("group", group)});
  mb.node("Cast", {p + "acc"}, {p + "f"}, {Attribute::make_int("to", 1)});
  mb.node("Mul", {p + "f", p + "scale"}, {p + "scaled"});
  mb.node("Add", {p + "scaled", p + "b"}, {p + "biased"});
  std::string cur = p + "biased";
  if (!residual.empty()) {
    mb.node("Add", {cur, residual}, {p + "res"});
    cur = p + "res";
  }
  mb.node("Relu", {cur}, {y});
}

}  // namespace tinyq::test
