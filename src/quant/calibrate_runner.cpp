// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// The calibration runner: the fp32 model, with the wanted activations added as graph outputs,
// runs one sample at a time (a batch of 1) on a few worker threads; each worker owns a session
// and its own collectors, merged at the end.

#include <algorithm>
#include <functional>
#include <map>
#include <set>
#include <thread>

#include "quant/calibrate_collect.h"
#include "quant/calibrate_mse_search.h"
#include "quant/calibrate_range.h"
#include "quant/calibrate_workers.h"
#include "tinyq/calibrate.h"
#include "tinyq/error.h"
#include "tinyq/session.h"

namespace tinyq {
namespace {

// What one pass collects for each tensor. A pass either collects min/max (first) or histograms
// laid out from the first pass's min/max (second, histogram methods only).
struct PassState {
  std::map<std::string, quant::MinMaxCollector> minmax;
  std::map<std::string, quant::HistogramCollector> hist;
  std::map<std::string, DType> dtypes;
};

int worker_count(const CalibrationOptions& options, int64_t samples) {
  int n = options.threads;
  if (n <= 0) {
    const unsigned hw = std::thread::hardware_concurrency();
    n = static_cast<int>(std::min<unsigned>(hw ? hw : 1, 4));
  }
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(n, samples)));
}

using CollectRange = std::function<void(PassState&, const std::string&, const ObservedRange&)>;

// Runs every sample through per-worker sessions; `collect` sees each observed tensor (graph
// inputs included) as soon as the session has it, while it is still in cache. With
// `collect_range`, the float tensors ops compute go there instead, as the range the op
// measured as it wrote them (no pass over the tensor, and no tensor at all where only the
// range was wanted).
template <typename Collect>
void run_samples(const Model& model, const std::vector<std::string>& observed, const CalibrationSource& source,
                 int workers, std::vector<PassState>& states, const Collect& collect,
                 const CollectRange& collect_range = nullptr) {
  quant::run_workers(source.size(), workers, [&](int w, auto& next) {
    PassState& state = states[static_cast<size_t>(w)];
    SessionOptions options;
    options.observe = observed;
    options.on_tensor = [&](const std::string& name, const Tensor& value) { collect(state, name, value); };
    if (collect_range)
      options.on_range = [&](const std::string& name, const ObservedRange& range) {
        collect_range(state, name, range);
      };
    Session session(model, options);
    for (int64_t i = next(); i >= 0; i = next()) {
      NamedTensors feeds = source.sample(i);
      try {
        session.run(feeds);
      } catch (const Error& e) {
        throw Error("calibration sample " + std::to_string(i), e.message());
      }
    }
  });
}

}  // namespace

const char* calibration_method_name(CalibrationMethod method) {
  switch (method) {
    case CalibrationMethod::MinMax: return "minmax";
    case CalibrationMethod::Percentile: return "percentile";
    case CalibrationMethod::Entropy: return "entropy";
    case CalibrationMethod::Mse: return "mse";
  }
  return "?";
}

std::optional<CalibrationMethod> parse_calibration_method(const std::string& name) {
  for (CalibrationMethod m : {CalibrationMethod::MinMax, CalibrationMethod::Percentile, CalibrationMethod::Entropy,
                              CalibrationMethod::Mse})
    if (name == calibration_method_name(m)) return m;
  return std::nullopt;
}

const TensorRange* RangeTable::find(const std::string& tensor) const {
  auto it = ranges.find(tensor);
  return it == ranges.end() ? nullptr : &it->second;
}

RangeTable calibrate(const Model& model, const CalibrationSource& source, const std::vector<std::string>& tensors,
                     const CalibrationOptions& options) {
  if (source.size() <= 0) throw Error("calibration", "the calibration set holds no samples");
  if (options.method == CalibrationMethod::Percentile && !(options.percentile > 0.0 && options.percentile <= 100.0))
    throw Error("--percentile", "must be in (0, 100], got " + std::to_string(options.percentile));
  if (options.histogram_bins < 16 || options.histogram_bins > (1 << 20))
    throw Error("calibration", "histogram bins must be in [16, 1048576]");

  // Initializers need no calibration; every other wanted tensor is watched as the session runs.
  std::vector<std::string> observed;
  for (const auto& t : tensors)
    if (!t.empty() && !model.graph.find_initializer(t)) observed.push_back(t);
  const int workers = worker_count(options, source.size());

  // Pass 1: min/max (and the dtype each tensor turned out to have).
  std::vector<PassState> states(static_cast<size_t>(workers));
  run_samples(
      model, observed, source, workers, states,
      [&](PassState& st, const std::string& name, const Tensor& t) {
        st.dtypes.emplace(name, t.dtype());
        if (t.dtype() == DType::F32) st.minmax[name].add(t.data<float>(), t.numel());
      },
      [&](PassState& st, const std::string& name, const ObservedRange& r) {
        st.dtypes.emplace(name, DType::F32);  // on_range takes float tensors only
        quant::MinMaxCollector measured;
        measured.min = r.min;
        measured.max = r.max;
        measured.nonfinite = r.nonfinite;
        measured.count = r.count - r.nonfinite;
        st.minmax[name].merge(measured);
      });
  PassState merged;
  for (auto& st : states) {
    for (auto& kv : st.dtypes) merged.dtypes.emplace(kv.first, kv.second);
    for (auto& kv : st.minmax) merged.minmax[kv.first].merge(kv.second);
  }

  // Pass 2 (histogram methods): histograms over the ranges pass 1 found.
  if (options.method != CalibrationMethod::MinMax) {
    for (auto& st : states) {
      st.hist.clear();
      for (const auto& kv : merged.minmax)
        st.hist.emplace(kv.first, quant::make_histogram(options.method, kv.second, options.histogram_bins));
    }
    run_samples(model, observed, source, workers, states, [&](PassState& st, const std::string& name, const Tensor& t) {
      auto it = st.hist.find(name);
      if (it != st.hist.end() && t.dtype() == DType::F32) it->second.add(t.data<float>(), t.numel());
    });
    for (const auto& kv : merged.minmax) {
      quant::HistogramCollector h = states[0].hist.at(kv.first);
      for (size_t w = 1; w < states.size(); ++w) h.merge(states[w].hist.at(kv.first));
      merged.hist.emplace(kv.first, std::move(h));
    }
  }

  // mse: each tensor's range is picked among candidates by the error of the model's outputs.
  std::map<std::string, std::pair<float, float>> searched;
  if (options.method == CalibrationMethod::Mse) {
    std::map<std::string, quant::TensorStats> stats;
    for (const auto& kv : merged.minmax)
      if (!kv.second.empty()) stats[kv.first] = {&kv.second, &merged.hist.at(kv.first)};
    searched = quant::mse_output_search(model, source, stats, workers);
  }

  RangeTable table;
  table.method = options.method;
  table.percentile = options.percentile;
  table.samples = source.size();
  table.inputs = source.input_names();
  for (const auto& kv : merged.dtypes)
    if (kv.second != DType::F32) table.non_float.push_back(kv.first);
  for (const auto& kv : merged.minmax) {
    const quant::MinMaxCollector& mm = kv.second;
    TensorRange r;
    r.count = mm.count;
    r.nonfinite = mm.nonfinite;
    if (!mm.empty()) {
      r.observed_min = mm.min;
      r.observed_max = mm.max;
    }
    static const quant::HistogramCollector kNone;
    auto h = merged.hist.find(kv.first);
    auto range = quant::choose_range(options, mm, h == merged.hist.end() ? kNone : h->second);
    if (auto s = searched.find(kv.first); s != searched.end()) range = s->second;
    r.min = range.first;
    r.max = range.second;
    table.ranges.emplace(kv.first, r);
  }
  return table;
}

}  // namespace tinyq
