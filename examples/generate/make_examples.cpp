// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// Generates the bundled example models and their registry (examples/), so the demo needs no
// download and no ../shared. Deterministic: the same bytes on every machine, which a test checks.
//
//   mlp_regressor.onnx    6 -> 32 -> 16 -> 1 MLP with its input scaler baked in as Sub/Div
//                         (the vmaf_tiny family's shape), input "features" [N,6], output "score" [N]
//   residual_filter.onnx  3x3 conv stack 1 -> 8 -> 8 -> 1 with ReLU, a residual Add and a
//                         Clip to [0,1] (learned_filter_v1's shape), input "degraded" [N,1,H,W]
//
// usage: make_examples OUT_DIR

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/file_util.h"
#include "common/sha256.h"
#include "tinyq/error.h"
#include "tinyq/model_io.h"
#include "tinyq/npz.h"

namespace tinyq {
namespace {

// xorshift64*: tiny, fully specified, so weights are identical everywhere (std distributions are not).
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed * 0x9E3779B97F4A7C15ull + 1) {}
  float uniform(float lo, float hi) {
    s_ ^= s_ >> 12;
    s_ ^= s_ << 25;
    s_ ^= s_ >> 27;
    uint64_t r = s_ * 0x2545F4914F6CDD1Dull;
    return lo + (hi - lo) * static_cast<float>(r >> 40) / 16777216.0f;
  }

 private:
  uint64_t s_;
};

Tensor random_tensor(Rng& rng, Shape shape, float bound) {
  Tensor t(DType::F32, shape);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = rng.uniform(-bound, bound);
  return t;
}

ValueInfo value(const std::string& name, std::vector<Dim> dims) {
  ValueInfo v;
  v.name = name;
  v.dtype = DType::F32;
  v.has_shape = true;
  v.dims = std::move(dims);
  return v;
}

Node node(const std::string& op, const std::string& name, std::vector<std::string> in,
          std::vector<std::string> out, std::vector<Attribute> attrs = {}) {
  Node n;
  n.op_type = op;
  n.name = name;
  n.inputs = std::move(in);
  n.outputs = std::move(out);
  n.attributes = std::move(attrs);
  return n;
}

Model base_model(const std::string& graph_name) {
  Model m;
  m.ir_version = 8;
  m.producer_name = "tinyq-examples";
  m.producer_version = "1";
  m.opset_imports.push_back({"", 17});
  m.graph.name = graph_name;
  return m;
}

Model mlp_regressor() {
  Rng rng(6321);
  Model m = base_model("mlp_regressor");
  Graph& g = m.graph;
  // Feature scaler of the canonical six VMAF features (adm2, vif_scale0..3, motion2).
  g.initializers.push_back({"scaler_mean", Tensor::from_vector<float>({6}, {0.92f, 0.50f, 0.76f, 0.84f, 0.89f, 6.4f}), ""});
  g.initializers.push_back({"scaler_std", Tensor::from_vector<float>({6}, {0.035f, 0.16f, 0.093f, 0.07f, 0.053f, 7.3f}), ""});
  const int64_t sizes[] = {6, 32, 16, 1};
  for (int l = 0; l < 3; ++l) {
    float bound = std::sqrt(6.0f / static_cast<float>(sizes[l] + sizes[l + 1]));
    std::string k = std::to_string(l);
    g.initializers.push_back({"fc" + k + ".weight", random_tensor(rng, {sizes[l + 1], sizes[l]}, bound), ""});
    g.initializers.push_back({"fc" + k + ".bias", random_tensor(rng, {sizes[l + 1]}, 0.1f), ""});
  }
  g.initializers.push_back({"squeeze_axes", Tensor::from_vector<int64_t>({1}, {1}), ""});
  g.inputs.push_back(value("features", {Dim{-1, "N"}, Dim{6, ""}}));
  g.outputs.push_back(value("score", {Dim{-1, "N"}}));
  g.nodes.push_back(node("Sub", "scale_sub", {"features", "scaler_mean"}, {"centred"}));
  g.nodes.push_back(node("Div", "scale_div", {"centred", "scaler_std"}, {"x0"}));
  for (int l = 0; l < 3; ++l) {
    std::string k = std::to_string(l);
    std::string out = l == 2 ? "y" : "h" + k;
    g.nodes.push_back(node("Gemm", "fc" + k, {"x" + k, "fc" + k + ".weight", "fc" + k + ".bias"}, {out},
                           {Attribute::make_int("transB", 1)}));
    if (l < 2) g.nodes.push_back(node("Relu", "relu" + k, {out}, {"x" + std::to_string(l + 1)}));
  }
  g.nodes.push_back(node("Squeeze", "squeeze", {"y", "squeeze_axes"}, {"score"}));
  return m;
}

Model residual_filter() {
  Rng rng(224);
  Model m = base_model("residual_filter");
  Graph& g = m.graph;
  const int64_t channels[] = {1, 8, 8, 1};
  std::vector<Attribute> conv_attrs = {Attribute::make_ints("kernel_shape", {3, 3}),
                                       Attribute::make_ints("pads", {1, 1, 1, 1})};
  std::string x = "degraded";
  for (int l = 0; l < 3; ++l) {
    std::string k = std::to_string(l);
    float bound = std::sqrt(6.0f / static_cast<float>(9 * (channels[l] + channels[l + 1])));
    // The last layer starts small so the filter is close to the identity plus a correction.
    if (l == 2) bound *= 0.25f;
    g.initializers.push_back({"conv" + k + ".weight", random_tensor(rng, {channels[l + 1], channels[l], 3, 3}, bound), ""});
    g.initializers.push_back({"conv" + k + ".bias", random_tensor(rng, {channels[l + 1]}, 0.05f), ""});
    std::string out = "conv" + k + "_out";
    g.nodes.push_back(node("Conv", "conv" + k, {x, "conv" + k + ".weight", "conv" + k + ".bias"}, {out}, conv_attrs));
    if (l < 2) {
      g.nodes.push_back(node("Relu", "relu" + k, {out}, {"act" + k}));
      x = "act" + k;
    } else {
      x = out;
    }
  }
  g.initializers.push_back({"clip_min", Tensor::scalar<float>(0.0f), ""});
  g.initializers.push_back({"clip_max", Tensor::scalar<float>(1.0f), ""});
  g.nodes.push_back(node("Add", "residual", {"degraded", x}, {"restored"}));
  g.nodes.push_back(node("Clip", "clamp", {"restored", "clip_min", "clip_max"}, {"filtered"}));
  std::vector<Dim> image = {Dim{-1, "N"}, Dim{1, ""}, Dim{-1, "H"}, Dim{-1, "W"}};
  g.inputs.push_back(value("degraded", image));
  g.outputs.push_back(value("filtered", image));
  return m;
}

void write(const std::string& dir) {
  struct Example {
    const char* id;
    const char* kind;
    const char* file;
    Model model;
    const char* notes;
  } examples[] = {
      {"example_mlp", "fr", "mlp_regressor.onnx", mlp_regressor(),
       "Bundled example: 6-32-16-1 MLP regressor with a baked input scaler, generated by examples/generate/make_examples.cpp."},
      {"example_filter", "filter", "residual_filter.onnx", residual_filter(),
       "Bundled example: residual 3x3 conv filter 1-8-8-1 clipped to [0,1], generated by examples/generate/make_examples.cpp."},
  };
  nlohmann::ordered_json registry = {{"$schema", "./registry.schema.json"}, {"schema_version", 1}, {"models", nlohmann::json::array()}};
  for (auto& e : examples) {
    std::string bytes = serialize_model(e.model);
    write_file_atomic(dir + "/" + e.file, bytes);
    registry["models"].push_back({{"id", e.id},
                                  {"kind", e.kind},
                                  {"onnx", e.file},
                                  {"sha256", sha256_hex(bytes)},
                                  {"opset", 17},
                                  {"quant_mode", "fp32"},
                                  {"quant_accuracy_budget_plcc", 0.01},
                                  {"notes", e.notes}});
  }
  write_file_atomic(dir + "/registry.json", registry.dump(2) + "\n");

  // Sample inputs for `tinyq run` and the demo: plausible feature rows and a smooth test image.
  Rng rng(42);
  Tensor features(DType::F32, {8, 6});
  const float centre[6] = {0.92f, 0.50f, 0.76f, 0.84f, 0.89f, 6.4f};
  const float spread[6] = {0.035f, 0.16f, 0.093f, 0.07f, 0.053f, 7.3f};
  for (int64_t i = 0; i < 8; ++i)
    for (int64_t j = 0; j < 6; ++j)
      features.data<float>()[i * 6 + j] = std::max(0.0f, centre[j] + spread[j] * rng.uniform(-1.5f, 1.5f));
  write_npz(dir + "/sample_features.npz", {{"features", features}});
  Tensor image(DType::F32, {1, 1, 32, 32});
  for (int64_t y = 0; y < 32; ++y)
    for (int64_t x = 0; x < 32; ++x)
      image.data<float>()[y * 32 + x] =
          std::min(1.0f, std::max(0.0f, 0.5f + 0.3f * std::sin(0.3f * static_cast<float>(x)) *
                                                   std::cos(0.2f * static_cast<float>(y)) + rng.uniform(-0.05f, 0.05f)));
  write_npz(dir + "/sample_image.npz", {{"degraded", image}});

  // Real-content gate data (`measure-quant-drop --data`): the seed's synthetic gate feeds the
  // filter a single pixel, so it needs images to say anything. Four variants of the test image.
  Tensor images(DType::F32, {4, 1, 32, 32});
  float* dst = images.data<float>();
  const float* src = image.data<float>();
  for (int64_t k = 0; k < 4; ++k)
    for (int64_t y = 0; y < 32; ++y)
      for (int64_t x = 0; x < 32; ++x) {
        int64_t sy = k == 1 ? 31 - y : y, sx = k == 2 ? 31 - x : x;
        float v = src[sy * 32 + sx];
        dst[(k * 32 + y) * 32 + x] = k == 3 ? 1.0f - v : v;
      }
  write_npz(dir + "/gate_data.npz", {{"features", features}, {"degraded", images}});
}

}  // namespace
}  // namespace tinyq

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: make_examples OUT_DIR\n";
    return 2;
  }
  try {
    tinyq::write(argv[1]);
  } catch (const tinyq::Error& e) {
    std::cerr << "error: " << e.message() << "\n";
    return 2;
  }
  return 0;
}
