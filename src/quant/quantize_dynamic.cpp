// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include <algorithm>
#include <set>

#include "common/file_util.h"
#include "graph/graph_edit.h"
#include "graph/model_summary.h"
#include "quant/dynamic/dynamic_rewriter.h"
#include "quant/quant_file.h"
#include "tinyq/error.h"
#include "tinyq/model_io.h"
#include "tinyq/quantize.h"
#include "tinyq/version.h"

namespace tinyq {
namespace {

constexpr int64_t kMinDynamicOpset = 11;  // DynamicQuantizeLinear's first opset

void check_op_types(const DynamicQuantOptions& options) {
  if (options.op_types.empty()) throw Error("--op-types", "names no op type");
  for (const auto& op : options.op_types) {
    if (quant::find_dynamic_quantiser(op)) continue;
    std::string known;
    for (const auto& k : dynamic_quant_op_types()) known += (known.empty() ? "" : ", ") + k;
    throw Error("--op-types", "'" + op + "' has no dynamic quantiser (supported: " + known + ")");
  }
}

// Nodes of a requested type inside If/Loop/Scan bodies are not rewritten: say so in the report.
void note_subgraph_nodes(const Graph& g, const std::set<std::string>& wanted, bool nested,
                         std::vector<QuantNodeRecord>& out) {
  for (const auto& n : g.nodes) {
    if (nested && is_default_domain(n.domain) && wanted.count(n.op_type))
      out.push_back({n.display_name(), n.op_type, "inside a subgraph (only the main graph is rewritten)"});
    for (const auto& a : n.attributes) {
      if (a.g) note_subgraph_nodes(*a.g, wanted, true, out);
      for (const auto& sub : a.graphs) note_subgraph_nodes(*sub, wanted, true, out);
    }
  }
}

}  // namespace

std::vector<std::string> dynamic_quant_op_types() {
  std::vector<std::string> out;
  for (const auto& row : quant::dynamic_quantisers()) out.emplace_back(row.op_type);
  return out;
}

DynamicQuantResult quantize_dynamic(const Model& fp32, const DynamicQuantOptions& options) {
  check_op_types(options);
  const graph::ModelSummary summary = graph::summarize(fp32);
  if (summary.quant_format != graph::QuantFormat::None)
    throw Error("model", std::string("is already quantised (") + graph::quant_format_name(summary.quant_format) +
                             "); quantise the fp32 model instead");
  const int64_t opset = fp32.opset("");
  if (opset < kMinDynamicOpset)
    throw Error("model", "has opset " + std::to_string(opset) + "; dynamic quantisation needs opset " +
                             std::to_string(kMinDynamicOpset) + " or newer (DynamicQuantizeLinear)");

  DynamicQuantResult result;
  result.model = fp32;  // tensors share buffers with the caller's model; nothing writes into them
  Model& m = result.model;
  // Pre-flight, as the seed's script did: value_info naming an initializer broke ONNX Runtime's
  // shape inference once the initializer changed type. (External data is already inline: the
  // loader reads it and save_model writes every tensor inline.)
  result.value_info_removed = graph::remove_initializer_value_info(m.graph);

  const std::set<std::string> wanted(options.op_types.begin(), options.op_types.end());
  quant::DynamicRewriter rw(m.graph, options.per_channel);
  for (const Node& node : m.graph.nodes) {
    const quant::DynamicOpQuantiser* q =
        is_default_domain(node.domain) && wanted.count(node.op_type) ? quant::find_dynamic_quantiser(node.op_type) : nullptr;
    if (!q) {
      rw.emit(node);
      continue;
    }
    std::string why = q->why_not(rw, node);
    if (!why.empty()) {
      result.left_fp32.push_back({node.display_name(), node.op_type, why});
      rw.emit(node);
      continue;
    }
    q->rewrite(rw, node);
    result.rewritten.push_back({node.display_name(), node.op_type, ""});
  }
  m.graph.nodes = rw.take_nodes();
  note_subgraph_nodes(m.graph, wanted, false, result.left_fp32);
  graph::remove_unused_initializers(m.graph);

  m.producer_name = "tinyq";
  m.producer_version = version_string();
  return result;
}

double DynamicQuantFileResult::size_ratio() const {
  return fp32_bytes ? static_cast<double>(int8_bytes) / static_cast<double>(fp32_bytes) : 0.0;
}

DynamicQuantFileResult quantize_dynamic_file(const std::string& input, const std::string& output,
                                             const DynamicQuantOptions& options) {
  check_op_types(options);
  DynamicQuantFileResult r;
  r.input = input;
  r.output = quant::checked_output_path(input, output);
  r.options = options;
  quant::QuantInput in = quant::load_quant_input(input, r.output);
  r.fp32_bytes = in.fp32_bytes;
  r.external_data = in.external_data;

  DynamicQuantResult q;
  quant::with_input_subject(input, [&] { q = quantize_dynamic(in.loaded.model, options); });
  r.int8_bytes = save_model(q.model, r.output);  // the last step that can fail (see save_model)
  r.rewritten = std::move(q.rewritten);
  r.left_fp32 = std::move(q.left_fp32);
  r.value_info_removed = q.value_info_removed;
  return r;
}

}  // namespace tinyq
