// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// The only translation unit of the QAT layer that includes libtorch's headers (they take long to
// compile); everything else talks to it through mlp_trainer.h.

#include "qat/mlp_trainer.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "common/qmath.h"

namespace tinyq::qat {

namespace {

// torch's MovingAverageMinMaxObserver default: each batch moves the range 1% of the way.
constexpr double kAveragingConstant = 0.01;

struct Observer {
  bool enabled = false;
  bool seen = false;
  float min = 0.0f, max = 0.0f;
};

}  // namespace

struct MlpTrainer::Impl {
  MlpSpec spec;
  std::vector<std::string> names;
  torch::Tensor mean, stddev;
  std::vector<torch::nn::Linear> layers;
  std::vector<Observer> observers;
  bool fake_quant = false;
  bool running_minmax = false;
  std::unique_ptr<torch::optim::Adam> optimizer;
  double optimizer_lr = -1.0;
  torch::Generator generator;

  torch::Tensor point(size_t k, torch::Tensor t, bool training) {
    Observer& o = observers[k];
    if (!fake_quant || !o.enabled) return t;
    if (training) {
      torch::NoGradGuard no_grad;
      float lo = t.min().item<float>();
      float hi = t.max().item<float>();
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
    // The same scale and zero point the QDQ writer will compute from this range.
    qmath::QParams q = qmath::choose_qparams(o.min, o.max, qmath::qrange_int8(false), false);
    return torch::fake_quantize_per_tensor_affine(t, q.scale, q.zero_point, -128, 127);
  }

  torch::Tensor weight(size_t i) const {
    torch::Tensor w = layers[i]->weight;
    if (!fake_quant) return w;
    torch::Tensor scale;
    {
      torch::NoGradGuard no_grad;
      // Symmetric [-127, 127]: scale = 2 * absmax / 254, 1 for an all-zero row (choose_qparams).
      torch::Tensor absmax = w.abs().amax({1}).to(torch::kDouble);
      scale = (absmax * 2.0 / 254.0).to(torch::kFloat);
      scale = torch::where(absmax < 1.1754943508222875e-38, torch::ones_like(scale), scale);
    }
    torch::Tensor zero = torch::zeros({w.size(0)}, torch::kInt);
    return torch::fake_quantize_per_channel_affine(w, scale, zero, 0, -127, 127);
  }

  torch::Tensor forward(torch::Tensor x, bool training) {
    size_t k = 0;
    torch::Tensor t = point(k++, x, training);
    t = point(k++, (t - mean) / stddev, training);
    for (size_t i = 0; i < layers.size(); ++i) {
      t = torch::nn::functional::linear(t, weight(i), layers[i]->bias);
      bool last = i + 1 == layers.size();
      if (!last) {
        t = point(k++, t, training);
        t = point(k++, torch::relu(t), training);
      } else if (spec.squeeze) {
        t = point(k++, t, training);
        t = point(k++, t.squeeze(1), training);
      } else {
        t = point(k++, t, training);
      }
    }
    return spec.squeeze ? t : t.squeeze(1);
  }
};

MlpTrainer::MlpTrainer(const MlpSpec& spec, uint64_t seed) : impl_(std::make_unique<Impl>()) {
  // Tiny layers: one thread avoids the intra-op pool's hand-off cost on a shared machine.
  torch::set_num_threads(1);
  torch::manual_seed(seed);
  impl_->generator = torch::make_generator<torch::CPUGeneratorImpl>(seed);
  impl_->spec = spec;
  impl_->names = mlp_tensor_names(spec);
  impl_->observers.resize(impl_->names.size());
  impl_->mean = torch::tensor(spec.mean).reshape({1, spec.inputs});
  impl_->stddev = torch::tensor(spec.stddev).reshape({1, spec.inputs});
  int64_t in = spec.inputs;
  std::vector<int64_t> outs = spec.hidden;
  outs.push_back(1);
  for (int64_t out : outs) {
    impl_->layers.push_back(torch::nn::Linear(in, out));
    in = out;
  }
}

MlpTrainer::~MlpTrainer() = default;

void MlpTrainer::enable_fake_quant(const std::set<std::string>& activation_tensors, bool running_minmax) {
  impl_->fake_quant = true;
  impl_->running_minmax = running_minmax;
  for (size_t k = 0; k < impl_->names.size(); ++k)
    impl_->observers[k].enabled = activation_tensors.count(impl_->names[k]) > 0;
}

double MlpTrainer::train_epoch(const Dataset& data, const std::vector<float>& targets, int64_t batch_size,
                               double lr, bool mse) {
  Impl& m = *impl_;
  if (!m.optimizer || m.optimizer_lr != lr) {
    std::vector<torch::Tensor> params;
    for (auto& l : m.layers)
      for (auto& p : l->parameters()) params.push_back(p);
    m.optimizer = std::make_unique<torch::optim::Adam>(params, torch::optim::AdamOptions(lr));
    m.optimizer_lr = lr;
  }
  const std::vector<float>& y = targets.empty() ? data.y : targets;
  torch::Tensor X = torch::from_blob(const_cast<float*>(data.x.data()), {data.rows, data.features}, torch::kFloat);
  torch::Tensor Y = torch::from_blob(const_cast<float*>(y.data()), {data.rows}, torch::kFloat);
  torch::Tensor order = torch::randperm(data.rows, m.generator, torch::kLong);
  double total = 0.0;
  int64_t batches = 0;
  for (int64_t start = 0; start < data.rows; start += batch_size) {
    torch::Tensor idx = order.slice(0, start, std::min(start + batch_size, data.rows));
    torch::Tensor pred = m.forward(X.index_select(0, idx), true);
    torch::Tensor target = Y.index_select(0, idx);
    torch::Tensor loss = mse ? torch::mse_loss(pred, target) : torch::l1_loss(pred, target);
    m.optimizer->zero_grad();
    loss.backward();
    m.optimizer->step();
    total += loss.item<double>();
    ++batches;
  }
  return batches ? total / static_cast<double>(batches) : 0.0;
}

std::vector<float> MlpTrainer::predict(const Dataset& data) const {
  torch::NoGradGuard no_grad;
  torch::Tensor X = torch::from_blob(const_cast<float*>(data.x.data()), {data.rows, data.features}, torch::kFloat);
  torch::Tensor out = impl_->forward(X, false).contiguous();
  return std::vector<float>(out.data_ptr<float>(), out.data_ptr<float>() + out.numel());
}

std::vector<LayerWeights> MlpTrainer::weights() const {
  std::vector<LayerWeights> result;
  for (const auto& l : impl_->layers) {
    LayerWeights w;
    torch::Tensor weight = l->weight.detach().contiguous();
    torch::Tensor bias = l->bias.detach().contiguous();
    w.out = weight.size(0);
    w.in = weight.size(1);
    w.weight.assign(weight.data_ptr<float>(), weight.data_ptr<float>() + weight.numel());
    w.bias.assign(bias.data_ptr<float>(), bias.data_ptr<float>() + bias.numel());
    result.push_back(std::move(w));
  }
  return result;
}

std::map<std::string, std::pair<float, float>> MlpTrainer::activation_ranges() const {
  std::map<std::string, std::pair<float, float>> ranges;
  for (size_t k = 0; k < impl_->names.size(); ++k) {
    const Observer& o = impl_->observers[k];
    if (o.enabled && o.seen) ranges[impl_->names[k]] = {o.min, o.max};
  }
  return ranges;
}

int64_t MlpTrainer::parameter_count() const {
  int64_t n = 0;
  for (const auto& l : impl_->layers)
    for (const auto& p : l->parameters()) n += p.numel();
  return n;
}

}  // namespace tinyq::qat
