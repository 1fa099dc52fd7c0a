// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

#include "qat/graph_build.h"

#include <cmath>

namespace tinyq::qat {

Model new_model(const std::string& graph_name) {
  Model m;
  m.ir_version = 8;
  m.producer_name = "tinyq-qat";
  m.opset_imports.push_back({"", 13});
  m.graph.name = graph_name;
  return m;
}

ValueInfo float_value(const std::string& name, const std::vector<int64_t>& dims) {
  ValueInfo v;
  v.name = name;
  v.dtype = DType::F32;
  v.has_shape = true;
  for (int64_t d : dims) {
    Dim dim;
    if (d >= 0) dim.value = d;
    else dim.param = "batch";
    v.dims.push_back(dim);
  }
  return v;
}

ValueInfo image_value(const std::string& name, int64_t channels) {
  ValueInfo v = float_value(name, {-1, channels, 0, 0});
  v.dims[2] = Dim{-1, "height"};
  v.dims[3] = Dim{-1, "width"};
  return v;
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

void add_uniform(Graph& g, const std::string& name, const Shape& shape, int64_t fan_in, std::mt19937_64& rng) {
  const float bound = 1.0f / std::sqrt(static_cast<float>(std::max<int64_t>(fan_in, 1)));
  std::uniform_real_distribution<float> uniform(-bound, bound);
  std::vector<float> v(static_cast<size_t>(shape_numel(shape)));
  for (auto& x : v) x = uniform(rng);
  g.initializers.push_back({name, Tensor::from_vector<float>(shape, v), ""});
}

std::string add_conv(Graph& g, const std::string& name, const std::string& input, int64_t in, int64_t out,
                     int64_t k, int64_t stride, int64_t group, std::mt19937_64& rng, ConvInit init) {
  const int64_t fan_in = in / group * k * k;
  if (init == ConvInit::He) {
    // add_uniform's bound is 1/sqrt(fan_in); He's is sqrt(6/fan_in) = that bound for fan_in / 6.
    add_uniform(g, name + ".weight", {out, in / group, k, k}, 0, rng);
    Tensor& w = g.initializers.back().tensor;
    const float scale = std::sqrt(6.0f / static_cast<float>(fan_in));
    for (int64_t i = 0; i < w.numel(); ++i) w.data<float>()[i] *= scale;
    g.initializers.push_back({name + ".bias", Tensor::from_vector<float>({out}, std::vector<float>(static_cast<size_t>(out), 0.0f)), ""});
  } else {
    add_uniform(g, name + ".weight", {out, in / group, k, k}, fan_in, rng);
    add_uniform(g, name + ".bias", {out}, fan_in, rng);
  }
  Node conv = make_node("Conv", name, {input, name + ".weight", name + ".bias"}, {name + "_out"});
  conv.set_attr(Attribute::make_ints("kernel_shape", {k, k}));
  conv.set_attr(Attribute::make_ints("pads", {k / 2, k / 2, k / 2, k / 2}));
  conv.set_attr(Attribute::make_ints("strides", {stride, stride}));
  if (group != 1) conv.set_attr(Attribute::make_int("group", group));
  g.nodes.push_back(std::move(conv));
  return name + "_out";
}

}  // namespace tinyq::qat
