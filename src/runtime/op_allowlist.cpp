// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include "runtime/op_allowlist.h"

#include <algorithm>

namespace tinyq::rt {

const std::vector<std::string>& op_allowlist() {
  static const std::vector<std::string> list = {
      // The fork's fp32 allowlist.
      "Identity", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Concat", "Slice",
      "Gather", "Cast", "Shape", "Expand", "Add", "Sub", "Mul", "Div", "Neg", "Abs", "Sqrt", "Pow",
      "Exp", "Log", "Clip", "Min", "Max", "Sum", "Mean", "ReduceMean", "ReduceSum", "ReduceMax",
      "ReduceMin", "ReduceProd", "GlobalAveragePool", "GlobalMaxPool", "Gemm", "MatMul", "Conv",
      "ConvTranspose", "MaxPool", "AveragePool", "Resize", "BatchNormalization",
      "LayerNormalization", "InstanceNormalization", "Relu", "LeakyRelu", "Sigmoid", "Tanh",
      "Softmax", "Elu", "Selu", "Softplus", "Softsign", "Gelu", "Erf", "HardSigmoid", "HardSwish",
      "PRelu", "Dropout", "Constant", "ConstantOfShape", "Pad", "Reciprocal", "GatherND",
      "ScatterND", "BitShift",
      // What dynamic, static (QDQ) and QAT quantisation emit.
      "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "MatMulInteger",
      "ConvInteger", "QLinearMatMul", "QLinearConv",
  };
  return list;
}

bool op_allowed(const std::string& op_type) {
  const auto& list = op_allowlist();
  return std::find(list.begin(), list.end(), op_type) != list.end();
}


}  // namespace tinyq::rt
