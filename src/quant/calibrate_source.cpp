// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// The .npz calibration source: checks a stack of samples against the model's inputs once, then
// hands out per-sample views without copying.

#include <cmath>
#include <string>

#include "tinyq/calibrate.h"
#include "tinyq/error.h"

namespace tinyq {
namespace {

std::string names_list(const std::vector<const ValueInfo*>& inputs) {
  std::string out;
  for (const ValueInfo* v : inputs) out += (out.empty() ? "" : ", ") + v->name;
  return out;
}

bool is_float(DType t) { return t == DType::F32 || t == DType::F64 || t == DType::F16 || t == DType::BF16; }

Tensor to_float32(const Tensor& t) {
  Tensor out(DType::F32, t.shape());
  const double* src = t.data<double>();
  float* dst = out.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) dst[i] = static_cast<float>(src[i]);
  return out;
}

}  // namespace

NpzCalibrationSource::NpzCalibrationSource(NamedTensors arrays, const Model& model, bool allow_nonfinite,
                                           const std::string& subject) {
  const std::vector<const ValueInfo*> inputs = model.graph.real_inputs();
  if (inputs.empty()) throw Error(subject, "the model has no inputs to calibrate");

  for (const auto& kv : arrays) {
    bool known = false;
    for (const ValueInfo* v : inputs) known |= v->name == kv.first;
    if (!known)
      warnings_.push_back("array '" + kv.first + "' is not a model input (inputs: " + names_list(inputs) +
                          "); ignored");
  }

  std::string first_name;
  for (const ValueInfo* v : inputs) {
    const Tensor* found = find_array(arrays, v->name);
    if (!found)
      throw Error(subject, "has no array named '" + v->name + "' (the model's inputs: " + names_list(inputs) +
                               "; arrays are stacks [N, ...] of samples, one per input)");
    const std::string what = "array '" + v->name + "'";
    Tensor stack = *found;

    // Types: float model inputs take float32 samples (float64 is converted); other inputs take
    // exactly their own type.
    if (v->dtype == DType::F32 || v->dtype == DType::Undefined) {
      if (stack.dtype() == DType::F64) {
        stack = to_float32(stack);
        warnings_.push_back(what + " is float64; converted to float32");
      } else if (stack.dtype() != DType::F32) {
        throw Error(subject, what + " has dtype " + dtype_name(stack.dtype()) +
                                 "; calibration samples for a float input must be float32");
      }
    } else if (is_float(v->dtype)) {
      throw Error(subject, "input '" + v->name + "' is " + dtype_name(v->dtype) +
                               "; static quantisation calibrates float32 models only");
    } else if (stack.dtype() != v->dtype) {
      throw Error(subject, what + " has dtype " + dtype_name(stack.dtype()) + "; input '" + v->name +
                               "' takes " + dtype_name(v->dtype));
    }

    // Shapes: [N, ...] where one slice is the input as a batch of 1, or (for an input declared
    // without a batch dimension) the input itself.
    if (stack.rank() == 0) throw Error(subject, what + " is a scalar; expected a stack [N, ...] of samples");
    const int64_t n = stack.dim(0);
    if (n == 0) throw Error(subject, what + " holds no samples (N = 0)");
    Shape slice(stack.shape().begin() + 1, stack.shape().end());
    Shape sample;
    if (!v->has_shape || v->dims.size() == stack.rank()) {
      sample = slice;
      sample.insert(sample.begin(), 1);
    } else if (v->dims.size() + 1 == stack.rank() && (v->dims.empty() || v->dims[0].known())) {
      // An input declared without a batch dimension (its first dimension is fixed): each slice
      // is fed as it is.
      sample = slice;
    } else {
      throw Error(subject, what + " has shape " + shape_to_string(stack.shape()) + " (rank " +
                               std::to_string(stack.rank()) + "); input '" + v->name + "' is " +
                               v->shape_string() + ", so the stack must be [N" +
                               std::string(v->dims.size() > 1 ? ", ..." : "") + "] of rank " +
                               std::to_string(v->dims.size()));
    }
    if (v->has_shape) {
      for (size_t d = 0; d < v->dims.size(); ++d) {
        const bool batch_dim = d == 0 && v->dims.size() == stack.rank();
        if (batch_dim || !v->dims[d].known() || v->dims[d].value == sample[d]) continue;
        throw Error(subject, what + " holds samples of shape " + shape_to_string(sample) + "; input '" +
                                 v->name + "' is " + v->shape_string());
      }
      if (v->dims.size() == stack.rank() && v->dims[0].known() && v->dims[0].value != 1)
        throw Error(subject, "input '" + v->name + "' has a fixed batch of " + std::to_string(v->dims[0].value) +
                                 "; calibration feeds one sample at a time (batch 1)");
    }

    if (first_name.empty()) {
      first_name = v->name;
      samples_ = n;
    } else if (n != samples_) {
      throw Error(subject, what + " holds " + std::to_string(n) + " samples but array '" + first_name +
                               "' holds " + std::to_string(samples_));
    }

    if (stack.dtype() == DType::F32) {
      const float* p = stack.data<float>();
      int64_t bad = 0, first_bad = -1;
      for (int64_t i = 0; i < stack.numel(); ++i) {
        if (std::isfinite(p[i])) continue;
        if (first_bad < 0) first_bad = i;
        ++bad;
      }
      if (bad > 0) {
        const int64_t per_sample = n ? stack.numel() / n : 1;
        const std::string where = std::to_string(bad) + " NaN/Inf value" + (bad == 1 ? "" : "s") +
                                  " (first in sample " + std::to_string(first_bad / per_sample) + ")";
        if (!allow_nonfinite)
          throw Error(subject, what + " holds " + where + "; fix the data or pass --allow-nonfinite to skip them");
        warnings_.push_back(what + " holds " + where + "; they are skipped by the range collectors");
        nonfinite_ += bad;
      }
    }

    feeds_.push_back(Feed{v->name, stack, sample});
    names_.push_back(v->name);
  }
}

NpzCalibrationSource NpzCalibrationSource::from_file(const std::string& path, const Model& model,
                                                     bool allow_nonfinite) {
  return NpzCalibrationSource(read_npz(path), model, allow_nonfinite, path);
}

NamedTensors NpzCalibrationSource::sample(int64_t index) const {
  if (index < 0 || index >= samples_)
    throw Error("calibration", "sample " + std::to_string(index) + " is out of range (N = " +
                                   std::to_string(samples_) + ")");
  NamedTensors out;
  out.reserve(feeds_.size());
  for (const Feed& f : feeds_) {
    const size_t bytes = f.stack.nbytes() / static_cast<size_t>(samples_);
    // A view: the Session never writes into its inputs, and the stack outlives the sample.
    auto* base = const_cast<uint8_t*>(static_cast<const uint8_t*>(f.stack.raw()));
    out.emplace_back(f.name, Tensor::view(f.stack.dtype(), f.sample_shape, base + bytes * static_cast<size_t>(index)));
  }
  return out;
}

}  // namespace tinyq
