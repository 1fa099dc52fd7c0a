// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include "tinyq/model.h"

#include <sstream>

#include "tinyq/error.h"

namespace tinyq {

std::string ValueInfo::shape_string() const {
  if (!has_shape) return "?";
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i) os << ',';
    if (dims[i].known()) os << dims[i].value;
    else if (!dims[i].param.empty()) os << dims[i].param;
    else os << '?';
  }
  os << ']';
  return os.str();
}

const char* attribute_kind_name(Attribute::Kind kind) {
  switch (kind) {
    case Attribute::Kind::Float: return "float";
    case Attribute::Kind::Int: return "int";
    case Attribute::Kind::String: return "string";
    case Attribute::Kind::Tensor: return "tensor";
    case Attribute::Kind::Graph: return "graph";
    case Attribute::Kind::Floats: return "floats";
    case Attribute::Kind::Ints: return "ints";
    case Attribute::Kind::Strings: return "strings";
    case Attribute::Kind::Tensors: return "tensors";
    case Attribute::Kind::Graphs: return "graphs";
    default: return "undefined";
  }
}

Attribute Attribute::make_int(std::string name, int64_t v) {
  Attribute a; a.name = std::move(name); a.kind = Kind::Int; a.i = v; return a;
}
Attribute Attribute::make_float(std::string name, float v) {
  Attribute a; a.name = std::move(name); a.kind = Kind::Float; a.f = v; return a;
}
Attribute Attribute::make_string(std::string name, std::string v) {
  Attribute a; a.name = std::move(name); a.kind = Kind::String; a.s = std::move(v); return a;
}
Attribute Attribute::make_ints(std::string name, std::vector<int64_t> v) {
  Attribute a; a.name = std::move(name); a.kind = Kind::Ints; a.ints = std::move(v); return a;
}
Attribute Attribute::make_floats(std::string name, std::vector<float> v) {
  Attribute a; a.name = std::move(name); a.kind = Kind::Floats; a.floats = std::move(v); return a;
}
Attribute Attribute::make_tensor(std::string name, tinyq::Tensor v) {
  Attribute a; a.name = std::move(name); a.kind = Kind::Tensor; a.t = std::move(v); return a;
}

const Attribute* Node::find_attr(const std::string& attr_name) const {
  for (const auto& a : attributes)
    if (a.name == attr_name) return &a;
  return nullptr;
}

namespace {
const Attribute* typed(const Node& n, const std::string& name, Attribute::Kind kind) {
  const Attribute* a = n.find_attr(name);
  if (a && a->kind != kind)
    throw Error(n.label(), "attribute '" + name + "' should be " + attribute_kind_name(kind) +
                               ", is " + attribute_kind_name(a->kind));
  return a;
}
}  // namespace

int64_t Node::attr_int(const std::string& n, int64_t fallback) const {
  const Attribute* a = typed(*this, n, Attribute::Kind::Int);
  return a ? a->i : fallback;
}
float Node::attr_float(const std::string& n, float fallback) const {
  const Attribute* a = typed(*this, n, Attribute::Kind::Float);
  return a ? a->f : fallback;
}
std::string Node::attr_string(const std::string& n, const std::string& fallback) const {
  const Attribute* a = typed(*this, n, Attribute::Kind::String);
  return a ? a->s : fallback;
}
std::vector<int64_t> Node::attr_ints(const std::string& n, const std::vector<int64_t>& fallback) const {
  const Attribute* a = typed(*this, n, Attribute::Kind::Ints);
  return a ? a->ints : fallback;
}
std::vector<float> Node::attr_floats(const std::string& n, const std::vector<float>& fallback) const {
  const Attribute* a = typed(*this, n, Attribute::Kind::Floats);
  return a ? a->floats : fallback;
}

void Node::set_attr(Attribute attr) {
  for (auto& a : attributes) {
    if (a.name == attr.name) {
      a = std::move(attr);
      return;
    }
  }
  attributes.push_back(std::move(attr));
}

const std::string& Node::input(size_t i) const {
  static const std::string none;
  return i < inputs.size() ? inputs[i] : none;
}

std::string Node::display_name() const {
  if (!name.empty()) return name;
  return outputs.empty() ? std::string("?") : outputs[0];
}

std::string Node::label() const { return op_type + " node '" + display_name() + "'"; }

const Initializer* Graph::find_initializer(const std::string& value_name) const {
  for (const auto& i : initializers)
    if (i.name == value_name) return &i;
  return nullptr;
}
Initializer* Graph::find_initializer(const std::string& value_name) {
  for (auto& i : initializers)
    if (i.name == value_name) return &i;
  return nullptr;
}

std::vector<const ValueInfo*> Graph::real_inputs() const {
  std::vector<const ValueInfo*> out;
  for (const auto& v : inputs)
    if (!find_initializer(v.name)) out.push_back(&v);
  return out;
}

int64_t Model::opset(const std::string& op_domain) const {
  for (const auto& o : opset_imports) {
    bool default_domain = (o.domain.empty() || o.domain == "ai.onnx");
    bool want_default = (op_domain.empty() || op_domain == "ai.onnx");
    if ((default_domain && want_default) || o.domain == op_domain) return o.version;
  }
  return 0;
}

}  // namespace tinyq
