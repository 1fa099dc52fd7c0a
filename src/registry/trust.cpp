// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// The loader's trust checks: a model is opened by id only when its path stays inside the
// registry's folder, the sha256 of the very bytes parsed matches the registry (read once, hashed,
// then parsed from the same buffer, so the file cannot change between check and use), every node
// (subgraphs included) is an allowlisted op of the default domain, and its sidecar, when there
// is one, agrees with the graph's inputs and outputs.

#include "common/file_util.h"
#include "common/sha256.h"
#include "registry/registry_internal.h"
#include "runtime/op_allowlist.h"
#include "tinyq/model_io.h"

namespace tinyq {
namespace {

void scan_graph(const Graph& g, const std::string& where, std::vector<std::string>& out) {
  for (const Node& node : g.nodes) {
    if (!rt::is_default_domain(node.domain))
      out.push_back(node.label() + " in " + where + ": domain '" + node.domain +
                    "' is not allowed (only the default ONNX domain)");
    else if (!rt::op_allowed(node.op_type))
      out.push_back(node.label() + " in " + where + ": op type '" + node.op_type +
                    "' is not on tinyq's op allowlist");
    // Control-flow bodies are graphs too; a disallowed op must not hide inside one.
    for (const Attribute& a : node.attributes) {
      std::string inner = where + " > " + node.label() + " attribute '" + a.name + "'";
      if (a.g) scan_graph(*a.g, inner, out);
      for (size_t i = 0; i < a.graphs.size(); ++i)
        if (a.graphs[i]) scan_graph(*a.graphs[i], inner + "[" + std::to_string(i) + "]", out);
    }
  }
}

std::string join_lines(const std::vector<std::string>& lines, size_t max_lines) {
  std::string s;
  for (size_t i = 0; i < lines.size() && i < max_lines; ++i) s += (i ? "; " : "") + lines[i];
  if (lines.size() > max_lines) s += "; and " + std::to_string(lines.size() - max_lines) + " more";
  return s;
}

}  // namespace

std::vector<std::string> find_disallowed_nodes(const Model& model) {
  std::vector<std::string> out;
  scan_graph(model.graph, "graph '" + model.graph.name + "'", out);
  return out;
}

void check_model_ops(const Model& model, const std::string& subject) {
  std::vector<std::string> bad = find_disallowed_nodes(model);
  if (!bad.empty()) throw RegistryError(RegistryError::Kind::Refused, subject, "refused: " + join_lines(bad, 8));
}

VerifiedModel load_verified_model(const Registry& registry, const std::string& id, ModelFile which) {
  const RegistryEntry& e = registry.at(id);
  const std::string who = registry.path + ": " + e.label();
  if (!path_stays_inside(e.onnx))
    throw RegistryError(RegistryError::Kind::Refused, who,
                        "onnx path \"" + e.onnx + "\" is absolute or escapes the registry's folder");
  bool int8 = which == ModelFile::Int8 || (which == ModelFile::Resolved && e.quant_mode != QuantMode::Fp32);
  std::string path = int8 ? registry.int8_path(e) : registry.fp32_path(e);
  const std::string& want = int8 ? e.int8_sha256 : e.sha256;
  const char* key = int8 ? "int8_sha256" : "sha256";
  if (want.empty())
    throw RegistryError(RegistryError::Kind::Invalid, who, std::string("no ") + key + " recorded for " + path);
  if (!file_exists(path))
    throw RegistryError(RegistryError::Kind::MissingFile, path, std::string("no such file (") + who + " names it)");

  LoadLimits limits;
  std::string bytes = read_file_bounded(path, limits.max_file_bytes);
  std::string got = sha256_hex(bytes);
  if (got != want)
    throw RegistryError(RegistryError::Kind::Integrity, path,
                        std::string("refusing to load: sha256 of the file is ") + got + ", the registry's " + key +
                            " for " + e.label() + " is " + want);

  VerifiedModel out;
  out.path = path;
  out.sha256 = got;
  out.model = parse_model(bytes, path, path_dirname(path), limits).model;
  check_model_ops(out.model, path);

  // The sidecar describes the I/O contract every variant of the model must keep.
  std::string sidecar = registry.sidecar_path(e);
  if (file_exists(sidecar)) {
    std::vector<std::string> bad = registry::sidecar_problems(sidecar, e, &out.model, path_basename(path));
    if (!bad.empty()) throw RegistryError(RegistryError::Kind::Refused, path, "refused: " + join_lines(bad, 8));
  }
  return out;
}

Session open_model(const Registry& registry, const std::string& id, const SessionOptions& options) {
  VerifiedModel vm = load_verified_model(registry, id);
  try {
    return Session(std::move(vm.model), options);
  } catch (const RegistryError&) {
    throw;
  } catch (const Error& e) {
    throw Error(vm.path, e.message());
  }
}

Session open_model_file(const std::string& path, const SessionOptions& options) {
  Model model = load_model(path);
  check_model_ops(model, path);
  try {
    return Session(std::move(model), options);
  } catch (const Error& e) {
    throw Error(path, e.message());
  }
}

}  // namespace tinyq
