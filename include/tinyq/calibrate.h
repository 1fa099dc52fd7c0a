// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// Static post-training quantisation: calibrate on representative data, then rewrite the model in
// ONNX's QDQ format (QuantizeLinear/DequantizeLinear pairs around activations, int8 weights with
// DequantizeLinear, int32 biases), which ONNX Runtime and tinyq's runtime load unchanged.
//
// The work is done in separable stages, so a range table can be saved, inspected and reused:
//
//   CalibrationSource (one sample at a time)            e.g. NpzCalibrationSource
//     -> calibrate(): the fp32 model runs each sample with the wanted activations exposed as
//        extra outputs; collectors keep min/max (and, for the histogram methods, histograms)
//     -> a range method (minmax, percentile, entropy, mse) -> RangeTable (JSON round trip)
//     -> quantize_static(): per-op QDQ quantisers mark tensors, then the writer inserts Q/DQ.
//
// Memory during calibration is bounded by one sample's activations per worker thread, not by
// the size of the calibration set times the model.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tinyq/model.h"
#include "tinyq/npz.h"
#include "tinyq/quantize.h"
#include "tinyq/tensor.h"

namespace tinyq {

// ---------------------------------------------------------------------------------------------
// Calibration data

/// A source of calibration samples: size() samples, each one tensor per model input, shaped as
/// a batch of 1. sample() may be called from several threads at once.
class CalibrationSource {
 public:
  virtual ~CalibrationSource() = default;
  virtual int64_t size() const = 0;
  /// The model inputs each sample feeds, in model order.
  virtual const std::vector<std::string>& input_names() const = 0;
  /// Sample `index` (0 <= index < size()). The tensors may be views into the source's memory:
  /// they stay valid while the source lives and must not be written to.
  virtual NamedTensors sample(int64_t index) const = 0;
};

/// The samples of a calibration .npz: one array per model input, each a stack [N, ...] whose
/// slices are fed one at a time as a batch of 1 ([1, ...]); for an input declared without a
/// batch dimension the slice itself ([...]) is fed.
///
/// The arrays are checked against the model's inputs when the source is made, and every problem
/// is an Error naming the file and the array: a model input with no array, an array whose rank
/// or per-sample shape does not fit the input, a non-float array for a float input, N = 0,
/// arrays with different N, and NaN/Inf values (their count is given; they are refused unless
/// `allow_nonfinite`, in which case the collectors skip them). Arrays that are not model inputs
/// are ignored with a warning; float64 arrays are converted to float32 with a warning.
class NpzCalibrationSource : public CalibrationSource {
 public:
  NpzCalibrationSource(NamedTensors arrays, const Model& model, bool allow_nonfinite,
                       const std::string& subject);
  /// Reads and checks `path` (read_npz); errors name the file.
  static NpzCalibrationSource from_file(const std::string& path, const Model& model, bool allow_nonfinite);

  int64_t size() const override { return samples_; }
  const std::vector<std::string>& input_names() const override { return names_; }
  NamedTensors sample(int64_t index) const override;

  /// Non-fatal findings (ignored arrays, float64 converted, NaN/Inf allowed), one line each.
  const std::vector<std::string>& warnings() const { return warnings_; }
  /// NaN and infinite values over all arrays (only non-zero when allow_nonfinite).
  int64_t nonfinite_count() const { return nonfinite_; }

 private:
  struct Feed {
    std::string name;
    Tensor stack;       ///< [N, ...]
    Shape sample_shape;  ///< what one sample is fed as
  };
  std::vector<Feed> feeds_;
  std::vector<std::string> names_;
  std::vector<std::string> warnings_;
  int64_t samples_ = 0;
  int64_t nonfinite_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Calibration

enum class CalibrationMethod {
  MinMax,      ///< the observed minimum and maximum (ONNX Runtime's default)
  Percentile,  ///< |x| histogram cut at a percentile, symmetric as ONNX Runtime's
  Entropy,     ///< the threshold minimising KL divergence to the quantised histogram (TensorRT)
  /// Per activation, in graph order, the candidate range (the tensor's own MSE optimum, minmax,
  /// percentile clips) whose fake-quantised model outputs are closest to fp32 in squared error
  /// (src/quant/calibrate_mse_search.h).
  Mse,
};
/// "minmax", "percentile", "entropy", "mse".
const char* calibration_method_name(CalibrationMethod method);
std::optional<CalibrationMethod> parse_calibration_method(const std::string& name);

struct CalibrationOptions {
  CalibrationMethod method = CalibrationMethod::MinMax;
  double percentile = 99.999;  ///< Percentile: the share of |x| kept, in (0, 100]
  int histogram_bins = 2048;   ///< histogram methods
  /// Worker threads, each running its own session on its own samples (memory: one sample's
  /// activations per worker). 0 = up to 4, bounded by the CPUs and the sample count.
  int threads = 0;
};

/// The calibrated range of one tensor.
struct TensorRange {
  float min = 0.0f;           ///< the range the method chose
  float max = 0.0f;
  float observed_min = 0.0f;  ///< what the samples held (finite values)
  float observed_max = 0.0f;
  int64_t count = 0;      ///< finite values seen
  int64_t nonfinite = 0;  ///< NaN / Inf values skipped
};

/// Ranges of float tensors by name: the output of calibration and the input of the rewrite.
struct RangeTable {
  CalibrationMethod method = CalibrationMethod::MinMax;
  double percentile = 99.999;  ///< meaningful for Percentile
  int64_t samples = 0;
  std::vector<std::string> inputs;  ///< model inputs the samples fed
  std::map<std::string, TensorRange> ranges;
  /// Tensors calibration was asked for that turned out not to hold float32 (shapes, indices):
  /// never quantised. A tensor in neither list is taken for float.
  std::vector<std::string> non_float;

  const TensorRange* find(const std::string& tensor) const;
};

/// JSON: {"format": "tinyq-range-table", "version": 1, "method", "percentile", "samples",
/// "inputs", "ranges": {tensor: {"min", "max", "observed_min", "observed_max", "count",
/// "nonfinite"}}, "non_float": [tensor, ...]}. Floats are written so that they read back bit
/// for bit.
std::string range_table_to_json(const RangeTable& table);
/// Parses range_table_to_json's output; Error(subject, ...) for anything malformed.
RangeTable range_table_from_json(const std::string& text, const std::string& subject);

/// Runs `model` (fp32) on every sample of `source` and returns the range of each tensor of
/// `tensors` that holds float32 values (graph inputs, node outputs; others are skipped).
/// Histogram methods make a second pass over the samples, with histogram ranges taken from the
/// first; every collector merges exactly, so the table does not depend on the thread count.
RangeTable calibrate(const Model& model, const CalibrationSource& source,
                     const std::vector<std::string>& tensors, const CalibrationOptions& options = {});

// ---------------------------------------------------------------------------------------------
// The QDQ rewrite

enum class ActivationType { Int8, Uint8 };
/// "int8" / "uint8".
const char* activation_type_name(ActivationType type);
std::optional<ActivationType> parse_activation_type(const std::string& name);

struct StaticQuantOptions {
  /// Weights get one scale per output channel (Conv: axis 0, Gemm: by transB, MatMul: last
  /// axis) instead of one per tensor. Needs opset 13.
  bool per_channel = false;
  /// Activations are asymmetric int8 (ONNX Runtime's default) or uint8; weights are always
  /// symmetric int8 and biases int32.
  ActivationType activation_type = ActivationType::Int8;
  /// Node names kept fp32 (mixed precision). Every name must exist in the graph.
  std::vector<std::string> exclude_nodes;
};

/// The op types static PTQ has a QDQ quantiser for (ONNX Runtime's default list, less the ops
/// whose quantisers need more than Q/DQ around inputs and outputs).
std::vector<std::string> static_quant_op_types();

/// Tensors whose ranges the rewrite will read: those that get a Q/DQ pair of their own when
/// every candidate (a non-constant input or output of a node with a QDQ quantiser, not
/// excluded) is float. ONNX Runtime calibrates every candidate; leaving out the rest (such as a
/// Conv output whose Relu folds away) lets the runtime keep its fusions during calibration.
/// Errors name unknown --exclude-nodes entries.
std::vector<std::string> static_quant_calibration_tensors(const Model& model, const StaticQuantOptions& options);

/// What the static QDQ rewrite will quantise, before any calibration: the activations above,
/// and each constant weight with its axis (-1 per tensor, else the per-channel axis). QAT puts
/// its fake quantisation exactly here.
struct StaticQuantPlan {
  std::vector<std::string> activations;
  std::map<std::string, int> weights;
};
StaticQuantPlan static_quant_plan(const Model& model, const StaticQuantOptions& options);

/// One quantised activation, for the report.
struct ActivationQuantRecord {
  std::string tensor;
  float min = 0.0f;  ///< the range its scale covers
  float max = 0.0f;
  float scale = 1.0f;
  int32_t zero_point = 0;
  std::string shared_with;  ///< the tensor whose scale it reuses (Reshape, Squeeze, ...), or ""
};

struct StaticQuantResult {
  Model model;
  std::vector<QuantNodeRecord> quantised;  ///< nodes whose inputs/outputs got Q/DQ
  std::vector<QuantNodeRecord> left_fp32;  ///< excluded, or declined with the reason
  std::vector<QuantNodeRecord> folded;     ///< Relu/Clip merged into their producer's Q/DQ
  std::vector<ActivationQuantRecord> activations;
  size_t weights_quantised = 0;
  size_t biases_quantised = 0;
  size_t value_info_removed = 0;  ///< pre-flight: value_info entries naming initializers
  /// Op types without a QDQ quantiser, and how many nodes of each stayed fp32 for that reason.
  std::map<std::string, int> unquantisable_ops;
  /// Marks the rewrite could not honour (a tensor without a range, a bias whose input stayed
  /// fp32, ...), one line each.
  std::vector<std::string> notes;
};

/// Rewrites an fp32 model with the ranges of `ranges` (ONNX Runtime's QDQ layout: see
/// src/quant/qdq_writer.h). Throws Error for a model that is already quantised, an opset below
/// 10 (13 for per-channel), or an unknown excluded node.
StaticQuantResult quantize_static(const Model& fp32, const RangeTable& ranges,
                                  const StaticQuantOptions& options = {});

// ---------------------------------------------------------------------------------------------
// The whole command

struct StaticQuantFileOptions {
  StaticQuantOptions quant;
  CalibrationOptions calibration;
  bool allow_nonfinite = false;
  /// A saved range table to use instead of calibrating ("" = calibrate on the .npz).
  std::string ranges_in;
};

struct StaticQuantFileResult {
  std::string input;
  std::string output;
  std::string calibration;  ///< the .npz used ("" when ranges came from ranges_in)
  uint64_t fp32_bytes = 0;  ///< the .onnx file plus any external data files it names
  uint64_t int8_bytes = 0;
  StaticQuantFileOptions options;
  RangeTable ranges;
  std::vector<std::string> calibration_warnings;
  int64_t calibration_nonfinite = 0;
  StaticQuantResult quant;  ///< its model is cleared once written

  /// int8_bytes / fp32_bytes.
  double size_ratio() const;
};

/// Loads `input` (an existing .onnx; external data is inlined), calibrates on `calibration`
/// (or reads options.ranges_in), quantises and writes `output` atomically ("" = the sibling
/// <basename>.int8.onnx). Refuses an output that is the input or one of its data files.
StaticQuantFileResult quantize_static_file(const std::string& input, const std::string& output,
                                           const std::string& calibration,
                                           const StaticQuantFileOptions& options = {});

}  // namespace tinyq
