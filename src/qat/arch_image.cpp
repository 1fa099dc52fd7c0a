// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// The built-in conv nets, shaped after the fork's models so their exports have the same op kinds:
//   learned_filter (learned_filter_v1): entry 3x3 Conv, num_blocks residual blocks
//     x + Conv(Relu(Conv(x))), an exit 3x3 Conv back to the image channels, a global residual
//     Add of the input and a Clip to [0, 1].
//   nr_metric (nr_metric_v1): a stride-2 3x3 stem Conv + ReLU6 (Clip 0..6), num_blocks
//     MobileNet blocks (depthwise 3x3 + ReLU6, pointwise 1x1 + ReLU6; the even blocks have stride
//     2 and double the channels), GlobalAveragePool, Flatten, a linear head (Gemm) and a Squeeze
//     to one score per image. (The fork's file pools with ReduceMean and reshapes through
//     Shape/Concat; GlobalAveragePool + Flatten is the same maths in ops the QDQ exporter quantises.)
// With the defaults (width 16; 4 and 5 blocks) both match the fork's layer sizes.

#include <random>

#include "qat/architectures.h"
#include "qat/graph_build.h"
#include "tinyq/error.h"

namespace tinyq::qat {

namespace {

struct ImageArgs {
  int64_t channels, width, blocks;
};

ImageArgs image_args(const QatConfig& c, const Dataset& train, int64_t default_blocks) {
  if (train.sample_shape.size() != 3)
    throw Error("qat", c.model + " takes images ([N, channels, height, width]); the data's rows are " +
                           shape_to_string(train.sample_shape));
  ImageArgs a{train.sample_shape[0], c.width, c.num_blocks > 0 ? c.num_blocks : default_blocks};
  if (c.channels > 0 && c.channels != a.channels)
    throw Error("qat", "model_args.channels is " + std::to_string(c.channels) + " but the images have " +
                           std::to_string(a.channels) + " channel(s)");
  if (a.channels < 1 || a.channels > 64) throw Error("qat", "images must have 1 to 64 channels");
  if (a.width < 1 || a.width > 512) throw Error("qat", "model_args.width must be in [1, 512]");
  if (c.num_blocks < 0 || a.blocks > 32) throw Error("qat", "model_args.num_blocks must be in [0, 32]");
  return a;
}

// Shared [0, hi] bounds for Clip nodes (inputs, as from opset 11).
void add_clip_bounds(Graph& g, const std::string& stem, float lo, float hi) {
  g.initializers.push_back({stem + "_min", Tensor::scalar<float>(lo), ""});
  g.initializers.push_back({stem + "_max", Tensor::scalar<float>(hi), ""});
}

std::string add_clip(Graph& g, const std::string& name, const std::string& input, const std::string& bounds,
                     const std::string& output) {
  g.nodes.push_back(make_node("Clip", name, {input, bounds + "_min", bounds + "_max"}, {output}));
  return output;
}

}  // namespace

std::vector<int64_t> image_smoke_shape(const QatConfig& c) {
  std::vector<int64_t> shape = {c.channels > 0 ? c.channels : 1, 32, 32};
  if (c.input_shape.size() == 4) shape.assign(c.input_shape.begin() + 1, c.input_shape.end());
  else if (!c.input_shape.empty()) throw Error("qat", "qat.input_shape must be [batch, channels, height, width] for " + c.model);
  for (int64_t d : shape)
    if (d < 1 || d > 4096) throw Error("qat", "qat.input_shape dimensions must be in [1, 4096]");
  return shape;
}

Model build_learned_filter(const QatConfig& c, const Dataset& train, uint64_t seed) {
  const ImageArgs a = image_args(c, train, 4);
  std::mt19937_64 rng(seed);
  Model m = new_model("learned_filter");
  Graph& g = m.graph;
  g.inputs.push_back(image_value(c.input_name, a.channels));
  std::string x = add_conv(g, "entry", c.input_name, a.channels, a.width, 3, 1, 1, rng);
  for (int64_t b = 0; b < a.blocks; ++b) {
    const std::string p = "body" + std::to_string(b);
    std::string h = add_conv(g, p + "_conv0", x, a.width, a.width, 3, 1, 1, rng);
    g.nodes.push_back(make_node("Relu", p + "_relu", {h}, {p + "_relu_out"}));
    h = add_conv(g, p + "_conv1", p + "_relu_out", a.width, a.width, 3, 1, 1, rng);
    g.nodes.push_back(make_node("Add", p + "_add", {x, h}, {p + "_add_out"}));
    x = p + "_add_out";
  }
  std::string residual = add_conv(g, "exit", x, a.width, a.channels, 3, 1, 1, rng);
  g.nodes.push_back(make_node("Add", "residual", {c.input_name, residual}, {"restored"}));
  add_clip_bounds(g, "clip", 0.0f, 1.0f);
  add_clip(g, "clamp", "restored", "clip", c.output_name);
  g.outputs.push_back(image_value(c.output_name, a.channels));
  return m;
}

Model build_nr_metric(const QatConfig& c, const Dataset& train, uint64_t seed) {
  const ImageArgs a = image_args(c, train, 5);
  std::mt19937_64 rng(seed);
  Model m = new_model("nr_metric");
  Graph& g = m.graph;
  g.inputs.push_back(image_value(c.input_name, a.channels));
  add_clip_bounds(g, "relu6", 0.0f, 6.0f);
  // No normalisation layers (the fork's file has its batch norms folded away), so He
  // initialisation keeps the signal alive through the 11-conv stack.
  const ConvInit init = ConvInit::He;
  std::string x = add_conv(g, "stem", c.input_name, a.channels, a.width, 3, 2, 1, rng, init);
  x = add_clip(g, "stem_relu6", x, "relu6", "stem_act");
  int64_t ch = a.width;
  for (int64_t b = 0; b < a.blocks; ++b) {
    const std::string p = "block" + std::to_string(b);
    const int64_t stride = b % 2 == 0 ? 2 : 1;
    const int64_t out = stride == 2 ? ch * 2 : ch;
    if (out > 4096) throw Error("qat", "nr_metric: too many blocks for model_args.width (channels above 4096)");
    x = add_conv(g, p + "_dw", x, ch, ch, 3, stride, ch, rng, init);
    x = add_clip(g, p + "_dw_relu6", x, "relu6", p + "_dw_act");
    x = add_conv(g, p + "_pw", x, ch, out, 1, 1, 1, rng, init);
    x = add_clip(g, p + "_pw_relu6", x, "relu6", p + "_pw_act");
    ch = out;
  }
  g.nodes.push_back(make_node("GlobalAveragePool", "pool", {x}, {"pooled"}));
  g.nodes.push_back(make_node("Flatten", "flatten", {"pooled"}, {"features"}));
  add_uniform(g, "head.weight", {1, ch}, ch, rng);
  add_uniform(g, "head.bias", {1}, ch, rng);
  Node head = make_node("Gemm", "head", {"features", "head.weight", "head.bias"}, {"head_out"});
  head.set_attr(Attribute::make_int("transB", 1));
  g.nodes.push_back(std::move(head));
  g.initializers.push_back({"squeeze_axes", Tensor::from_vector<int64_t>({1}, {1}), ""});
  g.nodes.push_back(make_node("Squeeze", "squeeze", {"head_out", "squeeze_axes"}, {c.output_name}));
  g.outputs.push_back(float_value(c.output_name, {-1}));
  return m;
}

}  // namespace tinyq::qat
