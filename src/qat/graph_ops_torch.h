// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// ONNX ops as libtorch (ATen) calls, for the QAT trainer; included by the *_torch.cpp files only.
// Each op is compiled once per node (attributes parsed and checked) into a function of its
// inputs; inputs that ONNX passes as tensors (Reshape's shape, Squeeze's axes, Clip's bounds)
// are read when the op runs, so a computed shape works as well as a constant one.

#include <ATen/ATen.h>

#include <functional>
#include <string>
#include <vector>

#include "tinyq/model.h"

namespace tinyq::qat {

/// A compiled node: inputs in the node's order (an omitted optional input is an undefined
/// tensor), outputs in the node's order.
using TorchOp = std::function<std::vector<at::Tensor>(const std::vector<at::Tensor>& inputs)>;

/// Compiles `node` for a model of default-domain opset `opset`; Error(node label, ...) for an
/// op or attribute value the trainer does not support.
TorchOp compile_torch_op(const Node& node, int64_t opset);

/// A tinyq tensor as a torch tensor (a copy): float32, int64 and int32 only.
at::Tensor to_torch(const Tensor& t, const std::string& subject);

}  // namespace tinyq::qat
