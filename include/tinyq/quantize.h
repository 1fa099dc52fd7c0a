// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// Post-training quantisation that needs no calibration data: dynamic PTQ.
//
// Weights are quantised offline to symmetric int8; activations are quantised at run time by
// DynamicQuantizeLinear. The output is ONNX Runtime's dynamic format, so ONNX Runtime and
// tinyq's runtime load it unchanged. For each MatMul, Gemm and Conv with a constant weight:
//
//   X -> DynamicQuantizeLinear -> X_q (uint8), X_s, X_z            (one per activation, shared)
//   MatMulInteger / ConvInteger(X_q, W_q (int8), X_z, 0) -> int32
//   Cast(float) -> Mul(X_s * W_s) -> Add(bias)                       -> the node's output
//
// Gemm becomes that MatMul chain: transB and alpha are folded into the stored weight, beta into
// the bias, transA adds a Transpose of the activation. Other ops keep fp32.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "tinyq/model.h"

namespace tinyq {

struct DynamicQuantOptions {
  /// One weight scale per output channel (MatMul/Gemm: per output column; Conv: per output
  /// channel, which ONNX Runtime's own tool does not offer) instead of one per tensor.
  bool per_channel = false;
  /// Op types to rewrite; each must be one of dynamic_quant_op_types().
  std::vector<std::string> op_types{"MatMul", "Gemm", "Conv"};
};

/// The op types the dynamic quantiser can rewrite: MatMul, Gemm, Conv.
std::vector<std::string> dynamic_quant_op_types();

/// A node the quantiser looked at: rewritten, or left fp32 with the reason.
struct QuantNodeRecord {
  std::string node;     ///< the node's name (its first output when unnamed)
  std::string op_type;
  std::string reason;   ///< why it stayed fp32; empty for rewritten nodes
};

struct DynamicQuantResult {
  Model model;
  std::vector<QuantNodeRecord> rewritten;
  std::vector<QuantNodeRecord> left_fp32;  ///< nodes of a requested op type that stayed fp32
  size_t value_info_removed = 0;           ///< pre-flight: value_info entries naming initializers
};

/// Rewrites an fp32 model in memory. Throws tinyq::Error for a model that is already quantised,
/// an opset below 11 (DynamicQuantizeLinear's first) or an op type without a quantiser.
DynamicQuantResult quantize_dynamic(const Model& fp32, const DynamicQuantOptions& options = {});

/// What quantize_dynamic_file did, for the CLI line and the --report-out JSON.
struct DynamicQuantFileResult {
  std::string input;
  std::string output;
  std::vector<std::string> external_data;  ///< data files the input's tensors were read from
  uint64_t fp32_bytes = 0;  ///< the .onnx file plus its external data files
  uint64_t int8_bytes = 0;
  DynamicQuantOptions options;
  std::vector<QuantNodeRecord> rewritten;
  std::vector<QuantNodeRecord> left_fp32;
  size_t value_info_removed = 0;

  /// int8_bytes / fp32_bytes.
  double size_ratio() const;
};

/// Loads `input` (an existing .onnx; external data is inlined), quantises it and writes `output`
/// atomically ("" = the sibling <basename>.int8.onnx). Refuses an output that is the input
/// (or one of its external data files). Errors name the file at fault.
DynamicQuantFileResult quantize_dynamic_file(const std::string& input, const std::string& output,
                                             const DynamicQuantOptions& options = {});

}  // namespace tinyq
