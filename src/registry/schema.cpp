// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// JSON-schema validation of registry.json with valijson (a real validator, not hand-written
// checks), and the translation of its errors into one readable line per problem.

#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <new>
#include <set>

#include "common/file_util.h"
#include "registry/registry_internal.h"

namespace tinyq::registry {
namespace {

using nlohmann::json;

// The rules of the fork's registry schema v1 (model/tiny/registry.schema.json), without its
// prose. Used only when the registry's folder has no schema file, so a registry copied on its
// own still gets the same checks.
const char* const kBuiltinSchema = R"json({
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "required": ["schema_version", "models"],
  "additionalProperties": false,
  "properties": {
    "$schema": { "type": "string" },
    "schema_version": { "type": "integer", "enum": [0, 1] },
    "models": { "type": "array", "items": { "$ref": "#/$defs/model_entry" } }
  },
  "$defs": {
    "model_entry": {
      "type": "object",
      "required": ["id", "kind", "onnx", "sha256"],
      "additionalProperties": false,
      "properties": {
        "id": { "type": "string", "pattern": "^[a-z0-9][a-z0-9_-]*$", "maxLength": 64 },
        "kind": { "enum": ["fr", "nr", "filter"] },
        "onnx": { "type": "string", "pattern": "^[a-z0-9][a-z0-9_./-]*\\.onnx$", "maxLength": 256 },
        "sha256": { "type": "string", "pattern": "^[0-9a-f]{64}$" },
        "opset": { "type": "integer", "minimum": 7, "maximum": 21 },
        "notes": { "type": "string", "maxLength": 512 },
        "smoke": { "type": "boolean", "default": false },
        "quant_mode": { "enum": ["fp32", "static", "dynamic", "qat"], "default": "fp32" },
        "quant_calibration_set": { "type": "string", "maxLength": 256 },
        "int8_sha256": { "type": "string", "pattern": "^[0-9a-f]{64}$" },
        "quant_accuracy_budget_plcc": { "type": "number", "minimum": 0.0, "maximum": 1.0, "default": 0.01 },
        "license": { "type": "string", "maxLength": 128 },
        "license_url": { "type": "string", "format": "uri", "maxLength": 512 },
        "sigstore_bundle": { "type": "string", "pattern": "^[a-z0-9][a-z0-9_./-]*\\.sigstore\\.json$", "maxLength": 256 },
        "description": { "type": "string", "maxLength": 256 }
      }
    }
  }
})json";

// Follows "$ref": "#/..." pointers inside the schema document (the only kind registry schemas use).
const json* resolve_ref(const json& root, const json* node) {
  for (int hops = 0; node && node->is_object() && node->contains("$ref") && hops < 16; ++hops) {
    const json& ref = (*node)["$ref"];
    if (!ref.is_string()) return node;
    std::string r = ref.get<std::string>();
    if (r.rfind("#", 0) != 0) return node;
    try {
      node = &root.at(json::json_pointer(r.substr(1)));
    } catch (const std::exception&) {
      return nullptr;
    }
  }
  return node;
}

bool is_index(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// valijson names each step of an error's location "<root>", "[models]", "[3]", "[quant_mode]".
std::vector<std::string> context_steps(const std::vector<std::string>& context) {
  std::vector<std::string> steps;
  for (const auto& c : context) {
    if (c == "<root>") continue;
    if (c.size() >= 2 && c.front() == '[' && c.back() == ']') steps.push_back(c.substr(1, c.size() - 2));
    else steps.push_back(c);
  }
  return steps;
}

// The schema node and the instance value at a location (either may be missing).
void locate(const json& schema, const json& doc, const std::vector<std::string>& steps,
            const json** schema_node, const json** value) {
  const json* s = resolve_ref(schema, &schema);
  const json* v = &doc;
  for (const auto& step : steps) {
    if (s && s->is_object()) {
      if (s->contains("properties") && (*s)["properties"].contains(step))
        s = resolve_ref(schema, &(*s)["properties"][step]);
      else if (is_index(step) && s->contains("items"))
        s = resolve_ref(schema, &(*s)["items"]);
      else
        s = nullptr;
    } else {
      s = nullptr;
    }
    if (v && v->is_object() && v->contains(step)) v = &(*v)[step];
    else if (v && v->is_array() && is_index(step) && std::strtoul(step.c_str(), nullptr, 10) < v->size())
      v = &(*v)[std::strtoul(step.c_str(), nullptr, 10)];
    else
      v = nullptr;
  }
  *schema_node = s;
  *value = v;
}

std::string quoted_after(const std::string& text, const std::string& marker) {
  size_t at = text.find(marker);
  if (at == std::string::npos) return "";
  size_t open = text.find('\'', at + marker.size());
  size_t close = text.rfind('\'');
  if (open == std::string::npos || close == std::string::npos || close <= open) return "";
  return text.substr(open + 1, close - open - 1);
}

std::string type_phrase(const std::string& t) {
  if (t == "integer") return "an integer";
  if (t == "number") return "a number";
  if (t == "string") return "a string";
  if (t == "boolean") return "true or false";
  if (t == "object") return "an object";
  if (t == "array") return "an array";
  if (t == "null") return "null";
  return t;
}

bool matches_type(const json& v, const std::string& t) {
  if (t == "integer") return v.is_number_integer() || (v.is_number_float() && std::trunc(v.get<double>()) == v.get<double>());
  if (t == "number") return v.is_number();
  if (t == "string") return v.is_string();
  if (t == "boolean") return v.is_boolean();
  if (t == "object") return v.is_object();
  if (t == "array") return v.is_array();
  if (t == "null") return v.is_null();
  return true;
}

std::string json_list(const json& arr) {
  std::string out;
  for (const auto& x : arr) out += (out.empty() ? "" : ", ") + x.dump();
  return out;
}

// Says which rule of `node` the value breaks, in tinyq's words; "" when none can be named.
std::string describe_violation(const std::string& field, const json& node, const json& v) {
  if (node.contains("type")) {
    std::vector<std::string> types;
    if (node["type"].is_string()) types.push_back(node["type"].get<std::string>());
    else if (node["type"].is_array())
      for (const auto& t : node["type"]) if (t.is_string()) types.push_back(t.get<std::string>());
    bool ok = types.empty() || std::any_of(types.begin(), types.end(), [&](const std::string& t) { return matches_type(v, t); });
    if (!ok)
      return field + " must be " + type_phrase(types.front()) + ", not " + std::string(v.type_name()) + " " + json_text(v);
  }
  if (node.contains("enum") && node["enum"].is_array()) {
    bool found = false;
    for (const auto& e : node["enum"]) found = found || e == v;
    if (!found) return field + " " + json_text(v) + " is not one of " + json_list(node["enum"]);
  }
  if (v.is_string()) {
    auto len = v.get<std::string>().size();
    if (node.contains("maxLength") && node["maxLength"].is_number() && len > node["maxLength"].get<double>())
      return field + " is " + std::to_string(len) + " characters long, over the limit of " + node["maxLength"].dump();
    if (node.contains("minLength") && node["minLength"].is_number() && len < node["minLength"].get<double>())
      return field + " is " + std::to_string(len) + " characters long, under the minimum of " + node["minLength"].dump();
    if (node.contains("pattern") && node["pattern"].is_string())
      return field + " " + json_text(v) + " does not match the pattern " + node["pattern"].get<std::string>();
  }
  if (v.is_number()) {
    double x = v.get<double>();
    bool has_min = node.contains("minimum") && node["minimum"].is_number();
    bool has_max = node.contains("maximum") && node["maximum"].is_number();
    bool low = has_min && x < node["minimum"].get<double>();
    bool high = has_max && x > node["maximum"].get<double>();
    if ((low || high) && has_min && has_max)
      return field + " " + v.dump() + " is outside [" + node["minimum"].dump() + ", " + node["maximum"].dump() + "]";
    if (low) return field + " " + v.dump() + " is below the minimum " + node["minimum"].dump();
    if (high) return field + " " + v.dump() + " is above the maximum " + node["maximum"].dump();
  }
  return "";
}

}  // namespace

std::string json_text(const json& v) {
  std::string s = v.dump(-1, ' ', true, json::error_handler_t::replace);
  if (s.size() > 80) s = s.substr(0, 77) + "...";
  return s;
}

json read_json_file(const std::string& path, uint64_t max_bytes) {
  return parse_json_text<json>(read_file_bounded(path, max_bytes), path);
}

json bounded_strings(const json& doc, size_t max_chars) {
  if (doc.is_string()) {
    const std::string& s = doc.get_ref<const std::string&>();
    return s.size() > max_chars ? json(s.substr(0, max_chars + 1)) : doc;
  }
  if (doc.is_array()) {
    json out = json::array();
    for (const auto& v : doc) out.push_back(bounded_strings(v, max_chars));
    return out;
  }
  if (doc.is_object()) {
    json out = json::object();
    for (auto it = doc.begin(); it != doc.end(); ++it)
      out[it.key().size() > max_chars ? it.key().substr(0, max_chars + 1) : it.key()] =
          bounded_strings(it.value(), max_chars);
    return out;
  }
  return doc;
}

json load_schema(const json& doc, const std::string& dir, std::string* used) {
  std::vector<std::string> candidates;
  if (doc.is_object() && doc.contains("$schema") && doc["$schema"].is_string()) {
    std::string s = doc["$schema"].get<std::string>();
    // A URL names a published schema tinyq cannot fetch; a relative path names a local file.
    if (s.find("://") == std::string::npos && !s.empty())
      candidates.push_back(normal_path(path_join(dir, s)));
  }
  candidates.push_back(path_join(dir, "registry.schema.json"));
  for (const auto& c : candidates) {
    if (!file_exists(c)) continue;
    json schema = read_json_file(c);
    if (!schema.is_object()) throw Error(c, "a JSON schema must be an object");
    if (used) *used = c;
    return schema;
  }
  if (used) *used = "built-in";
  return json::parse(kBuiltinSchema);
}

std::vector<Problem> schema_problems(const json& doc, const json& schema, const std::string& schema_name) {
  valijson::Schema compiled;
  valijson::ValidationResults results;
  const json bounded = bounded_strings(doc);
  // valijson throws (VALIJSON_USE_EXCEPTIONS, layer.cmake) for what it cannot use in a schema,
  // some of it only while validating: a "pattern" is compiled when a value meets it.
  try {
    valijson::SchemaParser parser(valijson::SchemaParser::kDraft7);
    valijson::adapters::NlohmannJsonAdapter schema_adapter(schema);
    parser.populateSchema(schema_adapter, compiled);
    valijson::Validator validator;
    valijson::adapters::NlohmannJsonAdapter doc_adapter(bounded);
    validator.validate(compiled, doc_adapter, &results);
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(schema_name, std::string("cannot be used as a JSON schema: ") + e.what());
  }

  std::vector<Problem> out;
  std::set<std::string> seen;
  valijson::ValidationResults::Error err;
  while (results.popError(err)) {
    const std::string& d = err.description;
    // Wrappers that only repeat a deeper error one level up.
    if (d.rfind("Failed to validate against schema associated with property", 0) == 0 ||
        d.rfind("Failed to validate item #", 0) == 0)
      continue;
    std::vector<std::string> steps = context_steps(err.context);
    Problem p;
    size_t field_from = 0;
    if (steps.size() >= 2 && steps[0] == "models" && is_index(steps[1])) {
      p.index = static_cast<long>(std::strtol(steps[1].c_str(), nullptr, 10));
      field_from = 2;
    }
    std::string field;
    for (size_t i = field_from; i < steps.size(); ++i) field += (field.empty() ? "" : ".") + steps[i];
    p.field = field;

    if (d.rfind("Missing required property", 0) == 0) {
      std::string name = quoted_after(d, "property");
      p.field = field.empty() ? name : field + "." + name;
      p.text = p.field + " is required";
    } else if (d.find("could not be validated using 'properties' or 'additionalProperties'") != std::string::npos) {
      std::string name = quoted_after(d, "constraints:");
      p.field = field.empty() ? name : field + "." + name;
      p.text = "unknown field '" + p.field + "'";
    } else {
      const json* node = nullptr;
      const json* value = nullptr;
      locate(schema, doc, steps, &node, &value);
      std::string subject = !field.empty() ? field : p.index >= 0 ? "the entry" : "the registry";
      if (node && value) p.text = describe_violation(subject, *node, *value);
      if (p.text.empty()) p.text = subject + ": " + d;
    }
    // valijson can report one failure along several paths (e.g. through "$ref"); say it once.
    std::string key = std::to_string(p.index) + "\n" + p.text;
    if (seen.insert(key).second) out.push_back(std::move(p));
  }
  return out;
}

}  // namespace tinyq::registry
