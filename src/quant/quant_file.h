// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// The file handling every quantiser shares (dynamic, static, QAT export): which paths are
// acceptable, where the output goes by default, and loading the fp32 input.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "tinyq/model_io.h"

namespace tinyq::quant {

/// Checks the fp32 input (exists, ends in .onnx) and returns the output path: `output`, or the
/// sibling <basename>.int8.onnx when empty. Refuses an output that is the input itself: the fp32
/// model is never overwritten.
std::string checked_output_path(const std::string& input, const std::string& output);

struct QuantInput {
  LoadedModel loaded;
  uint64_t fp32_bytes = 0;                 ///< the .onnx plus its external data files
  std::vector<std::string> external_data;  ///< paths of the external data files
};

/// Loads the fp32 input, refusing an output path that is one of its external data files.
QuantInput load_quant_input(const std::string& input, const std::string& output);

/// Runs `fn`, renaming errors about "model" to the input file so the CLI names the file.
void with_input_subject(const std::string& input, const std::function<void()>& fn);

}  // namespace tinyq::quant
