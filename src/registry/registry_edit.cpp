// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// `tinyq registry set`: edits one entry's quantisation fields. The document is edited as an
// order-preserving JSON tree and written back in the original's style (indent, ASCII escaping,
// final newline, key order; a new key goes where sorted order puts it when the entry's keys are
// sorted), so a diff shows only the fields that changed. The write is atomic (temp + rename).

#include <algorithm>
#include <cmath>
#include <set>

#include "common/file_util.h"
#include "common/sha256.h"
#include "registry/registry_internal.h"
#include "tinyq/model_io.h"

namespace tinyq {
namespace {

using ordered = nlohmann::ordered_json;

struct Style {
  int indent = 2;
  bool ascii = true;
  bool final_newline = true;
};

Style detect_style(const std::string& text) {
  Style s;
  size_t nl = text.find('\n');
  if (nl == std::string::npos) {
    s.indent = -1;  // written on one line
  } else {
    size_t i = nl + 1;
    int n = 0;
    while (i < text.size() && text[i] == ' ') ++i, ++n;
    s.indent = n > 0 ? n : 2;
  }
  s.ascii = std::all_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
  s.final_newline = !text.empty() && text.back() == '\n';
  return s;
}

// Sets obj[key] = value, keeping the position of an existing key; a new key goes before the
// first larger key when the object's keys are sorted, else at the end.
void set_key(ordered& obj, const std::string& key, ordered value) {
  if (obj.contains(key)) {
    obj[key] = std::move(value);
    return;
  }
  std::vector<std::string> keys;
  for (auto it = obj.begin(); it != obj.end(); ++it) keys.push_back(it.key());
  if (!std::is_sorted(keys.begin(), keys.end())) {
    obj[key] = std::move(value);
    return;
  }
  ordered rebuilt = ordered::object();
  bool placed = false;
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    if (!placed && key < it.key()) {
      rebuilt[key] = value;
      placed = true;
    }
    rebuilt[it.key()] = it.value();
  }
  if (!placed) rebuilt[key] = std::move(value);
  obj = std::move(rebuilt);
}

RegistryReport validate_ordered(const ordered& doc, const std::string& path, const RegistryOptions& options) {
  return registry::validate_document(nlohmann::json::parse(doc.dump()), path, options);
}

}  // namespace

RegistryUpdateResult update_registry_entry(const std::string& path, const std::string& id,
                                           const RegistryUpdate& update, const RegistryOptions& options) {
  std::string text = read_file_bounded(path, 64u << 20);
  ordered doc = registry::parse_json_text<ordered>(text, path);
  if (!doc.is_object() || !doc.contains("models") || !doc["models"].is_array())
    throw Error(path, "not a registry (no models array)");

  RegistryOptions no_files = options;
  no_files.check_files = false;
  RegistryReport before = validate_ordered(doc, path, no_files);

  ordered* entry = nullptr;
  for (auto& m : doc["models"])
    if (m.is_object() && m.contains("id") && m["id"].is_string() && m["id"].get<std::string>() == id) entry = &m;
  if (!entry) throw RegistryError(RegistryError::Kind::NotFound, path, "no model with id '" + id + "'");
  if (!(*entry).contains("onnx") || !(*entry)["onnx"].is_string())
    throw Error(path, "model '" + id + "' has no onnx path");
  std::string onnx = (*entry)["onnx"].get<std::string>();
  if (!path_stays_inside(onnx))
    throw RegistryError(RegistryError::Kind::Refused, path,
                        "model '" + id + "': onnx path \"" + onnx + "\" is absolute or escapes the registry's folder");

  RegistryUpdateResult result;
  set_key(*entry, "quant_mode", quant_mode_name(update.quant_mode));
  if (update.budget) {
    if (!std::isfinite(*update.budget) || *update.budget < 0.0 || *update.budget > 1.0)
      throw Error("--budget", "quant_accuracy_budget_plcc must be in [0, 1], got " + ordered(*update.budget).dump());
    set_key(*entry, "quant_accuracy_budget_plcc", *update.budget);
  }
  if (update.calibration_set) {
    if (!path_stays_inside(*update.calibration_set))
      throw RegistryError(RegistryError::Kind::Refused, "--calibration-set",
                          "\"" + *update.calibration_set + "\" must be a relative path inside the repo root");
    set_key(*entry, "quant_calibration_set", *update.calibration_set);
  }

  // The int8 digest always comes from the bytes of the file the loader will open.
  const std::string dir = path_dirname(path);
  const std::string sibling = dir == "." ? int8_sibling_path(onnx) : path_join(dir, int8_sibling_path(onnx));
  std::string int8_bytes;
  bool copy_int8 = false;
  if (update.int8_file) {
    int8_bytes = read_file_bounded(*update.int8_file, LoadLimits{}.max_file_bytes);
    // Record only something the loader will accept: a model with allowlisted ops.
    Model m = parse_model(int8_bytes, *update.int8_file, path_dirname(*update.int8_file)).model;
    check_model_ops(m, *update.int8_file);
    copy_int8 = !same_file(*update.int8_file, sibling);
  } else if (update.quant_mode != QuantMode::Fp32) {
    if (!file_exists(sibling))
      throw Error(sibling, std::string("no such file: quant_mode ") + quant_mode_name(update.quant_mode) +
                               " loads it; produce it first or pass --int8 FILE");
    int8_bytes = read_file_bounded(sibling, LoadLimits{}.max_file_bytes);
  }
  if (update.int8_file || update.quant_mode != QuantMode::Fp32) {
    result.int8_sha256 = sha256_hex(int8_bytes);
    set_key(*entry, "int8_sha256", result.int8_sha256);
  }

  RegistryReport after = validate_ordered(doc, path, no_files);
  std::set<std::string> old_problems(before.problems.begin(), before.problems.end());
  for (const auto& p : after.problems)
    if (!old_problems.count(p)) result.problems.push_back(p);
  if (!result.problems.empty()) return result;

  Style style = detect_style(text);
  std::string out = doc.dump(style.indent, ' ', style.ascii);
  if (style.final_newline) out += '\n';
  // The int8 file first: if the registry write then fails, the old digest no longer matches and
  // the loader refuses the model, rather than trusting bytes nobody recorded.
  if (copy_int8) write_file_atomic(sibling, int8_bytes);
  write_file_atomic(path, out);
  result.written = true;
  return result;
}

}  // namespace tinyq
