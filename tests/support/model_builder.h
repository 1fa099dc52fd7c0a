// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// Builds small ONNX models in tests (one op, or a short chain) so each op can be checked
// against ONNX Runtime on the same file.

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

}  // namespace tinyq::test
