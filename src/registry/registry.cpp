// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// Reading registry.json, the loader's redirect (fp32 file or int8 sibling), and validation:
// schema (schema.cpp) + cross-field rules + optional file checks, all problems in one pass.

#include <algorithm>
#include <map>
#include <set>

#include "common/file_util.h"
#include "common/one_line.h"
#include "common/sha256.h"
#include "registry/registry_internal.h"
#include "tinyq/model_io.h"

namespace tinyq {

using nlohmann::json;

const char* quant_mode_name(QuantMode mode) {
  switch (mode) {
    case QuantMode::Fp32: return "fp32";
    case QuantMode::Dynamic: return "dynamic";
    case QuantMode::Static: return "static";
    case QuantMode::Qat: return "qat";
  }
  return "fp32";
}

std::optional<QuantMode> parse_quant_mode(const std::string& name) {
  for (QuantMode m : {QuantMode::Fp32, QuantMode::Dynamic, QuantMode::Static, QuantMode::Qat})
    if (name == quant_mode_name(m)) return m;
  return std::nullopt;
}

std::string RegistryEntry::label() const {
  std::string s = "models[" + std::to_string(index) + "]";
  if (!id.empty()) s += " (" + registry::short_id(id) + ")";
  return s;
}

namespace {

// "<dir>/<rel>", without a leading "./" for a registry in the current folder.
std::string join_dir(const std::string& dir, const std::string& rel) {
  if (dir.empty() || dir == ".") return rel;
  return path_join(dir, rel);
}

}  // namespace

const RegistryEntry* Registry::find(const std::string& id) const {
  for (const auto& e : models)
    if (e.id == id) return &e;
  return nullptr;
}

const RegistryEntry& Registry::at(const std::string& id) const {
  const RegistryEntry* e = find(id);
  if (!e) throw RegistryError(RegistryError::Kind::NotFound, path, "no model with id '" + id + "'");
  return *e;
}

std::string Registry::fp32_path(const RegistryEntry& e) const { return join_dir(dir, e.onnx); }

std::string Registry::int8_path(const RegistryEntry& e) const {
  return join_dir(dir, int8_sibling_path(e.onnx));
}

std::string Registry::resolved_path(const RegistryEntry& e) const {
  return e.quant_mode == QuantMode::Fp32 ? fp32_path(e) : int8_path(e);
}

const std::string& Registry::resolved_sha256(const RegistryEntry& e) const {
  return e.quant_mode == QuantMode::Fp32 ? e.sha256 : e.int8_sha256;
}

std::string Registry::sidecar_path(const RegistryEntry& e) const {
  std::string base = e.onnx;
  if (base.size() > 5 && base.compare(base.size() - 5, 5, ".onnx") == 0) base.resize(base.size() - 5);
  return join_dir(dir, base + ".json");
}

std::string Registry::calibration_path(const RegistryEntry& e) const {
  if (e.quant_calibration_set.empty()) return "";
  return join_dir(root, e.quant_calibration_set);
}

std::string resolve_reason(const Registry& registry, const RegistryEntry& e) {
  if (e.quant_mode == QuantMode::Fp32)
    return "quant_mode fp32: the loader opens the fp32 model " + registry.fp32_path(e) +
           " after checking its sha256 " + e.sha256;
  return std::string("quant_mode ") + quant_mode_name(e.quant_mode) +
         ": the loader opens the int8 sibling " + registry.int8_path(e) +
         " after checking its int8_sha256 " + (e.int8_sha256.empty() ? "(none recorded)" : e.int8_sha256) +
         "; the fp32 model " + registry.fp32_path(e) + " stays on disk as the regression baseline";
}

namespace registry {

std::string short_id(const std::string& id) { return id.size() > 64 ? id.substr(0, 61) + "..." : id; }

std::string render_problem(const std::string& registry_path, const Problem& p) {
  std::string s = registry_path + ": ";
  if (p.index >= 0) {
    s += "models[" + std::to_string(p.index) + "]";
    if (!p.id.empty()) s += " (" + short_id(p.id) + ")";
    s += ": ";
  }
  return one_line(s + p.text);  // ids and paths come from the file: one printable line each
}

Registry parse_registry(const json& doc, const std::string& path, const std::string& root) {
  Registry r;
  r.path = path;
  r.dir = path_dirname(path);
  r.root = root.empty() ? "." : root;
  if (!doc.is_object()) return r;
  if (doc.contains("schema_version") && doc["schema_version"].is_number_integer())
    r.schema_version = doc["schema_version"].get<int64_t>();
  if (!doc.contains("models") || !doc["models"].is_array()) return r;
  const json& models = doc["models"];
  for (size_t i = 0; i < models.size(); ++i) {
    RegistryEntry e;
    e.index = i;
    const json& m = models[i];
    if (m.is_object()) {
      auto str = [&](const char* key, std::string& out) {
        if (m.contains(key) && m[key].is_string()) out = m[key].get<std::string>();
      };
      str("id", e.id);
      str("kind", e.kind);
      str("onnx", e.onnx);
      str("sha256", e.sha256);
      str("quant_calibration_set", e.quant_calibration_set);
      str("int8_sha256", e.int8_sha256);
      str("license", e.license);
      str("sigstore_bundle", e.sigstore_bundle);
      if (m.contains("opset") && m["opset"].is_number_integer()) e.opset = m["opset"].get<int64_t>();
      if (m.contains("smoke") && m["smoke"].is_boolean()) e.smoke = m["smoke"].get<bool>();
      if (m.contains("quant_accuracy_budget_plcc") && m["quant_accuracy_budget_plcc"].is_number())
        e.quant_accuracy_budget_plcc = m["quant_accuracy_budget_plcc"].get<double>();
      if (m.contains("quant_mode") && m["quant_mode"].is_string())
        if (auto mode = parse_quant_mode(m["quant_mode"].get<std::string>())) e.quant_mode = *mode;
    }
    r.models.push_back(std::move(e));
  }
  return r;
}

namespace {

bool is_hex_digest(const json& m, const char* key) {
  if (!m.contains(key) || !m[key].is_string()) return false;
  const std::string s = m[key].get<std::string>();
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// Path-safety text for a relative path field, "" when it is safe.
std::string path_problem(const std::string& field, const std::string& value, const std::string& root_name) {
  if (path_stays_inside(value)) return "";
  if (!value.empty() && value[0] == '/')
    return field + " \"" + value + "\" is an absolute path; it must be relative to " + root_name;
  if (value.empty()) return field + " is empty";
  return field + " \"" + value + "\" escapes " + root_name;
}

class Checker {
 public:
  Checker(const json& doc, const Registry& reg, const RegistryOptions& opts, std::vector<Problem>& out)
      : doc_(doc), reg_(reg), opts_(opts), out_(out) {
    for (const auto& p : out_)
      if (!p.field.empty()) flagged_.insert({p.index, p.field});
  }

  void run() {
    if (!doc_.is_object() || !doc_.contains("models") || !doc_["models"].is_array()) return;
    const json& models = doc_["models"];
    std::map<std::string, size_t> first_use;
    for (size_t i = 0; i < models.size(); ++i) {
      const json& m = models[i];
      if (!m.is_object()) continue;
      index_ = static_cast<long>(i);
      const RegistryEntry& e = reg_.models[i];

      if (m.contains("id") && m["id"].is_string()) {
        auto [it, fresh] = first_use.emplace(e.id, i);
        if (!fresh) add("id", "id \"" + registry::short_id(e.id) + "\" is already used by models[" + std::to_string(it->second) + "]");
      }

      // The mode-dependent rules need a mode that parses; the schema reports one that does not.
      std::optional<QuantMode> mode = QuantMode::Fp32;
      if (m.contains("quant_mode")) {
        mode = m["quant_mode"].is_string() ? parse_quant_mode(m["quant_mode"].get<std::string>()) : std::nullopt;
      }
      std::string mode_text = mode ? std::string("\"") + quant_mode_name(*mode) + "\"" : "";
      if (mode == QuantMode::Static && !m.contains("quant_calibration_set"))
        add("quant_calibration_set", "quant_calibration_set is required when quant_mode is " + mode_text);
      if (mode && *mode != QuantMode::Fp32 && !m.contains("int8_sha256"))
        add("int8_sha256", "int8_sha256 is required when quant_mode is " + mode_text);
      // The schema's prose makes opset required for non-smoke models. (Its license text says
      // "required from schema_version 1", but schema_version's own text calls license optional
      // so shipped registries keep parsing; tinyq follows the latter.)
      if (!m.contains("opset") && !(m.contains("smoke") && m["smoke"].is_boolean() && m["smoke"].get<bool>()))
        add("opset", "opset is required for a model that is not a smoke probe");

      check_path(m, "onnx", "the registry's folder");
      check_path(m, "sigstore_bundle", "the registry's folder");
      check_path(m, "quant_calibration_set", "the repo root");

      if (opts_.check_files) check_files(m, e, mode);
    }
  }

 private:
  bool flagged(const std::string& field) const { return flagged_.count({index_, field}) != 0; }

  void add(const std::string& field, std::string text) {
    out_.push_back(Problem{index_, "", field, std::move(text)});
    if (!field.empty()) flagged_.insert({index_, field});
  }

  bool safe_path(const json& m, const char* key) const {
    return m.contains(key) && m[key].is_string() && path_stays_inside(m[key].get<std::string>());
  }

  void check_path(const json& m, const char* key, const std::string& root_name) {
    if (!m.contains(key) || !m[key].is_string() || flagged(key)) return;
    std::string text = path_problem(key, m[key].get<std::string>(), root_name);
    if (!text.empty()) add(key, text);
  }

  // Hashes a file the registry names; true when it exists and matches `key`'s digest.
  bool check_digest(const json& m, const std::string& file, const char* key, const std::string& why) {
    if (!file_exists(file)) {
      add("", "file " + file + " is missing" + why);
      return false;
    }
    if (!is_hex_digest(m, key)) return false;
    std::string want = m[key].get<std::string>();
    std::string got;
    try {
      got = sha256_file(file);
    } catch (const Error& err) {
      add("", err.message());
      return false;
    }
    if (got != want) {
      add(key, std::string(key) + " mismatch for " + file + ": the registry records " + want + ", the file has " + got);
      return false;
    }
    return true;
  }

  // Loads a model whose digest matched and checks its ops; returns it for the sidecar check.
  std::optional<Model> check_model(const std::string& file) {
    try {
      Model model = load_model(file);
      for (const auto& line : find_disallowed_nodes(model)) add("", file + ": " + line);
      return model;
    } catch (const Error& err) {
      add("", "cannot load " + err.message());
    } catch (const std::bad_alloc&) {
      add("", "cannot load " + file + ": out of memory");
    }
    return std::nullopt;
  }

  void check_files(const json& m, const RegistryEntry& e, std::optional<QuantMode> mode) {
    if (!safe_path(m, "onnx") || flagged("onnx")) return;
    std::optional<Model> fp32_model;
    std::string fp32 = reg_.fp32_path(e);
    if (check_digest(m, fp32, "sha256", "")) fp32_model = check_model(fp32);

    if (mode && *mode != QuantMode::Fp32) {
      std::string int8 = reg_.int8_path(e);
      std::string why = std::string(" (quant_mode \"") + quant_mode_name(*mode) + "\" loads it)";
      if (check_digest(m, int8, "int8_sha256", why)) check_model(int8);
    }
    if (mode == QuantMode::Static && safe_path(m, "quant_calibration_set") && !flagged("quant_calibration_set")) {
      std::string cal = reg_.calibration_path(e);
      if (!file_exists(cal)) add("quant_calibration_set", "quant_calibration_set file " + cal + " is missing");
    }
    std::string sidecar = reg_.sidecar_path(e);
    if (file_exists(sidecar)) {
      std::string model_name = path_basename(fp32);
      for (auto& text : registry::sidecar_problems(sidecar, e, fp32_model ? &*fp32_model : nullptr, model_name))
        add("", text);
    }
  }

  const json& doc_;
  const Registry& reg_;
  const RegistryOptions& opts_;
  std::vector<Problem>& out_;
  std::set<std::pair<long, std::string>> flagged_;
  long index_ = -1;
};

}  // namespace

RegistryReport validate_document(const json& doc, const std::string& path, const RegistryOptions& options) {
  RegistryReport report;
  json schema = load_schema(doc, path_dirname(path), &report.schema);
  std::vector<Problem> problems = schema_problems(doc, schema, report.schema);
  report.registry = parse_registry(doc, path, options.root);
  Checker(doc, report.registry, options, problems).run();
  for (auto& p : problems)
    if (p.index >= 0 && static_cast<size_t>(p.index) < report.registry.models.size())
      p.id = report.registry.models[static_cast<size_t>(p.index)].id;
  // Registry-wide problems first, then entry by entry; within an entry, schema before rules.
  std::stable_sort(problems.begin(), problems.end(),
                   [](const Problem& a, const Problem& b) { return a.index < b.index; });
  for (const auto& p : problems) report.problems.push_back(render_problem(path, p));
  return report;
}

}  // namespace registry

RegistryReport validate_registry(const std::string& path, const RegistryOptions& options) {
  json doc = registry::read_json_file(path);
  return registry::validate_document(doc, path, options);
}

Registry load_registry(const std::string& path, const RegistryOptions& options) {
  RegistryOptions no_files = options;
  no_files.check_files = false;
  RegistryReport report = validate_registry(path, no_files);
  if (!report.ok()) {
    std::string what = "invalid registry (" + std::to_string(report.problems.size()) +
                       (report.problems.size() == 1 ? " problem)" : " problems)") + ":";
    const std::string prefix = path + ": ";
    for (const auto& line : report.problems)
      what += "\n  " + (line.rfind(prefix, 0) == 0 ? line.substr(prefix.size()) : line);
    throw RegistryError(RegistryError::Kind::Invalid, path, what);
  }
  return std::move(report.registry);
}

}  // namespace tinyq
