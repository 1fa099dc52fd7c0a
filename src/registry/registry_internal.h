// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// Shared by the registry layer's files: problems before they are rendered as lines, the schema
// check, the lenient parse, sidecar checks and the whole-document validation.

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "tinyq/error.h"
#include "tinyq/registry.h"

namespace tinyq::registry {

/// One problem; index < 0 for the registry as a whole. `field` is the entry field it is about
/// ("" when none), so cross-field rules can stay quiet about a field the schema already flagged.
struct Problem {
  long index = -1;
  std::string id;
  std::string field;
  std::string text;
};

/// `<path>: models[i] (id): text`.
std::string render_problem(const std::string& registry_path, const Problem& p);

/// The schema for a registry document: the file its "$schema" names (relative to its folder),
/// else <dir>/registry.schema.json, else the built-in copy. `used` receives the path or
/// "built-in". Throws tinyq::Error when a schema file exists but is not usable JSON schema.
nlohmann::json load_schema(const nlohmann::json& doc, const std::string& dir, std::string* used);

/// JSON-schema problems of a document (valijson), rendered in tinyq's words. A schema valijson
/// cannot use (a bad keyword value, a pattern that is no regular expression) throws
/// tinyq::Error naming `schema_name`, the file it came from.
std::vector<Problem> schema_problems(const nlohmann::json& doc, const nlohmann::json& schema,
                                     const std::string& schema_name);

/// Reads what it can of a registry document into a Registry (wrong-typed fields keep defaults).
Registry parse_registry(const nlohmann::json& doc, const std::string& path, const std::string& root);

/// Validates a parsed document. Throws only for an unusable schema.
RegistryReport validate_document(const nlohmann::json& doc, const std::string& path,
                                 const RegistryOptions& options);

/// Problems of a sidecar (`<basename>.json`): its own shape, its agreement with the registry
/// entry, and (when model is given) its input/output names and shapes against the graph.
std::vector<std::string> sidecar_problems(const std::string& sidecar_path, const RegistryEntry& e,
                                          const Model* model, const std::string& model_name);

/// Registries and sidecars are a few levels deep; anything deeper than this is refused before
/// recursive code (dump, validation) could exhaust the stack on it.
constexpr int kMaxJsonDepth = 64;

/// Parses JSON text (a nlohmann::json or ordered_json); throws tinyq::Error naming `name` when
/// it is not JSON or nests deeper than kMaxJsonDepth.
template <typename JsonT>
JsonT parse_json_text(const std::string& text, const std::string& name) {
  auto depth_guard = [&](int depth, nlohmann::detail::parse_event_t, JsonT&) {
    if (depth > kMaxJsonDepth)
      throw Error(name, "JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    return true;
  };
  JsonT doc = JsonT::parse(text, depth_guard, false);
  if (!doc.is_discarded()) return doc;
  try {
    // Parse again with exceptions on, only to get nlohmann's position for the message.
    JsonT again = JsonT::parse(text, depth_guard);
  } catch (const typename JsonT::parse_error& e) {
    std::string what = e.what();
    size_t at = what.find("parse error");
    throw Error(name, "not valid JSON: " + (at == std::string::npos ? what : what.substr(at)));
  }
  throw Error(name, "not valid JSON");
}

/// Parses a JSON file; throws tinyq::Error naming it when unreadable or not JSON.
nlohmann::json read_json_file(const std::string& path, uint64_t max_bytes = 64u << 20);

/// A copy of `doc` in which strings and keys longer than max_chars are cut to max_chars + 1
/// characters: valijson matches "pattern" with std::regex, whose recursion grows with the
/// input's length, so a hostile 300 kB id would overflow the stack. A cut string still breaks
/// every maxLength in the registry schema (the largest is 512), and messages are written from
/// the original document.
nlohmann::json bounded_strings(const nlohmann::json& doc, size_t max_chars = 512);

/// An id as messages show it: cut to 64 characters with "..." when longer.
std::string short_id(const std::string& id);

/// Human text of a JSON value for messages: strings quoted, long values shortened.
std::string json_text(const nlohmann::json& v);

}  // namespace tinyq::registry
