// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// The QDQ writer: per-op quantisers (qdq_table.cpp) mark tensors, the writer then rewrites the
// graph in ONNX Runtime's QDQ layout (quantize_static, QuantFormat.QDQ), so ONNX Runtime and
// tinyq's runtime load it unchanged and the files read like ONNX Runtime's own:
//
//   activation t (range from calibration), asymmetric int8 or uint8:
//       producer -> t -> QuantizeLinear(t_scale, t_zero_point) -> t_QuantizeLinear_Output
//                 -> DequantizeLinear -> t_DequantizeLinear_Output -> every consumer of t
//     a graph output keeps its name on the DequantizeLinear; the producer then writes
//     t_QuantizeLinear_Input.
//   weight w (initializer): symmetric int8 [-127, 127], zero point 0, per tensor or per channel:
//       w_quantized -> DequantizeLinear(w_scale, w_zero_point[, axis]) -> w_DequantizeLinear_Output
//   bias b: int32, zero point 0, scale = input scale x weight scale (Gemm keeps its beta):
//       b_quantized -> DequantizeLinear(b_quantized_scale, b_quantized_zero_point) -> b
//   shared (Reshape, Squeeze, MaxPool, ...): the output reuses its input's scale and zero point.
//   folded Relu/Clip: the producer writes the activation's output directly and the Relu/Clip
//     node goes; its output's range (which starts at 0) makes the Q/DQ pair do the clipping.
//
// Scale and zero-point maths are qmath's (src/common/qmath.h), weights go through
// quant::quantize_weight_symmetric_int8 (shared with the dynamic quantiser).

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "tinyq/calibrate.h"
#include "tinyq/model.h"

namespace tinyq::quant {

/// Quantisation parameters given to a tensor: the initializer names its Q/DQ nodes use.
struct QdqValue {
  std::string scale_name;
  std::string zero_point_name;
  std::vector<float> scales;  ///< one, or one per channel along `axis`
  int axis = -1;
  float min = 0.0f, max = 0.0f;  ///< activations: the range the scale covers
  int32_t zero_point = 0;        ///< activations
};

class QdqWriter {
 public:
  /// `non_float`: tensors known not to hold float32; any other non-constant tensor is taken
  /// for float, and gets a Q/DQ pair of its own only when it has a range.
  QdqWriter(Graph& graph, std::map<std::string, TensorRange> ranges, std::set<std::string> non_float,
            const StaticQuantOptions& options);

  // --- what the op quantisers ask
  const Graph& graph() const { return g_; }
  bool per_channel() const { return options_.per_channel; }
  /// Marked for Q/DQ by an earlier node (ONNX Runtime's is_tensor_quantized).
  bool is_marked(const std::string& t) const;
  bool has_range(const std::string& t) const { return ranges_.count(t) != 0; }
  /// The initializer named t, or nullptr.
  const Tensor* constant(const std::string& t) const;
  /// A float32 initializer, or a non-constant tensor not known to be non-float.
  bool quantisable(const std::string& t) const;
  /// Nodes, folded ones excluded, that read t.
  size_t consumer_count(const std::string& t) const;
  bool is_graph_input(const std::string& t) const;
  bool is_graph_output(const std::string& t) const;

  // --- marks (nothing in the graph changes until finish(), except folding)
  /// An activation (or a constant quantised like one: activation type, symmetric). Tensors
  /// that are not quantisable are ignored; an existing mark is kept.
  void mark_activation(const std::string& t);
  /// A weight: symmetric int8, per channel along `axis` when axis >= 0 (replacing an existing
  /// per-tensor mark), else per tensor. A non-constant weight is quantised like an activation.
  void mark_weight(const std::string& t, int axis);
  /// `out` reuses the scale and zero point `provider` will get (replaces an existing mark).
  void mark_shared(const std::string& out, const std::string& provider);
  /// An int32 bias (a float32 initializer) at scale input scale x weight scale.
  void mark_bias(const std::string& bias, const std::string& input, const std::string& weight);
  /// Folds activation node `node` (Relu/Clip reading `upstream`, writing `out`) into its
  /// producer when `out` has a range, `upstream` has a producer, no other reader and is not a
  /// graph input or output. Returns whether it did.
  bool try_fold(const std::string& upstream, const std::string& out, size_t node);
  bool is_folded(size_t node) const { return folded_.count(node) != 0; }
  /// The non-constant tensors marked so far (with `shared`, those reusing another tensor's
  /// parameters too), in marking order.
  std::vector<std::string> marked_activations(bool shared) const;
  /// The constant weights marked so far, with their axis (-1: per tensor).
  std::map<std::string, int> marked_weights() const;

  /// Inserts every Q/DQ node and initializer, removes folded nodes and unused initializers,
  /// keeps the graph in topological order.
  void finish();

  // --- what finish() did
  const std::vector<ActivationQuantRecord>& activations() const { return activations_; }
  size_t weights_quantised() const { return weights_quantised_; }
  size_t biases_quantised() const { return biases_quantised_; }
  /// Names of original nodes (by index before finish) next to at least one Q/DQ node.
  bool touched(size_t node) const { return touched_.count(node) != 0; }
  /// Tensors or biases a mark could not be honoured for, with why.
  const std::vector<std::string>& notes() const { return notes_; }

 private:
  struct Mark {
    enum class Kind { Activation, Weight } kind = Kind::Activation;
    int axis = -1;
    std::string provider;  ///< shared marks
  };
  struct BiasMark {
    std::string input, weight;
  };

  Mark* find_mark(const std::string& t);
  void set_mark(const std::string& t, const Mark& m, bool replace);
  std::string unique(const std::string& stem);
  void replace_inputs(const std::string& from, const std::string& to);
  void quantise_initializer(const std::string& name, const Mark& m);
  void quantise_activation(const std::string& name);
  void add_qdq_pair(const std::string& t, const QdqValue& v);
  void quantise_bias(const std::string& name, const BiasMark& b);
  void assemble();

  Graph& g_;
  std::map<std::string, TensorRange> ranges_;
  std::set<std::string> non_float_;
  StaticQuantOptions options_;
  std::vector<std::pair<std::string, Mark>> marks_;  // in marking order, as ONNX Runtime's dict
  std::vector<std::pair<std::string, BiasMark>> biases_;
  std::set<size_t> folded_;
  std::set<std::string> used_names_;
  std::map<std::string, QdqValue> values_;  // tensor -> its quantisation parameters
  std::vector<Node> new_nodes_;
  std::vector<Initializer> new_initializers_;
  std::set<std::string> dq_outputs_, q_inputs_;
  std::vector<ActivationQuantRecord> activations_;
  std::vector<std::string> notes_;
  std::set<size_t> touched_;
  size_t weights_quantised_ = 0;
  size_t biases_quantised_ = 0;
};

}  // namespace tinyq::quant
