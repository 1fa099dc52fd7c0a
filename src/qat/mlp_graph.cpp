// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

#include "qat/mlp_graph.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <set>
#include <string>

#include "qat/architectures.h"
#include "qat/graph_build.h"
#include "tinyq/error.h"

namespace tinyq::qat {

std::vector<std::string> mlp_tensor_names(const MlpSpec& spec) {
  // Must follow build_mlp_model's node order: input, scaled, (gemm_i, relu_i)*, gemm_last?, output.
  std::vector<std::string> names = {spec.input_name, "scaled"};
  for (size_t i = 0; i < spec.hidden.size(); ++i) {
    names.push_back("gemm_" + std::to_string(i));
    names.push_back("relu_" + std::to_string(i));
  }
  if (spec.squeeze) names.push_back("gemm_" + std::to_string(spec.hidden.size()));
  names.push_back(spec.output_name);
  return names;
}

Model build_mlp_model(const MlpSpec& spec, const std::vector<LayerWeights>& layers) {
  if (layers.size() != spec.hidden.size() + 1) throw Error("qat", "layer count does not match the MLP spec");
  std::vector<std::string> names = mlp_tensor_names(spec);
  Model m = new_model("mlp");
  Graph& g = m.graph;
  g.inputs.push_back(float_value(spec.input_name, {-1, spec.inputs}));
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
    g.outputs.push_back(float_value(spec.output_name, {-1}));
  } else {
    g.outputs.push_back(float_value(spec.output_name, {-1, 1}));
  }
  return m;
}

std::vector<int64_t> mlp_smoke_shape(const QatConfig& c) {
  int64_t features = c.input_shape.size() >= 2 ? c.input_shape.back() : 6;
  if (features < 1 || features > 4096) throw Error("qat", "qat.input_shape's feature count must be in [1, 4096]");
  return {features};
}

Model build_mlp(const QatConfig& c, const Dataset& train, uint64_t seed) {
  for (int64_t h : c.hidden)
    if (h < 1 || h > 4096) throw Error("qat", "model_args.hidden sizes must be in [1, 4096]");
  if (train.sample_shape.size() != 1)
    throw Error("qat", "mlp takes rows of features ([N, features]); the data's rows are " +
                           shape_to_string(train.sample_shape));
  MlpSpec spec;
  spec.inputs = train.sample_size;
  spec.hidden = c.hidden;
  spec.squeeze = c.squeeze;
  spec.input_name = c.input_name;
  spec.output_name = c.output_name;
  // The input scaler: per-feature mean and standard deviation of the training rows.
  spec.mean.assign(static_cast<size_t>(spec.inputs), 0.0f);
  spec.stddev.assign(static_cast<size_t>(spec.inputs), 1.0f);
  for (int64_t f = 0; f < spec.inputs; ++f) {
    double s = 0, ss = 0;
    for (int64_t r = 0; r < train.rows; ++r) {
      double v = train.x[static_cast<size_t>(r * spec.inputs + f)];
      s += v;
      ss += v * v;
    }
    double mean = s / train.rows, var = std::max(0.0, ss / train.rows - mean * mean);
    spec.mean[f] = static_cast<float>(mean);
    spec.stddev[f] = var > 1e-12 ? static_cast<float>(std::sqrt(var)) : 1.0f;
  }
  const std::vector<std::string> names = mlp_tensor_names(spec);
  if (std::set<std::string>(names.begin(), names.end()).size() != names.size())
    throw Error("qat", "input_name and output_name must differ from each other and from the internal tensor names");
  // libtorch's Linear initialisation: weights and biases from U(-1/sqrt(in), 1/sqrt(in)).
  std::mt19937_64 rng(seed);
  std::vector<LayerWeights> layers;
  int64_t in = spec.inputs;
  std::vector<int64_t> outs = spec.hidden;
  outs.push_back(1);
  for (int64_t out : outs) {
    const float bound = 1.0f / std::sqrt(static_cast<float>(in));
    std::uniform_real_distribution<float> uniform(-bound, bound);
    LayerWeights l;
    l.out = out;
    l.in = in;
    l.weight.resize(static_cast<size_t>(out * in));
    l.bias.resize(static_cast<size_t>(out));
    for (auto& v : l.weight) v = uniform(rng);
    for (auto& v : l.bias) v = uniform(rng);
    layers.push_back(std::move(l));
    in = out;
  }
  return build_mlp_model(spec, layers);
}

}  // namespace tinyq::qat
