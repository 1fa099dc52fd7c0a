// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// Helpers for the registry tier: the real registry, broken copies of it in a temp folder, and
// small models written by the tests themselves.

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "common/file_util.h"
#include "common/sha256.h"
#include "model_builder.h"
#include "test_support.h"
#include "tinyq/model_io.h"
#include "tinyq/registry.h"

namespace tinyq::test {

using ojson = nlohmann::ordered_json;

inline std::string real_dir() { return shared_dir() + "/models/real"; }
inline std::string real_registry() { return real_dir() + "/registry.json"; }

inline ojson read_ojson(const std::string& path) { return ojson::parse(read_file_bounded(path, 1 << 26)); }

/// Index of the entry with that id in a registry document.
inline size_t entry_index(const ojson& doc, const std::string& id) {
  const auto& models = doc["models"];
  for (size_t i = 0; i < models.size(); ++i)
    if (models[i]["id"] == id) return i;
  ADD_FAILURE() << "no entry " << id;
  return 0;
}

/// Writes `doc` as <dir>/registry.json (with the real schema beside it unless told otherwise).
inline std::string write_registry(const std::string& dir, const ojson& doc, bool with_schema = true) {
  if (with_schema)
    std::filesystem::copy_file(real_dir() + "/registry.schema.json", dir + "/registry.schema.json",
                               std::filesystem::copy_options::overwrite_existing);
  std::string path = dir + "/registry.json";
  write_file_atomic(path, doc.dump(2) + "\n");
  return path;
}

/// Copies a file of ../shared/models/real into dir.
inline void copy_real(const std::string& dir, const std::string& name) {
  std::filesystem::copy_file(real_dir() + "/" + name, dir + "/" + name,
                             std::filesystem::copy_options::overwrite_existing);
}

/// y = Identity(x), x float [1,4]; graph "test". Returns its sha256.
inline std::string write_identity_model(const std::string& path, const std::string& op_type = "Identity",
                                        const std::string& domain = "") {
  ModelBuilder b(17);
  b.input("x", DType::F32, {1, 4}).output("y").node(op_type, {"x"}, {"y"});
  b.model.graph.nodes.back().domain = domain;
  if (!domain.empty()) b.model.opset_imports.push_back({domain, 1});
  save_model(b.model, path);
  return sha256_file(path);
}

/// A registry entry (schema_version 1 style) for a model written by the tests.
inline ojson test_entry(const std::string& id, const std::string& onnx, const std::string& sha) {
  ojson e = ojson::object();
  e["id"] = id;
  e["kind"] = "fr";
  e["license"] = "BSD-3-Clause-Plus-Patent";
  e["onnx"] = onnx;
  e["opset"] = 17;
  e["sha256"] = sha;
  return e;
}

inline ojson registry_of(std::vector<ojson> entries) {
  ojson doc = ojson::object();
  doc["models"] = ojson::array();
  for (auto& e : entries) doc["models"].push_back(std::move(e));
  doc["schema_version"] = 1;
  return doc;
}

inline bool contains_line(const std::vector<std::string>& lines, const std::string& line) {
  return std::find(lines.begin(), lines.end(), line) != lines.end();
}

inline std::string joined(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += l + "\n";
  return s;
}

inline std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at < text.size()) {
    size_t nl = text.find('\n', at);
    if (nl == std::string::npos) nl = text.size();
    out.push_back(text.substr(at, nl - at));
    at = nl + 1;
  }
  return out;
}

}  // namespace tinyq::test
