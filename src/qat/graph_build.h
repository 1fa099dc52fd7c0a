// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// Small helpers the built-in architectures use to write their graphs in tinyq's IR, and their
// weights' initialisation (libtorch's default for Linear and Conv layers, so a built-in starts
// where the same PyTorch module would).

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "tinyq/model.h"

namespace tinyq::qat {

/// An empty opset-13 model (Squeeze axes as an input, per-channel DequantizeLinear).
Model new_model(const std::string& graph_name);

/// A float32 value with dims: >= 0 fixed, -1 the symbolic batch dimension.
ValueInfo float_value(const std::string& name, const std::vector<int64_t>& dims);

/// A float32 image [batch, channels, height, width], height and width symbolic: the built-in
/// conv nets are fully convolutional, so their files run at any frame size.
ValueInfo image_value(const std::string& name, int64_t channels);

Node make_node(const std::string& op, const std::string& name, std::vector<std::string> inputs,
               std::vector<std::string> outputs);

/// Appends an initializer of `shape` drawn from U(-1/sqrt(fan_in), 1/sqrt(fan_in)), libtorch's
/// default for both the weights (kaiming_uniform with a = sqrt(5)) and the biases of Linear and
/// Conv layers.
void add_uniform(Graph& g, const std::string& name, const Shape& shape, int64_t fan_in, std::mt19937_64& rng);

/// How a conv layer's weights start.
enum class ConvInit {
  TorchDefault,  ///< add_uniform for weights and bias
  /// He (kaiming) uniform for ReLU nets, U(-sqrt(6/fan_in), sqrt(6/fan_in)), zero bias: keeps the
  /// activations' scale through a deep stack that has no normalisation layers.
  He,
};

/// Appends a Conv node (square kernel `k`, padding k/2) with its weight `<name>.weight`
/// [out, in/group, k, k] and bias `<name>.bias`; returns its output name `<name>_out`.
std::string add_conv(Graph& g, const std::string& name, const std::string& input, int64_t in, int64_t out,
                     int64_t k, int64_t stride, int64_t group, std::mt19937_64& rng,
                     ConvInit init = ConvInit::TorchDefault);

}  // namespace tinyq::qat
