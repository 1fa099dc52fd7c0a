// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// Static PTQ end to end: checks, calibration (or a saved range table), the QDQ rewrite through
// the per-op quantiser table, and the atomic write.

#include <algorithm>
#include <set>

#include "common/file_util.h"
#include "graph/graph_edit.h"
#include "graph/model_summary.h"
#include "quant/qdq_table.h"
#include "quant/qdq_writer.h"
#include "quant/quant_file.h"
#include "tinyq/calibrate.h"
#include "tinyq/error.h"
#include "tinyq/model_io.h"
#include "tinyq/quantize.h"
#include "tinyq/version.h"

namespace tinyq {
namespace {

constexpr int64_t kMinQdqOpset = 10;         // QuantizeLinear / DequantizeLinear
constexpr int64_t kMinPerChannelOpset = 13;  // their `axis` attribute
constexpr uint64_t kMaxRangeTableBytes = 64ull << 20;


// Everything that makes a model unfit for the rewrite, checked before any calibration work.
void check_model(const Model& model, const StaticQuantOptions& options) {
  const graph::ModelSummary summary = graph::summarize(model);
  if (summary.quant_format != graph::QuantFormat::None)
    throw Error("model", std::string("is already quantised (") + graph::quant_format_name(summary.quant_format) +
                             "); quantise the fp32 model instead");
  const int64_t opset = model.opset("");
  if (opset < kMinQdqOpset)
    throw Error("model", "has opset " + std::to_string(opset) + "; static quantisation needs opset " +
                             std::to_string(kMinQdqOpset) + " or newer (QuantizeLinear)");
  if (options.per_channel && opset < kMinPerChannelOpset)
    throw Error("--per-channel", "needs opset " + std::to_string(kMinPerChannelOpset) +
                                     " or newer (DequantizeLinear's axis); the model has opset " + std::to_string(opset));
  std::set<std::string> names;
  for (const auto& n : model.graph.nodes) names.insert(n.name);
  for (const auto& x : options.exclude_nodes) {
    if (names.count(x)) continue;
    std::string some;
    int shown = 0;
    for (const auto& n : model.graph.nodes) {
      if (n.name.empty() || shown == 8) continue;
      some += (shown++ ? ", " : "") + n.name;
    }
    throw Error("--exclude-nodes", "the model has no node named '" + x + "' (nodes: " + some +
                                       (model.graph.nodes.size() > 8 ? ", ..." : "") + ")");
  }
}

bool excluded(const StaticQuantOptions& options, const Node& n) {
  return !n.name.empty() &&
         std::find(options.exclude_nodes.begin(), options.exclude_nodes.end(), n.name) != options.exclude_nodes.end();
}

}  // namespace


const char* activation_type_name(ActivationType type) { return type == ActivationType::Uint8 ? "uint8" : "int8"; }

std::optional<ActivationType> parse_activation_type(const std::string& name) {
  if (name == "int8") return ActivationType::Int8;
  if (name == "uint8") return ActivationType::Uint8;
  return std::nullopt;
}

std::vector<std::string> static_quant_op_types() {
  std::vector<std::string> out;
  for (const auto& row : quant::qdq_quantisers()) out.emplace_back(row.op_type);
  return out;
}

namespace {

// Runs every node's quantiser on `writer`, in graph order (later quantisers see what earlier
// ones marked, as in ONNX Runtime). state: 0 = no quantiser, 1 = excluded, 2 = declined (with
// the reason), 3 = took part.
void run_quantisers(quant::QdqWriter& writer, const Graph& g, const StaticQuantOptions& options,
                    std::vector<int>& state, std::vector<std::string>& reasons, std::map<std::string, int>* unquantisable) {
  state.assign(g.nodes.size(), 0);
  reasons.assign(g.nodes.size(), "");
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    if (!is_default_domain(n.domain)) continue;
    const quant::QdqOpQuantiser* q = quant::find_qdq_quantiser(n.op_type);
    if (!q) {
      if (unquantisable) ++(*unquantisable)[n.op_type];
      continue;
    }
    if (excluded(options, n)) {
      state[i] = 1;
      continue;
    }
    reasons[i] = q->quantise(writer, n, i);
    state[i] = reasons[i].empty() ? 3 : 2;
  }
}

}  // namespace

StaticQuantPlan static_quant_plan(const Model& model, const StaticQuantOptions& options) {
  check_model(model, options);
  // ONNX Runtime calibrates every input and output of every quantisable node. Only those the
  // rewrite will read are needed, and exposing fewer lets the runtime keep its fusions (a Conv
  // followed by a Relu that folds away needs only the Relu's output). A dry run of the
  // quantisers, taking every candidate for float, finds them; the real run, knowing which
  // tensors are float, marks a subset of these.
  std::vector<std::string> candidates;
  std::set<std::string> seen;
  for (const Node& n : model.graph.nodes) {
    if (!is_default_domain(n.domain) || !quant::find_qdq_quantiser(n.op_type) || excluded(options, n)) continue;
    for (const auto* list : {&n.inputs, &n.outputs})
      for (const auto& t : *list)
        if (!t.empty() && !model.graph.find_initializer(t) && seen.insert(t).second) candidates.push_back(t);
  }
  std::map<std::string, TensorRange> assumed;
  for (const auto& t : candidates) assumed[t] = TensorRange{};
  Graph g = model.graph;
  quant::QdqWriter writer(g, std::move(assumed), {}, options);
  std::vector<int> state;
  std::vector<std::string> reasons;
  run_quantisers(writer, g, options, state, reasons, nullptr);
  const std::vector<std::string> marked = writer.marked_activations(/*shared=*/false);
  const std::set<std::string> needed(marked.begin(), marked.end());
  StaticQuantPlan plan;
  for (const auto& t : candidates)
    if (needed.count(t)) plan.activations.push_back(t);
  plan.weights = writer.marked_weights();
  return plan;
}

std::vector<std::string> static_quant_calibration_tensors(const Model& model, const StaticQuantOptions& options) {
  return static_quant_plan(model, options).activations;
}

StaticQuantResult quantize_static(const Model& fp32, const RangeTable& ranges, const StaticQuantOptions& options) {
  check_model(fp32, options);
  StaticQuantResult result;
  result.model = fp32;  // tensors share buffers with the caller's model; nothing writes into them
  Graph& g = result.model.graph;
  // Pre-flight, as for dynamic PTQ: value_info naming an initializer misleads ONNX Runtime's
  // shape inference once the initializer is replaced.
  result.value_info_removed = graph::remove_initializer_value_info(g);

  std::map<std::string, TensorRange> adjusted = ranges.ranges;
  quant::adjust_ranges(g, adjusted, options.exclude_nodes);
  quant::QdqWriter writer(g, std::move(adjusted), std::set<std::string>(ranges.non_float.begin(), ranges.non_float.end()),
                         options);

  const std::vector<Node> original = g.nodes;
  std::vector<int> state;
  std::vector<std::string> reasons;
  run_quantisers(writer, g, options, state, reasons, &result.unquantisable_ops);
  writer.finish();

  for (size_t i = 0; i < original.size(); ++i) {
    const Node& n = original[i];
    QuantNodeRecord rec{n.display_name(), n.op_type, ""};
    switch (state[i]) {
      case 1:
        rec.reason = "excluded (--exclude-nodes)";
        result.left_fp32.push_back(rec);
        break;
      case 2:
        rec.reason = reasons[i];
        result.left_fp32.push_back(rec);
        break;
      case 3:
        if (writer.is_folded(i)) {
          rec.reason = "folded into its producer's quantisation";
          result.folded.push_back(rec);
        } else if (writer.touched(i)) {
          result.quantised.push_back(rec);
        } else {
          rec.reason = "no float input or output to quantise";
          result.left_fp32.push_back(rec);
        }
        break;
      default:
        break;
    }
  }
  result.activations = writer.activations();
  result.weights_quantised = writer.weights_quantised();
  result.biases_quantised = writer.biases_quantised();
  result.notes = writer.notes();
  result.model.producer_name = "tinyq";
  result.model.producer_version = version_string();
  return result;
}

double StaticQuantFileResult::size_ratio() const {
  return fp32_bytes ? static_cast<double>(int8_bytes) / static_cast<double>(fp32_bytes) : 0.0;
}

StaticQuantFileResult quantize_static_file(const std::string& input, const std::string& output,
                                           const std::string& calibration, const StaticQuantFileOptions& options) {
  StaticQuantFileResult r;
  r.input = input;
  r.output = quant::checked_output_path(input, output);
  r.options = options;
  if (options.ranges_in.empty()) {
    if (calibration.empty())
      throw Error(input, "needs calibration data: pass --calibration SET.npz (one array per model input, each [N, ...])");
    if (!file_exists(calibration)) throw Error(calibration, "no such file");
    if (same_file(calibration, r.output)) throw Error(r.output, "is the calibration set; choose another --output");
    r.calibration = calibration;
  } else if (same_file(options.ranges_in, r.output)) {
    throw Error(r.output, "is the range table; choose another --output");
  }

  quant::QuantInput in = quant::load_quant_input(input, r.output);
  r.fp32_bytes = in.fp32_bytes;
  const Model& model = in.loaded.model;

  quant::with_input_subject(input, [&] {
    const std::vector<std::string> tensors = static_quant_calibration_tensors(model, options.quant);
    if (!options.ranges_in.empty()) {
      r.ranges = range_table_from_json(read_file_bounded(options.ranges_in, kMaxRangeTableBytes), options.ranges_in);
    } else {
      NpzCalibrationSource source = NpzCalibrationSource::from_file(calibration, model, options.allow_nonfinite);
      r.calibration_warnings = source.warnings();
      r.calibration_nonfinite = source.nonfinite_count();
      r.ranges = calibrate(model, source, tensors, options.calibration);
    }
    r.quant = quantize_static(model, r.ranges, options.quant);
  });
  // The write is the last step that can fail: once the file is in place nothing allocates, so
  // an error always means no output. The report keeps what was done, not the model.
  const Model quantised = std::move(r.quant.model);
  r.int8_bytes = save_model(quantised, r.output);
  return r;
}

}  // namespace tinyq
