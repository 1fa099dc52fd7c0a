// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

#include "qat/architectures.h"

#include "tinyq/error.h"

namespace tinyq::qat {

const std::vector<Architecture>& architectures() {
  static const std::vector<Architecture> table = {
      {"mlp", false, SmokeImageTarget::Quality, mlp_smoke_shape, build_mlp},
      {"learned_filter", false, SmokeImageTarget::Clean, image_smoke_shape, build_learned_filter},
      {"nr_metric", false, SmokeImageTarget::Quality, image_smoke_shape, build_nr_metric},
      {"onnx", true, SmokeImageTarget::None, onnx_smoke_shape, build_onnx},
  };
  return table;
}

const Architecture& find_architecture(const std::string& name) {
  std::string names;
  for (const auto& a : architectures()) {
    if (name == a.name) return a;
    names += (names.empty() ? "" : ", ") + std::string(a.name);
  }
  throw Error("qat", "unknown model '" + name + "' (built-in: " + names + ")");
}

const ValueInfo& qat_model_input(const Model& model, const std::string& subject) {
  std::vector<const ValueInfo*> inputs = model.graph.real_inputs();
  if (inputs.size() != 1)
    throw Error(subject, "QAT trains models with one input; this one has " + std::to_string(inputs.size()));
  if (inputs[0]->dtype != DType::F32) throw Error(subject, "input '" + inputs[0]->name + "' is not float32");
  return *inputs[0];
}

const ValueInfo& qat_model_output(const Model& model, const std::string& subject) {
  if (model.graph.outputs.empty()) throw Error(subject, "the model has no output");
  const ValueInfo& out = model.graph.outputs[0];
  if (out.dtype != DType::F32 && out.dtype != DType::Undefined)
    throw Error(subject, "output '" + out.name + "' is not float32");
  return out;
}

}  // namespace tinyq::qat
