// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// The accuracy gate: runs an fp32 model and its int8 sidecar on the same inputs and compares
// their outputs by Pearson correlation (PLCC), as the seed's CI gate (measure_quant_drop.py)
// does. Seed-exact inputs: 16 samples of numpy.random.default_rng(0).random(shape, float32),
// shape = the input's positive dims with 1 for every symbolic or unknown dim.

#include <cstdint>
#include <string>
#include <vector>

namespace tinyq {

struct Registry;
struct RegistryEntry;

/// Pass: drop <= budget. Fail: the int8 model's accuracy is out of budget or cannot be measured
/// (constant or non-finite output). Error: the gate could not run (file missing, model refused).
enum class GateStatus { Pass, Fail, Error };
const char* gate_status_name(GateStatus status);

struct GateOptions {
  int samples = 16;          ///< synthetic samples (seed mode)
  uint64_t seed = 0;         ///< numpy default_rng seed; one generator per gated model
  bool seed_inputs = true;   ///< gate on the synthetic inputs
  std::string data_path;     ///< also gate on real inputs: .npz, one [N, ...] array per input
  /// A data file shared by several models (--all): a model none of whose inputs it holds gets no
  /// data row instead of an error row. Holding only some of a model's inputs is still an error.
  bool data_if_present = false;
  std::string output_name;   ///< "" = the first graph output (the seed's behaviour)
  bool all_outputs = false;  ///< one row per graph output
  bool keep_values = false;  ///< keep the compared values in each row (for the HTML report)
};

struct GateRow {
  std::string id;
  std::string mode;  ///< quant_mode: dynamic / static / qat
  std::string fp32_path;
  std::string int8_path;
  std::string inputs = "seed";  ///< "seed" or "data"
  std::string output;           ///< graph output compared ("" when the gate never got that far)
  bool output_chosen = false;   ///< output named by --output-name/--all-outputs: printed in the row
  int64_t samples = 0;
  int64_t values = 0;  ///< compared values over all samples
  double plcc = 0, drop = 0, worst_abs = 0;
  bool has_numbers = false;  ///< plcc/drop/worst_abs are meaningful
  double budget = 0.01;
  GateStatus status = GateStatus::Error;
  std::string reason;  ///< why it failed ("" on a pass)
  std::vector<float> fp32_values, int8_values;  ///< with GateOptions::keep_values

  bool pass() const { return status == GateStatus::Pass; }
};

/// Gates an explicit fp32/int8 pair: one row per input set (seed, data) and compared output.
/// Never throws for a bad model or a missing file: those become Error rows naming the file.
std::vector<GateRow> gate_model_pair(const std::string& id, const std::string& mode,
                                     const std::string& fp32_path, const std::string& int8_path,
                                     double budget, const GateOptions& options = {});

/// Gates one registry entry (quant_mode != fp32): fp32 = <dir>/<onnx>, int8 its
/// <basename>.int8.onnx sibling, budget = quant_accuracy_budget_plcc.
std::vector<GateRow> gate_registry_entry(const Registry& registry, const RegistryEntry& entry,
                                         const GateOptions& options = {});

/// `[PASS] vmaf_tiny_v3             mode=dynamic PLCC=0.999880  drop=0.000120  budget=0.0100  worst_abs=2.2058`
std::string gate_row_line(const GateRow& row);
/// `[skip] ID — quant_mode=fp32, no quantised model to gate`
std::string gate_skip_line(const std::string& id);

/// 0 when every row passes, 1 when any fails its budget (or its accuracy is undefined), 2 when
/// any row is an error.
int gate_exit_code(const std::vector<GateRow>& rows);

/// The rows as JSON (id, mode, fp32, int8, inputs, output, samples, plcc, drop, budget,
/// worst_abs, pass, status, reason; non-finite numbers as null).
std::string gate_rows_json(const std::vector<GateRow>& rows, int indent = 2);

/// A self-contained HTML page (inline SVG and CSS, no scripts, no network): per row the scatter
/// of int8 against fp32 with the identity line, the error histogram, the numbers and the verdict.
/// Rows without kept values still get their numbers. Well-formed XML (XHTML-compatible).
std::string gate_html_report(const std::vector<GateRow>& rows, const std::string& title);

}  // namespace tinyq
