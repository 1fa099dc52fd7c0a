// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include "graph/model_summary.h"

#include "graph/graph_edit.h"

namespace tinyq::graph {

const char* quant_format_name(QuantFormat f) {
  switch (f) {
    case QuantFormat::None: return "not quantised";
    case QuantFormat::Dynamic: return "dynamic (DynamicQuantizeLinear + MatMulInteger/ConvInteger)";
    case QuantFormat::Qdq: return "QDQ (QuantizeLinear/DequantizeLinear pairs)";
    case QuantFormat::QOperator: return "QOperator (QLinearConv/QLinearMatMul)";
    case QuantFormat::Mixed: return "mixed quantisation formats";
  }
  return "?";
}

ModelSummary summarize(const Model& model) {
  ModelSummary s;
  s.ir_version = model.ir_version;
  s.opset = model.opset("");
  s.producer = model.producer_name + (model.producer_version.empty() ? "" : " " + model.producer_version);
  for (const ValueInfo* v : model.graph.real_inputs()) s.inputs.push_back(*v);
  s.outputs = model.graph.outputs;
  for_each_node_recursive(model.graph, [&](const Node& n) {
    ++s.node_count;
    ++s.op_histogram[n.domain.empty() || n.domain == "ai.onnx" ? n.op_type : n.domain + "." + n.op_type];
  });
  for (const auto& init : model.graph.initializers) {
    s.parameter_count += init.tensor.numel();
    s.initializer_bytes += init.tensor.nbytes();
    s.initializer_bytes_by_type[dtype_name(init.tensor.dtype())] += static_cast<int64_t>(init.tensor.nbytes());
  }
  auto has = [&](const char* op) { return s.op_histogram.count(op) > 0; };
  bool dynamic = has("DynamicQuantizeLinear") || has("MatMulInteger") || has("ConvInteger");
  bool qoperator = has("QLinearConv") || has("QLinearMatMul");
  bool qdq = !dynamic && !qoperator && (has("QuantizeLinear") || has("DequantizeLinear"));
  int kinds = dynamic + qoperator + qdq;
  s.quant_format = kinds > 1 ? QuantFormat::Mixed
                   : dynamic ? QuantFormat::Dynamic
                   : qoperator ? QuantFormat::QOperator
                   : qdq ? QuantFormat::Qdq
                             : QuantFormat::None;
  return s;
}

}  // namespace tinyq::graph
