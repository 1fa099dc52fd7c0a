// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// The graph interpreter on libtorch: a model's nodes run in topological order as compiled ATen
// calls over numbered value slots, with the trainable initializers as leaf tensors that autograd
// and Adam update, and observers + fake quantisation on the slots the plan names. Together with
// graph_ops_torch.cpp the only code that includes libtorch's headers.

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "common/qmath.h"
#include "graph/graph_edit.h"
#include "qat/graph_ops_torch.h"
#include "qat/graph_trainer.h"
#include "tinyq/error.h"

namespace tinyq::qat {

namespace {

// torch's MovingAverageMinMaxObserver default: each batch moves the range 1% of the way.
constexpr double kAveragingConstant = 0.01;
constexpr int kNotQuantised = -2;
// Rows per forward pass when predicting: bounds the activations held at once.
constexpr int64_t kPredictValues = int64_t{1} << 20;

struct Observer {
  bool enabled = false;
  bool seen = false;
  bool non_float = false;
  float min = 0.0f, max = 0.0f;
};

struct Step {
  TorchOp op;
  std::vector<int> in;       ///< slots, -1 for an omitted input
  std::vector<int> out;      ///< slots
  std::vector<int> release;  ///< slots read for the last time here
};

struct Param {
  std::string name;
  int slot = -1;
  at::Tensor value;  ///< a leaf that requires grad
  int axis = kNotQuantised;
};

// The first line of a libtorch message (the rest is a C++ backtrace).
std::string torch_message(const c10::Error& e) {
  std::string s = e.what_without_backtrace();
  size_t nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}

// Symmetric int8 fake quantisation of a weight, as quant::quantize_weight_symmetric_int8 stores
// it: scale = 2 * absmax / 254 per channel along `axis` (or per tensor), [-127, 127], zero point 0.
at::Tensor fake_quant_weight(const at::Tensor& w, int axis) {
  if (axis < 0) {
    float absmax = 0.0f;
    {
      at::NoGradGuard no_grad;
      absmax = w.abs().max().item<float>();
    }
    const qmath::QParams q = qmath::choose_qparams(-absmax, absmax, qmath::qrange_int8(true), true);
    return at::fake_quantize_per_tensor_affine(w, q.scale, q.zero_point, -127, 127);
  }
  at::Tensor scale;
  {
    at::NoGradGuard no_grad;
    at::Tensor absmax = w.abs().transpose(0, axis).reshape({w.size(axis), -1}).amax(1).to(at::kDouble);
    scale = (absmax * 2.0 / 254.0).to(at::kFloat);
    // choose_qparams' guard: a (near) zero channel gets scale 1.
    scale = at::where(absmax < 1.1754943508222875e-38, at::ones_like(scale), scale);
  }
  at::Tensor zero = at::zeros({w.size(axis)}, at::TensorOptions().dtype(at::kInt));
  return at::fake_quantize_per_channel_affine(w, scale, zero, axis, -127, 127);
}

}  // namespace

struct GraphTrainer::Impl {
  std::string subject;
  std::vector<std::string> names;       // slot -> value name
  std::map<std::string, int> slot_of;   // value name -> slot
  std::vector<at::Tensor> constants;    // slot -> initializer / Constant value (else undefined)
  std::vector<int> constant_slots;
  std::vector<Param> params;
  std::vector<Step> steps;
  int input_slot = -1, output_slot = -1;
  std::vector<Observer> observers;      // per slot
  bool fake_quant = false;
  bool running_minmax = false;
  std::unique_ptr<torch::optim::Adam> optimizer;
  double optimizer_lr = -1.0;
  at::Generator generator;

  int new_slot(const std::string& name) {
    int s = static_cast<int>(names.size());
    names.push_back(name);
    slot_of[name] = s;
    constants.emplace_back();
    observers.emplace_back();
    return s;
  }

  at::Tensor observe(int slot, const at::Tensor& t, bool training) {
    Observer& o = observers[static_cast<size_t>(slot)];
    if (!fake_quant || !o.enabled) return t;
    if (!t.is_floating_point()) {
      o.non_float = true;  // a shape or index tensor: the exporter leaves it alone too
      return t;
    }
    if (training && t.numel() > 0) {
      at::NoGradGuard no_grad;
      auto range = at::aminmax(t);
      const float lo = std::get<0>(range).item<float>(), hi = std::get<1>(range).item<float>();
      if (!o.seen) {
        o.min = lo;
        o.max = hi;
        o.seen = true;
      } else if (running_minmax) {
        o.min = std::min(o.min, lo);
        o.max = std::max(o.max, hi);
      } else {
        o.min += static_cast<float>(kAveragingConstant * (lo - o.min));
        o.max += static_cast<float>(kAveragingConstant * (hi - o.max));
      }
    }
    if (!o.seen) return t;
    // The scale and zero point the QDQ writer will compute from this range.
    const qmath::QParams q = qmath::choose_qparams(o.min, o.max, qmath::qrange_int8(false), false);
    return at::fake_quantize_per_tensor_affine(t, q.scale, q.zero_point, -128, 127);
  }

  at::Tensor forward(const at::Tensor& x, bool training) {
    std::vector<at::Tensor> v(names.size());
    for (int s : constant_slots) v[static_cast<size_t>(s)] = constants[static_cast<size_t>(s)];
    for (const Param& p : params)
      v[static_cast<size_t>(p.slot)] = fake_quant && p.axis != kNotQuantised ? fake_quant_weight(p.value, p.axis) : p.value;
    v[static_cast<size_t>(input_slot)] = observe(input_slot, x, training);
    std::vector<at::Tensor> ins;
    for (const Step& st : steps) {
      ins.assign(st.in.size(), at::Tensor());
      for (size_t i = 0; i < st.in.size(); ++i)
        if (st.in[i] >= 0) ins[i] = v[static_cast<size_t>(st.in[i])];
      std::vector<at::Tensor> outs = st.op(ins);
      for (size_t k = 0; k < st.out.size() && k < outs.size(); ++k)
        v[static_cast<size_t>(st.out[k])] = observe(st.out[k], outs[k], training);
      for (int s : st.release) v[static_cast<size_t>(s)].reset();
    }
    return v[static_cast<size_t>(output_slot)];
  }

  at::Tensor batch_of(const Dataset& d, int64_t start, int64_t rows) const {
    std::vector<int64_t> shape = {rows};
    shape.insert(shape.end(), d.sample_shape.begin(), d.sample_shape.end());
    return at::from_blob(const_cast<float*>(d.x.data()) + start * d.sample_size, shape, at::kFloat);
  }

  template <typename Fn>
  auto guarded(Fn&& fn) -> decltype(fn()) {
    try {
      return fn();
    } catch (const c10::Error& e) {
      throw Error(subject, "libtorch: " + torch_message(e));
    }
  }
};

GraphTrainer::GraphTrainer(const Model& model, const std::vector<std::string>& trainable, const std::string& subject,
                           uint64_t seed)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.subject = subject;
  // Tiny layers: one thread avoids the intra-op pool's hand-off cost on a shared machine.
  at::set_num_threads(1);
  m.generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  const Graph& g = model.graph;
  std::vector<const ValueInfo*> inputs = g.real_inputs();
  if (inputs.size() != 1 || g.outputs.empty())
    throw Error(subject, "QAT trains a model with exactly one input and at least one output");
  m.input_slot = m.new_slot(inputs[0]->name);
  const int64_t opset = model.opset("");

  m.guarded([&] {
    auto slot_for_input = [&](const std::string& name, const Node& n) -> int {
      if (name.empty()) return -1;
      auto it = m.slot_of.find(name);
      if (it != m.slot_of.end()) return it->second;
      const Initializer* init = g.find_initializer(name);
      if (!init) throw Error(n.label(), "reads '" + name + "', which no node or initializer provides");
      int s = m.new_slot(name);
      m.constants[static_cast<size_t>(s)] = to_torch(init->tensor, name);
      m.constant_slots.push_back(s);
      return s;
    };
    for (size_t index : graph::topological_order(g)) {
      const Node& n = g.nodes[index];
      Step st;
      st.op = compile_torch_op(n, opset);
      for (const auto& i : n.inputs) st.in.push_back(slot_for_input(i, n));
      for (const auto& o : n.outputs) {
        if (m.slot_of.count(o)) throw Error(n.label(), "writes '" + o + "', which is already defined");
        st.out.push_back(m.new_slot(o));
      }
      if (n.op_type == "Constant") {
        // Evaluated once: its value is a constant slot from here on.
        std::vector<at::Tensor> value = st.op({});
        for (size_t k = 0; k < st.out.size(); ++k) {
          m.constants[static_cast<size_t>(st.out[k])] = value[k];
          m.constant_slots.push_back(st.out[k]);
        }
        continue;
      }
      m.steps.push_back(std::move(st));
    }
    auto out = m.slot_of.find(g.outputs[0].name);
    if (out == m.slot_of.end()) throw Error(subject, "nothing produces the output '" + g.outputs[0].name + "'");
    m.output_slot = out->second;

    for (const auto& name : trainable) {
      auto it = m.slot_of.find(name);
      if (it == m.slot_of.end() || !m.constants[static_cast<size_t>(it->second)].defined() ||
          !g.find_initializer(name))
        throw Error(subject, "'" + name + "' is not an initializer the graph reads");
      at::Tensor& c = m.constants[static_cast<size_t>(it->second)];
      if (c.scalar_type() != at::kFloat) throw Error(subject, "'" + name + "' is not float32, so it cannot be trained");
      Param p;
      p.name = name;
      p.slot = it->second;
      p.value = c.clone().set_requires_grad(true);
      c = at::Tensor();
      m.constant_slots.erase(std::remove(m.constant_slots.begin(), m.constant_slots.end(), p.slot), m.constant_slots.end());
      m.params.push_back(std::move(p));
    }

    // Free each computed value after its last reader (predicting on big images needs it).
    std::vector<int> last(m.names.size(), -1);
    for (size_t i = 0; i < m.steps.size(); ++i)
      for (int s : m.steps[i].in)
        if (s >= 0) last[static_cast<size_t>(s)] = static_cast<int>(i);
    for (size_t s = 0; s < last.size(); ++s)
      if (last[s] >= 0 && static_cast<int>(s) != m.output_slot) m.steps[static_cast<size_t>(last[s])].release.push_back(static_cast<int>(s));
  });
}

GraphTrainer::~GraphTrainer() = default;

void GraphTrainer::enable_fake_quant(const FakeQuantPlan& plan) {
  Impl& m = *impl_;
  m.guarded([&] {
    for (const auto& t : plan.activations) {
      auto it = m.slot_of.find(t);
      if (it == m.slot_of.end()) throw Error(m.subject, "the fake-quantisation plan names '" + t + "', which the graph lacks");
      m.observers[static_cast<size_t>(it->second)].enabled = true;
    }
    for (const auto& [name, axis] : plan.weights) {
      auto param = std::find_if(m.params.begin(), m.params.end(), [&](const Param& p) { return p.name == name; });
      if (param != m.params.end()) {
        param->axis = axis;
        continue;
      }
      // A weight that is not trained (a constant MatMul input): quantised once, here.
      auto it = m.slot_of.find(name);
      if (it == m.slot_of.end() || !m.constants[static_cast<size_t>(it->second)].defined())
        throw Error(m.subject, "the fake-quantisation plan names weight '" + name + "', which the graph lacks");
      at::Tensor& c = m.constants[static_cast<size_t>(it->second)];
      if (c.is_floating_point()) c = fake_quant_weight(c, axis);
    }
    m.fake_quant = true;
    m.running_minmax = plan.running_minmax;
  });
}

double GraphTrainer::train_epoch(const Dataset& data, const std::vector<float>& targets, int64_t batch_size, double lr,
                                 bool mse) {
  Impl& m = *impl_;
  return m.guarded([&] {
    if (!m.optimizer || m.optimizer_lr != lr) {
      std::vector<torch::Tensor> leaves;
      for (auto& p : m.params) leaves.push_back(p.value);
      m.optimizer = std::make_unique<torch::optim::Adam>(leaves, torch::optim::AdamOptions(lr));
      m.optimizer_lr = lr;
    }
    const std::vector<float>& y = targets.empty() ? data.y : targets;
    if (data.rows < 1 || y.empty() || y.size() % static_cast<size_t>(data.rows) != 0)
      throw Error(m.subject, "the training rows have no targets");
    const int64_t per_row = static_cast<int64_t>(y.size()) / data.rows;
    at::Tensor X = m.batch_of(data, 0, data.rows);
    at::Tensor Y = at::from_blob(const_cast<float*>(y.data()), {data.rows, per_row}, at::kFloat);
    at::Tensor order = at::randperm(data.rows, m.generator, at::TensorOptions().dtype(at::kLong));
    double total = 0.0;
    int64_t batches = 0;
    for (int64_t start = 0; start < data.rows; start += batch_size) {
      at::Tensor idx = order.slice(0, start, std::min(start + batch_size, data.rows));
      at::Tensor pred = m.forward(X.index_select(0, idx), true);
      pred = pred.reshape({idx.size(0), -1});
      if (pred.size(1) != per_row)
        throw Error(m.subject, "the model gives " + std::to_string(pred.size(1)) + " value(s) per row but the targets have " +
                                   std::to_string(per_row));
      at::Tensor target = Y.index_select(0, idx);
      at::Tensor loss = mse ? at::mse_loss(pred, target) : at::l1_loss(pred, target);
      m.optimizer->zero_grad();
      loss.backward();
      m.optimizer->step();
      total += loss.item<double>();
      ++batches;
    }
    return batches ? total / static_cast<double>(batches) : 0.0;
  });
}

std::vector<float> GraphTrainer::predict(const Dataset& data) const {
  Impl& m = *impl_;
  return m.guarded([&] {
    at::NoGradGuard no_grad;
    std::vector<float> out;
    const int64_t chunk = std::max<int64_t>(1, kPredictValues / std::max<int64_t>(data.sample_size, 1));
    for (int64_t start = 0; start < data.rows; start += chunk) {
      const int64_t rows = std::min(chunk, data.rows - start);
      at::Tensor y = m.forward(m.batch_of(data, start, rows), false).to(at::kFloat).contiguous();
      out.insert(out.end(), y.data_ptr<float>(), y.data_ptr<float>() + y.numel());
    }
    return out;
  });
}

std::vector<int64_t> GraphTrainer::output_shape(const Dataset& data, int64_t rows) const {
  Impl& m = *impl_;
  return m.guarded([&] {
    at::NoGradGuard no_grad;
    at::Tensor y = m.forward(m.batch_of(data, 0, std::min(rows, data.rows)), false);
    if (!y.is_floating_point()) throw Error(m.subject, "the model's output is not float");
    return std::vector<int64_t>(y.sizes().begin(), y.sizes().end());
  });
}

void GraphTrainer::store_weights(Model& model) const {
  for (const Param& p : impl_->params) {
    Initializer* init = model.graph.find_initializer(p.name);
    if (!init) throw Error(impl_->subject, "the model has no initializer '" + p.name + "' to store");
    at::Tensor v = p.value.detach().contiguous();
    init->tensor = Tensor::from_vector<float>(init->tensor.shape(),
                                              std::vector<float>(v.data_ptr<float>(), v.data_ptr<float>() + v.numel()));
  }
}

std::map<std::string, std::pair<float, float>> GraphTrainer::activation_ranges() const {
  std::map<std::string, std::pair<float, float>> ranges;
  for (size_t s = 0; s < impl_->names.size(); ++s) {
    const Observer& o = impl_->observers[s];
    if (o.enabled && o.seen && !o.non_float) ranges[impl_->names[s]] = {o.min, o.max};
  }
  return ranges;
}

std::vector<std::string> GraphTrainer::non_float_activations() const {
  std::vector<std::string> out;
  for (size_t s = 0; s < impl_->names.size(); ++s)
    if (impl_->observers[s].enabled && impl_->observers[s].non_float) out.push_back(impl_->names[s]);
  return out;
}

int64_t GraphTrainer::parameter_count() const {
  int64_t n = 0;
  for (const Param& p : impl_->params) n += p.value.numel();
  return n;
}

}  // namespace tinyq::qat
