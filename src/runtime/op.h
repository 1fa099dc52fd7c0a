// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// The contract between the session and one ONNX op.
//
// validate + prepare happen in the op's factory, called once at session creation: it parses and
// checks attributes, looks at the inputs that are constant (initializers and folded values),
// packs weights, and throws tinyq::Error naming the node for anything malformed. run() computes
// the outputs; it allocates them (the reference runtime) and throws tinyq::Error for inputs whose
// shapes or types the op cannot take.

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "kernels/reduce.h"
#include "tinyq/error.h"
#include "tinyq/model.h"
#include "tinyq/tensor.h"

namespace tinyq::rt {

struct OpContext {
  const Node& node;
  int64_t opset;                         ///< the model's default-domain opset
  std::vector<const Tensor*> constants;  ///< per input: its value when constant, else nullptr

  const Tensor* constant(size_t i) const { return i < constants.size() ? constants[i] : nullptr; }
  /// Throws tinyq::Error naming the node.
  [[noreturn]] void fail(const std::string& what) const { throw Error(node.label(), what); }
};

/// Inputs of one run: nullptr for an omitted optional input.
using OpInputs = std::vector<const Tensor*>;

/// What a measured run (Op::run_measured) measures, and what it is handed.
struct RunRanges {
  /// One per output: each float output's finite range is folded in (calibration). Or null.
  kernels::FiniteRange* out = nullptr;
  /// With `out`, per output: nothing reads it, only its range is wanted, so the op may leave
  /// it empty (its range must then still be complete). Or null.
  const std::vector<bool>* range_only = nullptr;
  /// To fill, or null: output 0's {min, max} as DynamicQuantizeLinear scans it (NaN skipped,
  /// {0, 0} when no value is a number), for the op that reads it next (hands_minmax).
  float* out0_minmax = nullptr;
  /// Input 0's {min, max} as above, measured by the op that wrote it, or null (takes_minmax).
  const float* in0_minmax = nullptr;
};

class Op {
 public:
  virtual ~Op() = default;
  /// Fills outputs (already sized to the node's output count).
  virtual void run(const OpInputs& inputs, std::vector<Tensor>& outputs) = 0;
  /// run(), measuring or handed what RunRanges says. Calibration watches activations through
  /// RunRanges::out: ops whose kernels write in cache-sized blocks fold each block as it is
  /// written (FusedConv); the default makes a pass over each output afterwards. An op that
  /// scans its input's range before anything else (DynQConv: the DynamicQuantizeLinear it
  /// absorbed) takes the scan from its producer instead, where that producer made it while
  /// writing (hands_minmax); the default ignores both.
  virtual void run_measured(const OpInputs& inputs, std::vector<Tensor>& outputs, const RunRanges& ranges);
  /// Whether run_measured fills RunRanges::out0_minmax, at little cost (while writing).
  virtual bool hands_minmax() const { return false; }
  /// Whether run_measured uses RunRanges::in0_minmax.
  virtual bool takes_minmax() const { return false; }
  /// With TINYQ_PROFILE: the time (ns, summed over runs) of each part of an op made of several
  /// (a convolution chain's layers), labelled; the session prints them under the op's step.
  virtual std::vector<std::pair<std::string, double>> profile_parts() const { return {}; }
};

using OpFactory = std::unique_ptr<Op> (*)(const OpContext&);

/// One row of the op table: an op type, the default-domain opsets it is implemented for, and its
/// factory. The table itself is src/runtime/ops/op_table.def.
struct OpDef {
  const char* op_type;
  int since;  ///< first opset this implementation covers
  int until;  ///< last opset it covers
  OpFactory make;
};

const std::vector<OpDef>& op_table();
/// The row for op_type at opset, or nullptr.
const OpDef* find_op(const std::string& op_type, int64_t opset);

/// Lowest and highest default-domain opsets tinyq accepts.
constexpr int kMinOpset = 7;
constexpr int kMaxOpset = 18;

/// A lambda-backed op for simple cases: the factory captures what it parsed.
template <typename Fn>
class LambdaOp final : public Op {
 public:
  explicit LambdaOp(Fn fn) : fn_(std::move(fn)) {}
  void run(const OpInputs& inputs, std::vector<Tensor>& outputs) override { fn_(inputs, outputs); }

 private:
  Fn fn_;
};
template <typename Fn>
std::unique_ptr<Op> make_lambda_op(Fn fn) {
  return std::make_unique<LambdaOp<Fn>>(std::move(fn));
}

}  // namespace tinyq::rt
