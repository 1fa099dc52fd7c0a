// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tinyq/model.h"
#include "tinyq/npz.h"
#include "tinyq/tensor.h"

namespace tinyq {

/// A watched float tensor's range, measured as it was written (SessionOptions::on_range): the
/// minimum and maximum of its finite values (+inf / -inf when it has none), how many values it
/// has and how many of them were NaN or infinite.
struct ObservedRange {
  float min = 0.0f, max = 0.0f;
  int64_t count = 0, nonfinite = 0;
};

struct SessionOptions {
  int threads = 1;
  /// Graph-level optimisation when the session is built: constant folding and fusion into
  /// tinyq's fast kernels (src/runtime/passes). false runs the graph's nodes as written.
  bool optimize = true;
  /// Tensors to watch: each is kept materialised (never fused away, like a graph output) and
  /// handed to `on_tensor` as soon as it is computed, on the thread running the session, then
  /// freed after its last reader as usual. Calibration reads activations this way, while they
  /// are still in cache, without keeping a whole run's activations alive. A watched graph input
  /// is handed over at the start of a run, a watched constant on every run.
  std::vector<std::string> observe;
  std::function<void(const std::string& name, const Tensor& value)> on_tensor;
  /// Optional: watched float tensors that an op computes go here instead of to on_tensor, as
  /// their range, folded in by the op while it wrote them, still in cache (calibration's min/max
  /// pass needs no second pass over each activation). A watched tensor no node reads need not
  /// be stored at all then (a convolution's output that only feeds a residual Add it was fused
  /// with). Graph inputs, constants and other element types still go to on_tensor.
  std::function<void(const std::string& name, const ObservedRange& range)> on_range;
};

/// An inference session over one model: load once, run many times. Every op is checked when the
/// session is built (unknown ops, other domains, malformed attributes throw tinyq::Error naming
/// the node); run() checks the feeds against the declared inputs.
class Session {
 public:
  explicit Session(Model model, SessionOptions options = {});
  static Session from_file(const std::string& path, SessionOptions options = {});
  ~Session();
  Session(Session&&) noexcept;
  Session& operator=(Session&&) noexcept;

  /// Inputs a caller must feed (initializers excluded), in graph order.
  const std::vector<ValueInfo>& inputs() const;
  const std::vector<ValueInfo>& outputs() const;
  const Model& model() const;

  /// Runs with feeds given by input name; returns every graph output in graph order.
  /// Missing, extra, mistyped or mis-shaped feeds throw tinyq::Error naming the input.
  NamedTensors run(const NamedTensors& feeds);
  /// Same, feeds in the order of inputs().
  std::vector<Tensor> run(const std::vector<Tensor>& feeds);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tinyq
