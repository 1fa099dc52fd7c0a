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

bool is_default_domain(const std::string& domain) { return domain.empty() || domain == "ai.onnx"; }

std::string node_label(const Node& n) {
  if (!n.name.empty()) return n.name;
  return n.outputs.empty() ? std::string("?") : n.outputs[0];
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

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

std::vector<std::string> static_quant_calibration_tensors(const Model& model, const StaticQuantOptions& options) {
  check_model(model, options);
  std::vector<std::string> out;
  std::set<std::string> seen;
  auto add = [&](const std::string& t) {
    if (t.empty() || model.graph.find_initializer(t) || !seen.insert(t).second) return;
    out.push_back(t);
  };
  for (const Node& n : model.graph.nodes) {
    if (!is_default_domain(n.domain) || !quant::find_qdq_quantiser(n.op_type) || excluded(options, n)) continue;
    for (const auto& i : n.inputs) add(i);
    for (const auto& o : n.outputs) add(o);
  }
  return out;
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
  quant::QdqWriter writer(g, std::move(adjusted), options);

  // Per node, in graph order (later quantisers see what earlier ones marked, as in ONNX
  // Runtime): 0 = no quantiser, 1 = excluded, 2 = declined, 3 = took part.
  const std::vector<Node> original = g.nodes;
  std::vector<int> state(original.size(), 0);
  std::vector<std::string> reasons(original.size());
  for (size_t i = 0; i < original.size(); ++i) {
    const Node& n = g.nodes[i];
    if (!is_default_domain(n.domain)) continue;
    const quant::QdqOpQuantiser* q = quant::find_qdq_quantiser(n.op_type);
    if (!q) {
      ++result.unquantisable_ops[n.op_type];
      continue;
    }
    if (excluded(options, n)) {
      state[i] = 1;
      continue;
    }
    reasons[i] = q->quantise(writer, n, i);
    state[i] = reasons[i].empty() ? 3 : 2;
  }
  writer.finish();

  for (size_t i = 0; i < original.size(); ++i) {
    const Node& n = original[i];
    QuantNodeRecord rec{node_label(n), n.op_type, ""};
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
  if (!file_exists(input)) throw Error(input, "no such file");
  if (!ends_with(input, ".onnx")) throw Error(input, "expected an .onnx model file");
  StaticQuantFileResult r;
  r.input = input;
  r.output = output.empty() ? dynamic_quant_default_output(input) : output;
  r.options = options;
  if (same_file(r.input, r.output))
    throw Error(r.output, "is the input model; the fp32 model is never overwritten (choose another --output)");
  if (options.ranges_in.empty()) {
    if (calibration.empty())
      throw Error(input, "needs calibration data: pass --calibration SET.npz (one array per model input, each [N, ...])");
    if (!file_exists(calibration)) throw Error(calibration, "no such file");
    if (same_file(calibration, r.output)) throw Error(r.output, "is the calibration set; choose another --output");
    r.calibration = calibration;
  } else if (same_file(options.ranges_in, r.output)) {
    throw Error(r.output, "is the range table; choose another --output");
  }

  LoadedModel loaded = load_model_file(input);
  r.fp32_bytes = file_size(input);
  std::set<std::string> data_files;
  for (const auto& ref : loaded.external_data) data_files.insert(path_join(path_dirname(input), ref.location));
  for (const auto& f : data_files) {
    if (same_file(f, r.output))
      throw Error(r.output, "is an external data file of the input model; choose another --output");
    r.fp32_bytes += file_size(f);
  }
  const Model& model = loaded.model;

  try {
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
  } catch (const Error& e) {
    // Name the file rather than "model" so the CLI says which one.
    if (e.subject() == "model") throw Error(input, e.what());
    throw;
  }
  save_model(r.quant.model, r.output);
  r.quant.model = Model();
  r.int8_bytes = file_size(r.output);
  return r;
}

}  // namespace tinyq
