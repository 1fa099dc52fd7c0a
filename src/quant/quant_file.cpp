// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include "quant/quant_file.h"

#include <set>

#include "common/file_util.h"
#include "tinyq/error.h"

namespace tinyq::quant {

std::string checked_output_path(const std::string& input, const std::string& output) {
  if (!file_exists(input)) throw Error(input, "no such file");
  if (!has_suffix(input, ".onnx")) throw Error(input, "expected an .onnx model file");
  std::string out = output.empty() ? int8_sibling_path(input) : output;
  if (same_file(input, out))
    throw Error(out, "is the input model; the fp32 model is never overwritten (choose another --output)");
  return out;
}

QuantInput load_quant_input(const std::string& input, const std::string& output) {
  QuantInput q;
  q.loaded = load_model_file(input);
  q.fp32_bytes = file_size(input);
  std::set<std::string> data_files;
  for (const auto& ref : q.loaded.external_data) data_files.insert(path_join(path_dirname(input), ref.location));
  for (const auto& f : data_files) {
    if (same_file(f, output))
      throw Error(output, "is an external data file of the input model; choose another --output");
    q.fp32_bytes += file_size(f);
    q.external_data.push_back(f);
  }
  return q;
}

void with_input_subject(const std::string& input, const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    if (e.subject() == "model") throw Error(input, e.what());
    throw;
  }
}

}  // namespace tinyq::quant
