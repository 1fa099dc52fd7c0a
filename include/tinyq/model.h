// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// The project's own model IR: protobuf-free, so only src/io sees ONNX's generated classes.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tinyq/tensor.h"

namespace tinyq {

/// One dimension of a declared shape: a value (>= 0), a symbolic name, or unknown.
struct Dim {
  int64_t value = -1;
  std::string param;
  bool known() const { return value >= 0; }
};

/// A graph input, output or value_info entry.
struct ValueInfo {
  std::string name;
  DType dtype = DType::Undefined;
  bool has_shape = false;  ///< false: rank unknown
  std::vector<Dim> dims;
  std::string doc;
  /// "[batch,1,224,224]" (unknown dims print as '?', no shape as "?").
  std::string shape_string() const;
};

struct Graph;

/// A node attribute; `kind` says which member holds the value (ONNX AttributeType numbers).
struct Attribute {
  enum class Kind : int32_t {
    Undefined = 0, Float = 1, Int = 2, String = 3, Tensor = 4, Graph = 5,
    Floats = 6, Ints = 7, Strings = 8, Tensors = 9, Graphs = 10,
  };
  std::string name;
  Kind kind = Kind::Undefined;
  float f = 0.0f;
  int64_t i = 0;
  std::string s;
  tinyq::Tensor t;
  std::shared_ptr<tinyq::Graph> g;
  std::vector<float> floats;
  std::vector<int64_t> ints;
  std::vector<std::string> strings;
  std::vector<tinyq::Tensor> tensors;
  std::vector<std::shared_ptr<tinyq::Graph>> graphs;
  std::string doc;

  static Attribute make_int(std::string name, int64_t v);
  static Attribute make_float(std::string name, float v);
  static Attribute make_string(std::string name, std::string v);
  static Attribute make_ints(std::string name, std::vector<int64_t> v);
  static Attribute make_floats(std::string name, std::vector<float> v);
  static Attribute make_tensor(std::string name, tinyq::Tensor v);
};

const char* attribute_kind_name(Attribute::Kind kind);

struct Node {
  std::string name;
  std::string op_type;
  std::string domain;  ///< "" and "ai.onnx" both mean the default domain
  std::vector<std::string> inputs;  ///< "" marks an omitted optional input
  std::vector<std::string> outputs;
  std::vector<Attribute> attributes;
  std::string doc;

  const Attribute* find_attr(const std::string& attr_name) const;
  /// Typed getters: the default when absent; tinyq::Error naming the node when the kind is wrong.
  int64_t attr_int(const std::string& attr_name, int64_t fallback) const;
  float attr_float(const std::string& attr_name, float fallback) const;
  std::string attr_string(const std::string& attr_name, const std::string& fallback) const;
  std::vector<int64_t> attr_ints(const std::string& attr_name,
                                 const std::vector<int64_t>& fallback = {}) const;
  std::vector<float> attr_floats(const std::string& attr_name,
                                 const std::vector<float>& fallback = {}) const;
  void set_attr(Attribute attr);
  /// Input i, or "" when absent or omitted.
  const std::string& input(size_t i) const;
  bool has_input(size_t i) const { return i < inputs.size() && !inputs[i].empty(); }
  /// The node's name, or its first output when unnamed (ONNX names are optional).
  std::string display_name() const;
  /// "Conv node 'conv1'" for messages.
  std::string label() const;
};

/// True for the default ONNX operator domain, spelled "" or "ai.onnx".
inline bool is_default_domain(const std::string& domain) { return domain.empty() || domain == "ai.onnx"; }

struct Initializer {
  std::string name;
  tinyq::Tensor tensor;
  std::string doc;
};

struct Graph {
  std::string name;
  std::string doc;
  std::vector<Node> nodes;
  std::vector<Initializer> initializers;
  std::vector<ValueInfo> inputs;   ///< may also list initializers (old IR); see real_inputs()
  std::vector<ValueInfo> outputs;
  std::vector<ValueInfo> value_info;

  const Initializer* find_initializer(const std::string& value_name) const;
  Initializer* find_initializer(const std::string& value_name);
  /// Graph inputs that are not initializers: what a caller must feed.
  std::vector<const ValueInfo*> real_inputs() const;
};

struct OpsetImport {
  std::string domain;
  int64_t version = 0;
};

struct Model {
  int64_t ir_version = 8;
  std::string producer_name;
  std::string producer_version;
  std::string domain;
  int64_t model_version = 0;
  std::string doc;
  std::vector<OpsetImport> opset_imports;
  std::vector<std::pair<std::string, std::string>> metadata;
  Graph graph;

  /// Opset version imported for a domain ("" = default ONNX domain); 0 when not imported.
  int64_t opset(const std::string& op_domain = "") const;
};

}  // namespace tinyq
