// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// `model: onnx`: an existing fp32 model fine-tuned as it is. The graph is loaded into tinyq's IR
// and trained by the same graph trainer as the built-ins, its Conv/Gemm/MatMul weights and biases
// as parameters, so the export keeps the file's structure, names and opset with new weights.

#include <algorithm>
#include <set>

#include "common/file_util.h"
#include "graph/model_summary.h"
#include "qat/architectures.h"
#include "qat/graph_trainer.h"
#include "tinyq/error.h"
#include "tinyq/model_io.h"

namespace tinyq::qat {

namespace {

Model load_for_qat(const QatConfig& c) {
  if (c.model_path.empty())
    throw Error("qat", "model: onnx needs model_args.path (the fp32 .onnx model to fine-tune)");
  if (!file_exists(c.model_path)) throw Error(c.model_path, "no such file (model_args.path)");
  Model m = load_model(c.model_path);
  const graph::ModelSummary summary = graph::summarize(m);
  if (summary.quant_format != graph::QuantFormat::None)
    throw Error(c.model_path, std::string("is already quantised (") + graph::quant_format_name(summary.quant_format) +
                                  "); QAT fine-tunes an fp32 model");
  // Every op must be one the trainer runs; name them all at once.
  const std::vector<std::string> known = trainer_op_types();
  std::set<std::string> unsupported;
  std::string first;
  for (const Node& n : m.graph.nodes) {
    const bool ok = is_default_domain(n.domain) && std::find(known.begin(), known.end(), n.op_type) != known.end();
    if (ok) continue;
    unsupported.insert(is_default_domain(n.domain) ? n.op_type : n.domain + "." + n.op_type);
    if (first.empty()) first = n.label();
  }
  if (!unsupported.empty()) {
    std::string ops, all;
    for (const auto& o : unsupported) ops += (ops.empty() ? "" : ", ") + o;
    for (const auto& o : known) all += (all.empty() ? "" : ", ") + o;
    throw Error(c.model_path, "QAT cannot train op(s) " + ops + " (first: " + first + "); it runs " + all);
  }
  qat_model_input(m, c.model_path);
  qat_model_output(m, c.model_path);
  return m;
}

}  // namespace

std::vector<int64_t> onnx_smoke_shape(const QatConfig& c) {
  const Model m = load_for_qat(c);
  const ValueInfo& in = qat_model_input(m, c.model_path);
  std::vector<int64_t> shape;
  if (!c.input_shape.empty()) {
    if (in.has_shape && c.input_shape.size() != in.dims.size())
      throw Error("qat", "qat.input_shape has rank " + std::to_string(c.input_shape.size()) + " but input '" + in.name +
                             "' is declared " + in.shape_string());
    shape.assign(c.input_shape.begin() + 1, c.input_shape.end());
  } else {
    if (!in.has_shape || in.dims.size() < 2)
      throw Error(c.model_path, "input '" + in.name + "' has no declared shape: set qat.input_shape for smoke data");
    for (size_t i = 1; i < in.dims.size(); ++i) {
      // A symbolic image height or width: smoke frames are 32x32.
      if (in.dims[i].known()) shape.push_back(in.dims[i].value);
      else if (in.dims.size() == 4 && i >= 2) shape.push_back(32);
      else throw Error(c.model_path, "input '" + in.name + "' is declared " + in.shape_string() + ": set qat.input_shape for smoke data");
    }
  }
  if (shape.size() != 1 && shape.size() != 3)
    throw Error(c.model_path, "smoke data is made for [N, features] and [N, channels, height, width] inputs; input '" +
                                  in.name + "' is " + in.shape_string());
  for (int64_t d : shape)
    if (d < 1 || d > 4096) throw Error("qat", "smoke input dimensions must be in [1, 4096]");
  return shape;
}

Model build_onnx(const QatConfig& c, const Dataset& train, uint64_t) {
  Model m = load_for_qat(c);
  ValueInfo* in = nullptr;
  for (auto& v : m.graph.inputs)
    if (v.name == qat_model_input(m, c.model_path).name) in = &v;
  if (in->has_shape) {
    if (in->dims.size() != train.sample_shape.size() + 1)
      throw Error(c.model_path, "input '" + in->name + "' is declared " + in->shape_string() + " but the data's rows are " +
                                    shape_to_string(train.sample_shape));
    // Train (and export) at the data's shape: fixed dims that differ, and a fixed batch, become
    // symbolic, and the declared intermediate shapes, now stale, are dropped.
    bool relaxed = false;
    for (size_t i = 0; i < in->dims.size(); ++i) {
      Dim& d = in->dims[i];
      if (d.known() && (i == 0 || d.value != train.sample_shape[i - 1])) {
        d = Dim{-1, i == 0 ? "batch" : in->name + "_dim" + std::to_string(i)};
        relaxed = true;
      }
    }
    if (relaxed) m.graph.value_info.clear();
  }
  return m;
}

}  // namespace tinyq::qat
