// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include "tinyq/session.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <sstream>
#include <unordered_map>

#include "graph/graph_edit.h"
#include "kernels/dispatch.h"
#include "kernels/fast/thread_pool.h"
#include "runtime/op.h"
#include "runtime/passes/passes.h"
#include "runtime/qdq_fusion.h"
#include "tinyq/error.h"
#include "tinyq/model_io.h"

namespace tinyq {

namespace {

struct Step {
  const Node* node;
  std::unique_ptr<rt::Op> op;
  std::vector<int> inputs;   // value slots, -1 for omitted
  std::vector<int> outputs;  // value slots, -1 for omitted
  std::vector<bool> range_only;  // per output: watched and read by no step (run_measured may skip it)
  bool hands_minmax = false;     // output 0's {min, max} goes to a later step that takes it
  int minmax_from = -1;          // input 0's slot when its producer hands this step its {min, max}
};

std::string describe(DType dtype, const Shape& shape) {
  return shape_to_string(shape) + " (" + dtype_name(dtype) + ")";
}

}  // namespace

struct Session::Impl {
  Model model;
  SessionOptions options;
  std::vector<ValueInfo> inputs;
  std::vector<ValueInfo> outputs;
  std::unordered_map<std::string, int> slot_of;
  std::vector<Tensor> constants;      // per slot: value when constant
  std::vector<bool> is_constant;
  std::vector<int> input_slots, output_slots;
  std::vector<Step> steps;
  std::vector<int> last_use;          // per slot: index of the last step that reads it
  std::vector<const std::string*> observed_name;  // per slot: its name when watched, or null
  std::vector<bool> is_input_slot;
  bool hands_minmax = false;          // some step takes its input's {min, max} from its producer

  int slot(const std::string& name) {
    auto it = slot_of.find(name);
    if (it != slot_of.end()) return it->second;
    int s = static_cast<int>(constants.size());
    slot_of.emplace(name, s);
    constants.emplace_back();
    is_constant.push_back(false);
    return s;
  }

  void build() {
    Graph& g = model.graph;
    int64_t opset = model.opset("");
    if (opset == 0) throw Error("model", "imports no default-domain (ai.onnx) opset");
    if (opset < rt::kMinOpset || opset > rt::kMaxOpset)
      throw Error("model", "opset " + std::to_string(opset) + " is outside the range tinyq supports (" +
                               std::to_string(rt::kMinOpset) + " to " + std::to_string(rt::kMaxOpset) + ")");
    graph::sort_topologically(g);
    // Watched tensors pose as graph outputs while the graph is rewritten, so no fusion removes them.
    const size_t declared_outputs = g.outputs.size();
    for (const std::string& name : options.observe) {
      bool listed = false;
      for (const auto& o : g.outputs) listed |= o.name == name;
      if (!listed) g.outputs.push_back(ValueInfo{name, DType::Undefined, false, {}, ""});
    }
    rt::fuse_qdq_groups(g);  // compute QDQ groups with ONNX Runtime's integer kernels
    rt::passes::PassOptions pass_options;
    pass_options.enabled = options.optimize;
    rt::passes::optimize_graph(g, opset, pass_options);  // folding + fusion into the fast kernels
    g.outputs.resize(declared_outputs);
    for (const auto& init : g.initializers) {
      int s = slot(init.name);
      constants[s] = init.tensor;
      is_constant[s] = true;
    }
    for (const ValueInfo* v : g.real_inputs()) {
      inputs.push_back(*v);
      input_slots.push_back(slot(v->name));
    }
    outputs = g.outputs;

    for (const Node& node : g.nodes) {
      const bool fused = rt::passes::is_fused(node);  // made by optimize_graph, never read from a file
      if (!fused && !node.domain.empty() && node.domain != "ai.onnx")
        throw Error(node.label(), "domain '" + node.domain + "' is not supported (only the default ONNX domain)");
      const rt::OpDef* def = fused ? rt::passes::find_fused_op(node.op_type) : rt::find_op(node.op_type, opset);
      if (!def) throw Error(node.label(), "unsupported op '" + node.op_type + "' at opset " + std::to_string(opset));
      Step step{&node, nullptr, {}, {}, {}, false, -1};
      rt::OpContext ctx{node, opset, {}};
      bool all_constant = true;
      for (const auto& in : node.inputs) step.inputs.push_back(in.empty() ? -1 : slot(in));
      for (const auto& out : node.outputs) step.outputs.push_back(out.empty() ? -1 : slot(out));
      // Pointers into `constants` only once every slot of this node exists: slot() may grow it.
      for (int s : step.inputs) {
        ctx.constants.push_back(s >= 0 && is_constant[s] ? &constants[s] : nullptr);
        if (s >= 0 && !is_constant[s]) all_constant = false;
      }
      step.op = def->make(ctx);
      if (all_constant) {
        fold(step);
      } else {
        steps.push_back(std::move(step));
      }
    }
    for (const auto& o : g.outputs) output_slots.push_back(slot(o.name));
    is_input_slot.assign(constants.size(), false);
    for (int s : input_slots) is_input_slot[s] = true;
    observed_name.assign(constants.size(), nullptr);
    for (const std::string& name : options.observe) {
      auto it = slot_of.find(name);
      if (it != slot_of.end()) observed_name[it->second] = &name;
    }
    last_use.assign(constants.size(), -1);
    for (size_t i = 0; i < steps.size(); ++i)
      for (int s : steps[i].inputs)
        if (s >= 0) last_use[s] = static_cast<int>(i);
    for (int s : output_slots) last_use[s] = static_cast<int>(steps.size());
    for (Step& step : steps)
      for (int s : step.outputs) step.range_only.push_back(s >= 0 && observed_name[s] && last_use[s] < 0);
    // {min, max} hand-over: a step that scans its input's range before anything else (DynQConv)
    // takes it from a producer that measures it while writing (output 0), not from a pass.
    std::unordered_map<int, size_t> producer;  // slot of an output 0 -> its step
    for (size_t i = 0; i < steps.size(); ++i)
      if (!steps[i].outputs.empty() && steps[i].outputs[0] >= 0) producer[steps[i].outputs[0]] = i;
    for (Step& step : steps) {
      if (step.inputs.empty() || step.inputs[0] < 0 || !step.op->takes_minmax()) continue;
      auto it = producer.find(step.inputs[0]);
      if (it == producer.end() || !steps[it->second].op->hands_minmax()) continue;
      steps[it->second].hands_minmax = true;
      step.minmax_from = step.inputs[0];
      hands_minmax = true;
    }
  }

  // Runs a node whose inputs are all constant once, now, and keeps its outputs as constants.
  void fold(Step& step) {
    rt::OpInputs in;
    for (int s : step.inputs) in.push_back(s >= 0 ? &constants[s] : nullptr);
    std::vector<Tensor> out(step.outputs.size());
    run_step(step, in, out);
    for (size_t k = 0; k < out.size(); ++k) {
      if (step.outputs[k] < 0) continue;
      constants[step.outputs[k]] = std::move(out[k]);
      is_constant[step.outputs[k]] = true;
    }
  }

  // ranges: what a measured run measures and is handed, or null for a plain run.
  static void run_step(Step& step, const rt::OpInputs& in, std::vector<Tensor>& out,
                       const rt::RunRanges* ranges = nullptr) {
    try {
      if (ranges)
        step.op->run_measured(in, out, *ranges);
      else
        step.op->run(in, out);
    } catch (const Error& e) {
      if (e.subject() == step.node->label()) throw;
      throw Error(step.node->label(), e.message());
    } catch (const std::bad_alloc&) {
      throw Error(step.node->label(), "out of memory");
    }
  }

  void check_feed(const ValueInfo& want, const Tensor& got) const {
    bool ok = got.dtype() == want.dtype || want.dtype == DType::Undefined;
    if (ok && want.has_shape) {
      ok = got.rank() == want.dims.size();
      for (size_t i = 0; ok && i < want.dims.size(); ++i)
        if (want.dims[i].known() && want.dims[i].value != got.dim(i)) ok = false;
    }
    if (!ok)
      throw Error("input '" + want.name + "'", "expected shape " + want.shape_string() + " (" +
                                                   dtype_name(want.dtype) + "), got " + describe(got.dtype(), got.shape()));
  }

  // Run state kept from one run to the next, so a run neither copies the constant slots nor
  // regrows its scratch vectors (what dominates a 6->32->16->1 MLP). A run that finds it in use
  // (another thread inside run()) works on fresh copies instead.
  std::mutex run_mu;
  std::vector<Tensor> run_values;
  rt::OpInputs run_in;
  std::vector<Tensor> run_out;

  // TINYQ_PROFILE=1: time every step; the mean per step (and per part, for ops that time their
  // parts) goes to stderr when the session ends.
  static bool profile_enabled() { return kernels::profile_enabled(); }
  std::vector<double> step_ns;
  int64_t profiled_runs = 0;

  ~Impl() {
    if (profiled_runs == 0) return;
    double total = 0;
    for (double v : step_ns) total += v;
    std::fprintf(stderr, "tinyq profile: %lld runs, %.1f us per run\n", static_cast<long long>(profiled_runs),
                 total / 1e3 / static_cast<double>(profiled_runs));
    const double runs = static_cast<double>(profiled_runs);
    for (size_t i = 0; i < step_ns.size(); ++i) {
      std::fprintf(stderr, "  %8.1f us  %5.1f%%  %s\n", step_ns[i] / 1e3 / runs, 100.0 * step_ns[i] / total,
                   steps[i].node->label().c_str());
      for (const auto& [label, ns] : steps[i].op->profile_parts())
        std::fprintf(stderr, "  %8.1f us  %5.1f%%      %s\n", ns / 1e3 / runs, 100.0 * ns / total, label.c_str());
    }
  }

  std::vector<Tensor> execute(const std::vector<Tensor>& feeds) {
    kernels::ThreadScope thread_scope(options.threads);  // SessionOptions::threads for the kernels
    std::unique_lock<std::mutex> lock(run_mu, std::try_to_lock);
    if (!lock.owns_lock()) {
      std::vector<Tensor> values = constants;
      rt::OpInputs in;
      std::vector<Tensor> out;
      return execute_on(feeds, values, in, out);
    }
    if (run_values.size() != constants.size()) run_values = constants;
    try {
      std::vector<Tensor> result = execute_on(feeds, run_values, run_in, run_out);
      for (int s : input_slots)
        if (!is_constant[s]) run_values[s] = Tensor();
      for (int s : output_slots)
        if (!is_constant[s]) run_values[s] = Tensor();
      return result;
    } catch (...) {
      for (size_t s = 0; s < run_values.size(); ++s)
        if (!is_constant[s]) run_values[s] = Tensor();
      throw;
    }
  }

  std::vector<Tensor> execute_on(const std::vector<Tensor>& feeds, std::vector<Tensor>& values, rt::OpInputs& in,
                                 std::vector<Tensor>& out) {
    for (size_t i = 0; i < inputs.size(); ++i) {
      check_feed(inputs[i], feeds[i]);
      values[input_slots[i]] = feeds[i];
    }
    if (options.on_tensor)
      for (size_t s = 0; s < observed_name.size(); ++s)
        if (observed_name[s] && (is_constant[s] || is_input_slot[s])) options.on_tensor(*observed_name[s], values[s]);
    std::vector<kernels::FiniteRange> ranges;  // per output of a step with watched outputs (on_range)
    // Per slot, the {min, max} a producer hands on (hands_minmax). Producers run first and always
    // fill it, so a consumer's minmax_from slot is set by the time it runs.
    std::vector<float> slot_minmax(hands_minmax ? 2 * values.size() : 0);
    for (size_t i = 0; i < steps.size(); ++i) {
      Step& step = steps[i];
      in.clear();
      for (int s : step.inputs) in.push_back(s >= 0 ? &values[s] : nullptr);
      out.assign(step.outputs.size(), Tensor());
      bool watched = false;
      for (int s : step.outputs) watched |= s >= 0 && observed_name[s];
      rt::RunRanges rr;
      if (options.on_range && watched) {
        ranges.assign(step.outputs.size(), kernels::FiniteRange());
        rr.out = ranges.data();
        rr.range_only = &step.range_only;
      }
      if (step.hands_minmax) rr.out0_minmax = &slot_minmax[2 * step.outputs[0]];
      if (step.minmax_from >= 0) rr.in0_minmax = &slot_minmax[2 * step.minmax_from];
      const rt::RunRanges* measured_run = rr.out || rr.out0_minmax || rr.in0_minmax ? &rr : nullptr;
      if (profile_enabled()) {
        const auto t0 = std::chrono::steady_clock::now();
        run_step(step, in, out, measured_run);
        step_ns.resize(steps.size());
        step_ns[i] += std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
        if (i + 1 == steps.size()) ++profiled_runs;
      } else {
        run_step(step, in, out, measured_run);
      }
      for (size_t k = 0; k < out.size(); ++k)
        if (step.outputs[k] >= 0) values[step.outputs[k]] = std::move(out[k]);
      for (size_t k = 0; k < step.outputs.size(); ++k) {
        const int s = step.outputs[k];
        if (s < 0 || !observed_name[s]) continue;
        const bool skipped = values[s].empty() && step.range_only[k];  // measured, never stored
        if (rr.out && (values[s].dtype() == DType::F32 || skipped))
          options.on_range(*observed_name[s], ObservedRange{rr.out[k].lo, rr.out[k].hi, rr.out[k].count, rr.out[k].nonfinite});
        else if (options.on_tensor)
          options.on_tensor(*observed_name[s], values[s]);
      }
      // Free intermediates after their last reader (constants stay shared with `constants`).
      for (int s : step.inputs)
        if (s >= 0 && last_use[s] == static_cast<int>(i) && !is_constant[s]) values[s] = Tensor();
    }
    std::vector<Tensor> result;
    for (size_t k = 0; k < output_slots.size(); ++k) {
      const Tensor& t = values[output_slots[k]];
      if (t.empty()) throw Error("output '" + outputs[k].name + "'", "was not computed by the graph");
      result.push_back(t);
    }
    return result;
  }
};

Session::Session(Model model, SessionOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->model = std::move(model);
  impl_->options = options;
  impl_->build();
}

Session Session::from_file(const std::string& path, SessionOptions options) {
  Model m = load_model(path);
  try {
    return Session(std::move(m), options);
  } catch (const Error& e) {
    throw Error(path, e.message());
  }
}

Session::~Session() = default;
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;

const std::vector<ValueInfo>& Session::inputs() const { return impl_->inputs; }
const std::vector<ValueInfo>& Session::outputs() const { return impl_->outputs; }
const Model& Session::model() const { return impl_->model; }

std::vector<Tensor> Session::run(const std::vector<Tensor>& feeds) {
  if (feeds.size() != impl_->inputs.size())
    throw Error("inputs", "the model takes " + std::to_string(impl_->inputs.size()) + " inputs, " +
                              std::to_string(feeds.size()) + " were given");
  return impl_->execute(feeds);
}

NamedTensors Session::run(const NamedTensors& feeds) {
  std::vector<Tensor> ordered;
  for (const auto& want : impl_->inputs) {
    const Tensor* t = find_array(feeds, want.name);
    if (!t) throw Error("input '" + want.name + "'", "is missing (expected shape " + want.shape_string() + ", " +
                                                         dtype_name(want.dtype) + ")");
    ordered.push_back(*t);
  }
  for (const auto& kv : feeds) {
    bool known = false;
    for (const auto& want : impl_->inputs) known |= want.name == kv.first;
    if (!known) throw Error("input '" + kv.first + "'", "is not an input of the model");
  }
  std::vector<Tensor> out = impl_->execute(ordered);
  NamedTensors named;
  for (size_t k = 0; k < out.size(); ++k) named.emplace_back(impl_->outputs[k].name, std::move(out[k]));
  return named;
}

}  // namespace tinyq
