// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include "quant/calibrate_mse_search.h"

#include <algorithm>
#include <cmath>

#include "common/qmath.h"
#include "graph/graph_edit.h"
#include "quant/calibrate_range.h"
#include "quant/calibrate_workers.h"
#include "tinyq/error.h"
#include "tinyq/session.h"

namespace tinyq::quant {
namespace {

using Range = std::pair<float, float>;

// The samples the search scores candidates on: the first ones, as many as fit this many input
// elements (a thousand rows of a 6-feature MLP, a handful of 224x224 frames), at least one.
constexpr int64_t kEvalInputElements = int64_t{1} << 18;
// Percentile clips offered besides minmax and the tensor-level optimum: the share of values
// kept, split evenly between the two tails.
constexpr double kKeepShares[] = {0.9999, 0.999, 0.99};

// [lo, hi] cutting (1 - keep) / 2 of the histogram's values off each end.
Range two_sided_clip(const HistogramCollector& h, double keep) {
  const double tail = (1.0 - keep) / 2.0 * static_cast<double>(h.total());
  const int bins = h.bins();
  int first = 0, last = bins - 1;
  double cum = 0.0;
  for (int i = 0; i < bins; ++i) {
    cum += static_cast<double>(h.counts[static_cast<size_t>(i)]);
    if (cum > tail) {
      first = i;
      break;
    }
  }
  cum = 0.0;
  for (int i = bins - 1; i >= 0; --i) {
    cum += static_cast<double>(h.counts[static_cast<size_t>(i)]);
    if (cum > tail) {
      last = i;
      break;
    }
  }
  return {static_cast<float>(h.edge(first)), static_cast<float>(h.edge(std::max(first, last) + 1))};
}

// The model with QuantizeLinear -> DequantizeLinear (int8, asymmetric, as the static writer's
// activations) on every tensor of `ranges`, under the tensor's own name so consumers and graph
// outputs see the fake-quantised values.
Model with_fake_quant(const Model& model, const std::map<std::string, Range>& ranges) {
  Model m = model;
  Graph& g = m.graph;
  for (const auto& [tensor, range] : ranges) {
    const qmath::QParams qp = qmath::choose_qparams(range.first, range.second, qmath::qrange_int8(false), false);
    const std::string scale = graph::unique_name(g, tensor + "_fq_scale");
    graph::set_initializer(g, scale, Tensor::scalar<float>(qp.scale));
    const std::string zero_point = graph::unique_name(g, tensor + "_fq_zero_point");
    graph::set_initializer(g, zero_point, Tensor::scalar<int8_t>(static_cast<int8_t>(qp.zero_point)));
    const std::string quantised = graph::unique_name(g, tensor + "_fq_q");
    std::string source = tensor, result = tensor;
    const long producer = graph::find_producer(g, tensor);
    if (producer >= 0) {
      source = graph::unique_name(g, tensor + "_fq_fp32");
      for (std::string& out : g.nodes[static_cast<size_t>(producer)].outputs)
        if (out == tensor) out = source;
    } else {
      result = graph::unique_name(g, tensor + "_fq");
      for (size_t c : graph::find_consumers(g, tensor))
        for (std::string& in : g.nodes[c].inputs)
          if (in == tensor) in = result;
    }
    Node q;
    q.op_type = "QuantizeLinear";
    q.name = quantised;
    q.inputs = {source, scale, zero_point};
    q.outputs = {quantised};
    Node dq;
    dq.op_type = "DequantizeLinear";
    dq.name = quantised + "_dq";
    dq.inputs = {quantised, scale, zero_point};
    dq.outputs = {result};
    g.nodes.push_back(std::move(q));
    g.nodes.push_back(std::move(dq));
  }
  graph::sort_topologically(g);
  return m;
}

// Mean squared difference of every float output element against the fp32 reference outputs.
double output_mse(Session& session, const std::vector<NamedTensors>& feeds, const std::vector<NamedTensors>& refs) {
  double sum = 0.0;
  int64_t count = 0;
  for (size_t i = 0; i < feeds.size(); ++i) {
    const NamedTensors outs = session.run(feeds[i]);
    for (size_t k = 0; k < outs.size(); ++k) {
      const Tensor& a = outs[k].second;
      const Tensor& b = refs[i][k].second;
      if (a.dtype() != DType::F32 || b.dtype() != DType::F32 || a.numel() != b.numel()) continue;
      const float* pa = a.data<float>();
      const float* pb = b.data<float>();
      for (int64_t j = 0; j < a.numel(); ++j) {
        const double d = static_cast<double>(pa[j]) - static_cast<double>(pb[j]);
        if (std::isfinite(d)) sum += d * d;
      }
      count += a.numel();
    }
  }
  return count ? sum / static_cast<double>(count) : 0.0;
}

// Graph inputs first, then node outputs in graph order: a tensor is decided before the ones
// computed from it.
std::vector<std::string> in_graph_order(const Model& model, const std::map<std::string, TensorStats>& stats) {
  std::vector<std::string> order;
  for (const ValueInfo* v : model.graph.real_inputs())
    if (stats.count(v->name)) order.push_back(v->name);
  Graph g = model.graph;
  graph::sort_topologically(g);
  for (const Node& n : g.nodes)
    for (const std::string& out : n.outputs)
      if (stats.count(out) && std::find(order.begin(), order.end(), out) == order.end()) order.push_back(out);
  return order;
}

}  // namespace

std::vector<Range> mse_candidates(const MinMaxCollector& mm, const HistogramCollector& hist) {
  std::vector<Range> all{mse_range(hist, mm)};
  if (mm.empty()) return all;
  all.emplace_back(mm.min, mm.max);
  if (hist.total() > 0 && hist.width() > 0.0)
    for (double keep : kKeepShares) all.push_back(two_sided_clip(hist, keep));
  // Ranges closer than 1% of the observed span quantise alike: keep the first of them.
  const double span = static_cast<double>(mm.max) - static_cast<double>(mm.min);
  std::vector<Range> out;
  for (const Range& r : all) {
    bool duplicate = false;
    for (const Range& kept : out)
      duplicate |= std::fabs(static_cast<double>(r.first) - kept.first) + std::fabs(static_cast<double>(r.second) - kept.second) <=
                   0.01 * span;
    if (!duplicate) out.push_back(r);
  }
  return out;
}

std::map<std::string, Range> mse_output_search(const Model& model, const CalibrationSource& source,
                                               const std::map<std::string, TensorStats>& stats, int workers) {
  std::map<std::string, Range> chosen;
  std::map<std::string, std::vector<Range>> candidates;
  for (const auto& [name, st] : stats) {
    candidates[name] = mse_candidates(*st.minmax, *st.histogram);
    chosen[name] = candidates[name].front();
  }
  // QuantizeLinear needs opset 10; older graphs keep the tensor-level optimum.
  if (model.opset("") < 10 || source.size() == 0) return chosen;

  int64_t per_sample = 0;
  for (const auto& kv : source.sample(0)) per_sample += kv.second.numel();
  const int64_t k = std::min(source.size(), std::max<int64_t>(1, kEvalInputElements / std::max<int64_t>(per_sample, 1)));
  std::vector<NamedTensors> feeds(static_cast<size_t>(k)), refs(static_cast<size_t>(k));
  {
    Session fp32(model);
    for (int64_t i = 0; i < k; ++i) {
      feeds[static_cast<size_t>(i)] = source.sample(i);
      refs[static_cast<size_t>(i)] = fp32.run(feeds[static_cast<size_t>(i)]);
    }
  }

  std::map<std::string, Range> decided;
  for (const std::string& tensor : in_graph_order(model, stats)) {
    const std::vector<Range>& cands = candidates.at(tensor);
    if (cands.size() > 1) {
      std::vector<double> score(cands.size());
      run_workers(static_cast<int64_t>(cands.size()), workers, [&](int, auto& next) {
        for (int64_t c = next(); c >= 0; c = next()) {
          std::map<std::string, Range> trial = decided;
          trial[tensor] = cands[static_cast<size_t>(c)];
          Session session(with_fake_quant(model, trial));
          score[static_cast<size_t>(c)] = output_mse(session, feeds, refs);
        }
      });
      // Ties (within rounding) go to the earlier candidate: the tensor-level optimum first.
      size_t best = 0;
      for (size_t c = 1; c < cands.size(); ++c)
        if (score[c] < score[best] * (1.0 - 1e-9)) best = c;
      chosen[tensor] = cands[best];
    }
    decided[tensor] = chosen[tensor];
  }
  return chosen;
}

}  // namespace tinyq::quant
