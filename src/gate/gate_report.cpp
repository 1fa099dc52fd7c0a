// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// The gate's text rows (the seed's format, byte for byte on a plain run) and its JSON rows.

#include <cmath>
#include <cstdio>

#include "gate/gate_json.h"
#include "tinyq/gate.h"

namespace tinyq {
namespace {

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

nlohmann::json number_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

}  // namespace

std::string gate_row_line(const GateRow& row) {
  // The seed prints f"[{tag}] {id:<24} mode={mode} PLCC={plcc:.6f}  drop={drop:.6f}  ..."; the id
  // is padded, never cut.
  std::string id = row.id;
  if (id.size() < 24) id.append(24 - id.size(), ' ');
  std::string line = std::string("[") + gate_status_name(row.status) + "] " + id + " mode=" + row.mode;
  // Tags appear only off the seed's path, so a plain run prints exactly the seed's rows.
  if (row.inputs != "seed") line += " inputs=" + row.inputs;
  if (row.output_chosen) line += " output=" + row.output;
  if (row.has_numbers) {
    line += " PLCC=" + fixed(row.plcc, 6) + "  drop=" + fixed(row.drop, 6) + "  budget=" + fixed(row.budget, 4) +
            "  worst_abs=" + fixed(row.worst_abs, 4);
    if (!row.reason.empty()) line += "  \xe2\x80\x94 " + row.reason;
  } else {
    line += " \xe2\x80\x94 " + row.reason;
  }
  return line;
}

std::string gate_skip_line(const std::string& id) {
  return "[skip] " + id + " \xe2\x80\x94 quant_mode=fp32, no quantised model to gate";
}

nlohmann::json gate_rows_to_json(const std::vector<GateRow>& rows) {
  nlohmann::json out = nlohmann::json::array();
  for (const GateRow& r : rows) {
    bool measured = r.status != GateStatus::Error && r.values > 0;
    nlohmann::json j;
    j["id"] = r.id;
    j["mode"] = r.mode;
    j["fp32_path"] = r.fp32_path;
    j["int8_path"] = r.int8_path;
    j["inputs"] = r.inputs;
    j["output"] = r.output.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.output);
    j["samples"] = r.samples;
    j["values"] = r.values;
    j["plcc"] = r.has_numbers ? number_or_null(r.plcc) : nlohmann::json(nullptr);
    j["drop"] = r.has_numbers ? number_or_null(r.drop) : nlohmann::json(nullptr);
    j["budget"] = number_or_null(r.budget);
    j["worst_abs"] = measured ? number_or_null(r.worst_abs) : nlohmann::json(nullptr);
    j["pass"] = r.pass();
    j["status"] = r.status == GateStatus::Pass ? "pass" : r.status == GateStatus::Fail ? "fail" : "error";
    j["reason"] = r.reason.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.reason);
    out.push_back(std::move(j));
  }
  return out;
}

std::string gate_rows_json(const std::vector<GateRow>& rows, int indent) {
  return gate_rows_to_json(rows).dump(indent);
}

}  // namespace tinyq
