// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// The range table's JSON form: calibration's output, saved so a rewrite can be repeated or
// inspected without running the calibration set again. Floats go through double, which holds
// every float exactly, and nlohmann prints doubles in round-trip form.

#include <cmath>
#include <nlohmann/json.hpp>

#include "tinyq/calibrate.h"
#include "tinyq/error.h"

namespace tinyq {
namespace {

constexpr const char* kFormat = "tinyq-range-table";
constexpr int kVersion = 1;

float read_float(const nlohmann::json& j, const char* key, const std::string& subject, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number())
    throw Error(subject, where + ": '" + key + "' is missing or not a number");
  const double v = it->get<double>();
  if (!std::isfinite(v)) throw Error(subject, where + ": '" + key + "' is not finite");
  return static_cast<float>(v);
}

int64_t read_count(const nlohmann::json& j, const char* key, const std::string& subject, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end()) return 0;
  if (!it->is_number_integer() || it->get<int64_t>() < 0)
    throw Error(subject, where + ": '" + key + "' must be a non-negative integer");
  return it->get<int64_t>();
}

}  // namespace

std::string range_table_to_json(const RangeTable& table) {
  nlohmann::ordered_json j;
  j["format"] = kFormat;
  j["version"] = kVersion;
  j["method"] = calibration_method_name(table.method);
  if (table.method == CalibrationMethod::Percentile) j["percentile"] = table.percentile;
  j["samples"] = table.samples;
  j["inputs"] = table.inputs;
  nlohmann::ordered_json ranges = nlohmann::ordered_json::object();
  for (const auto& kv : table.ranges) {
    const TensorRange& r = kv.second;
    ranges[kv.first] = {{"min", static_cast<double>(r.min)},
                        {"max", static_cast<double>(r.max)},
                        {"observed_min", static_cast<double>(r.observed_min)},
                        {"observed_max", static_cast<double>(r.observed_max)},
                        {"count", r.count},
                        {"nonfinite", r.nonfinite}};
  }
  j["ranges"] = std::move(ranges);
  j["non_float"] = table.non_float;
  return j.dump(2) + "\n";
}

RangeTable range_table_from_json(const std::string& text, const std::string& subject) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(subject, std::string("is not JSON: ") + e.what());
  }
  if (!j.is_object() || j.value("format", "") != kFormat)
    throw Error(subject, std::string("is not a tinyq range table (expected \"format\": \"") + kFormat + "\")");
  if (!j.contains("version") || !j["version"].is_number_integer() || j["version"].get<int>() != kVersion)
    throw Error(subject, "has an unsupported range table version (tinyq reads version " + std::to_string(kVersion) + ")");
  RangeTable t;
  const std::string method = j.value("method", "");
  auto m = parse_calibration_method(method);
  if (!m) throw Error(subject, "has an unknown calibration method '" + method + "'");
  t.method = *m;
  if (j.contains("percentile")) {
    if (!j["percentile"].is_number()) throw Error(subject, "'percentile' is not a number");
    t.percentile = j["percentile"].get<double>();
  }
  t.samples = read_count(j, "samples", subject, "range table");
  if (j.contains("inputs")) {
    if (!j["inputs"].is_array()) throw Error(subject, "'inputs' is not an array");
    for (const auto& s : j["inputs"]) {
      if (!s.is_string()) throw Error(subject, "'inputs' holds a non-string");
      t.inputs.push_back(s.get<std::string>());
    }
  }
  if (!j.contains("ranges") || !j["ranges"].is_object()) throw Error(subject, "has no \"ranges\" object");
  for (auto it = j["ranges"].begin(); it != j["ranges"].end(); ++it) {
    const std::string where = "range of '" + it.key() + "'";
    if (!it->is_object()) throw Error(subject, where + " is not an object");
    TensorRange r;
    r.min = read_float(*it, "min", subject, where);
    r.max = read_float(*it, "max", subject, where);
    if (r.min > r.max) throw Error(subject, where + ": min is above max");
    r.observed_min = it->contains("observed_min") ? read_float(*it, "observed_min", subject, where) : r.min;
    r.observed_max = it->contains("observed_max") ? read_float(*it, "observed_max", subject, where) : r.max;
    r.count = read_count(*it, "count", subject, where);
    r.nonfinite = read_count(*it, "nonfinite", subject, where);
    t.ranges.emplace(it.key(), r);
  }
  if (j.contains("non_float")) {
    if (!j["non_float"].is_array()) throw Error(subject, "'non_float' is not an array");
    for (const auto& s : j["non_float"]) {
      if (!s.is_string()) throw Error(subject, "'non_float' holds a non-string");
      t.non_float.push_back(s.get<std::string>());
    }
  }
  return t;
}

}  // namespace tinyq
