// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

#include "qat/mlp_graph.h"

#include <string>

#include "tinyq/error.h"

namespace tinyq::qat {

std::vector<std::string> mlp_tensor_names(const MlpSpec& spec) {
  // Must follow MlpTrainer's forward order: input, scaled, (gemm_i, relu_i)*, gemm_last?, output.
  std::vector<std::string> names = {spec.input_name, "scaled"};
  for (size_t i = 0; i < spec.hidden.size(); ++i) {
    names.push_back("gemm_" + std::to_string(i));
    names.push_back("relu_" + std::to_string(i));
  }
  if (spec.squeeze) names.push_back("gemm_" + std::to_string(spec.hidden.size()));
  names.push_back(spec.output_name);
  return names;
}

namespace {

ValueInfo float_info(const std::string& name, std::vector<Dim> dims) {
  ValueInfo v;
  v.name = name;
  v.dtype = DType::F32;
  v.has_shape = true;
  v.dims = std::move(dims);
  return v;
}

Dim batch_dim() {
  Dim d;
  d.param = "batch";
  return d;
}

Dim fixed(int64_t v) {
  Dim d;
  d.value = v;
  return d;
}

Node make_node(const std::string& op, const std::string& name, std::vector<std::string> inputs,
               std::vector<std::string> outputs) {
  Node n;
  n.op_type = op;
  n.name = name;
  n.inputs = std::move(inputs);
  n.outputs = std::move(outputs);
  return n;
}

}  // namespace

Model build_mlp_model(const MlpSpec& spec, const std::vector<LayerWeights>& layers) {
  if (layers.size() != spec.hidden.size() + 1) throw Error("qat", "layer count does not match the MLP spec");
  std::vector<std::string> names = mlp_tensor_names(spec);
  Model m;
  m.ir_version = 8;
  m.producer_name = "tinyq-qat";
  m.opset_imports.push_back({"", 13});
  Graph& g = m.graph;
  g.name = "mlp";
  g.inputs.push_back(float_info(spec.input_name, {batch_dim(), fixed(spec.inputs)}));
  g.initializers.push_back({"scaler_mean", Tensor::from_vector<float>({1, spec.inputs}, spec.mean), ""});
  g.initializers.push_back({"scaler_std", Tensor::from_vector<float>({1, spec.inputs}, spec.stddev), ""});
  g.nodes.push_back(make_node("Sub", "scaler_sub", {spec.input_name, "scaler_mean"}, {"centered"}));
  g.nodes.push_back(make_node("Div", "scaler_div", {"centered", "scaler_std"}, {"scaled"}));
  size_t k = 2;  // next name in `names`
  std::string current = "scaled";
  for (size_t i = 0; i < layers.size(); ++i) {
    const LayerWeights& l = layers[i];
    std::string w = "fc" + std::to_string(i) + ".weight", b = "fc" + std::to_string(i) + ".bias";
    g.initializers.push_back({w, Tensor::from_vector<float>({l.out, l.in}, l.weight), ""});
    g.initializers.push_back({b, Tensor::from_vector<float>({l.out}, l.bias), ""});
    Node gemm = make_node("Gemm", "fc" + std::to_string(i), {current, w, b}, {names[k++]});
    gemm.set_attr(Attribute::make_int("transB", 1));
    current = gemm.outputs[0];
    g.nodes.push_back(std::move(gemm));
    if (i + 1 < layers.size()) {
      g.nodes.push_back(make_node("Relu", "relu" + std::to_string(i), {current}, {names[k++]}));
      current = g.nodes.back().outputs[0];
    }
  }
  if (spec.squeeze) {
    g.initializers.push_back({"squeeze_axes", Tensor::from_vector<int64_t>({1}, {1}), ""});
    g.nodes.push_back(make_node("Squeeze", "squeeze", {current, "squeeze_axes"}, {names[k++]}));
    g.outputs.push_back(float_info(spec.output_name, {batch_dim()}));
  } else {
    g.outputs.push_back(float_info(spec.output_name, {batch_dim(), fixed(1)}));
  }
  return m;
}

}  // namespace tinyq::qat
