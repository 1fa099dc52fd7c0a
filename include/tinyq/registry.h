// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// The model registry (registry.json): each model's file, digests and quantisation decision.
// The loader opens <basename>.onnx for quant_mode fp32 and the sibling <basename>.int8.onnx for
// dynamic/static/qat, the fp32 file staying on disk as the regression baseline.
//
// The registry is the trust root: a model is opened by id only after the sha256 of the exact
// bytes read matches the registry (int8_sha256 for the int8 sibling), its path stays inside the
// registry's folder, and every node is an allowlisted op of the default ONNX domain.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tinyq/error.h"
#include "tinyq/model.h"
#include "tinyq/session.h"

namespace tinyq {

enum class QuantMode { Fp32, Dynamic, Static, Qat };
/// "fp32", "dynamic", "static", "qat".
const char* quant_mode_name(QuantMode mode);
/// The mode with that registry name; nullopt for anything else.
std::optional<QuantMode> parse_quant_mode(const std::string& name);

struct RegistryEntry {
  size_t index = 0;  ///< position in models[], for messages
  std::string id;
  std::string kind;  ///< fr / nr / filter
  std::string onnx;  ///< relative to the registry's folder
  std::string sha256;
  int64_t opset = 0;
  QuantMode quant_mode = QuantMode::Fp32;
  std::string quant_calibration_set;  ///< relative to the repo root; "" when absent
  double quant_accuracy_budget_plcc = 0.01;
  std::string int8_sha256;  ///< "" when absent
  bool smoke = false;
  std::string license;          ///< "" when absent
  std::string sigstore_bundle;  ///< relative to the registry's folder; "" when absent

  /// "models[3] (nr_metric_v1)" for messages.
  std::string label() const;
};

struct Registry {
  std::string path;        ///< registry.json as given
  std::string dir;         ///< its folder
  std::string root = ".";  ///< the repo root quant_calibration_set is relative to
  int64_t schema_version = 0;
  std::vector<RegistryEntry> models;

  const RegistryEntry* find(const std::string& id) const;
  /// The entry with that id; throws RegistryError (NotFound) naming the registry otherwise.
  const RegistryEntry& at(const std::string& id) const;
  /// Path of the fp32 model: <dir>/<onnx>.
  std::string fp32_path(const RegistryEntry& e) const;
  /// Path of the int8 sidecar: <dir>/<basename>.int8.onnx.
  std::string int8_path(const RegistryEntry& e) const;
  /// The file the loader opens for this entry (fp32_path or int8_path by quant_mode).
  std::string resolved_path(const RegistryEntry& e) const;
  /// The digest the loader checks for resolved_path(): sha256 or int8_sha256.
  const std::string& resolved_sha256(const RegistryEntry& e) const;
  /// The per-model metadata sidecar: <dir>/<basename>.json (it may not exist).
  std::string sidecar_path(const RegistryEntry& e) const;
  /// <root>/<quant_calibration_set>, or "" when the entry has none.
  std::string calibration_path(const RegistryEntry& e) const;
};

/// The sibling int8 path of a model path: "a/b/model.onnx" -> "a/b/model.int8.onnx" (defined in
/// the common layer, which the quantisers share, so writer and loader cannot disagree).
std::string int8_sibling_path(const std::string& onnx_path);

/// A registry or trust failure, with a kind so callers (the C API) can map it to a status code.
class RegistryError : public Error {
 public:
  enum class Kind {
    Invalid,      ///< the registry breaks its schema or a cross-field rule
    NotFound,     ///< no entry with that id
    MissingFile,  ///< a file the registry names is absent
    Integrity,    ///< sha256 of the bytes read differs from the registry
    Refused,      ///< path escapes its root, op not allowlisted, foreign domain, sidecar mismatch
  };
  RegistryError(Kind kind, std::string subject, const std::string& what)
      : Error(std::move(subject), what), kind_(kind) {}
  Kind kind() const { return kind_; }

 private:
  Kind kind_;
};

struct RegistryOptions {
  /// The repo root that quant_calibration_set paths are relative to.
  std::string root = ".";
  /// Also check that each file exists and matches its digest, that the models load with
  /// allowlisted ops only, and that the sidecars agree with their registry entry and graph.
  bool check_files = false;
};

/// The outcome of validating a registry: every problem found, in models[] order.
struct RegistryReport {
  Registry registry;   ///< what could be read, entries with problems included
  std::string schema;  ///< the schema file used, or "built-in" when the registry's folder has none
  /// One line per problem: `<path>: models[3] (nr_metric_v1): <what>` (or `<path>: <what>` for
  /// the registry as a whole).
  std::vector<std::string> problems;
  bool ok() const { return problems.empty(); }
};

/// Validates a registry against its JSON schema (the registry's "$schema" or the
/// registry.schema.json beside it, else tinyq's built-in copy of the fork's v1 schema) and the
/// cross-field rules, reporting every problem in one pass. Throws tinyq::Error only when the
/// registry (or its schema) cannot be read or is not JSON.
RegistryReport validate_registry(const std::string& path, const RegistryOptions& options = {});

/// Reads and validates a registry (no file checks). Throws tinyq::Error when it is unreadable and
/// RegistryError (Invalid) listing every problem when it is invalid.
Registry load_registry(const std::string& path, const RegistryOptions& options = {});

/// Allowlist violations of a model, scanning subgraphs too: one line per offending node, e.g.
/// `node Foo 'n3' in graph 'main': op type 'Foo' is not on tinyq's op allowlist`.
std::vector<std::string> find_disallowed_nodes(const Model& model);
/// Throws RegistryError (Refused) with subject `subject` naming the offending node(s).
void check_model_ops(const Model& model, const std::string& subject);

/// Which file of an entry to open.
enum class ModelFile { Resolved, Fp32, Int8 };

/// A model read through the registry's trust checks.
struct VerifiedModel {
  std::string path;    ///< the file opened
  std::string sha256;  ///< its digest (equal to the registry's)
  Model model;
};

/// Opens an entry's model file with every check: path safety, sha256 of the exact bytes read
/// (int8_sha256 for the int8 sibling; a mismatch names both digests), op allowlist and domain,
/// and the sidecar's input/output names and shapes against the graph when a sidecar exists.
VerifiedModel load_verified_model(const Registry& registry, const std::string& id,
                                  ModelFile which = ModelFile::Resolved);

/// load_verified_model(registry, id) and a session over it.
Session open_model(const Registry& registry, const std::string& id,
                   const SessionOptions& options = {});

/// A session over a model file outside any registry: no digest to check, but the op allowlist
/// and domain checks still apply.
Session open_model_file(const std::string& path, const SessionOptions& options = {});

/// Why the loader opens resolved_path(e), in one sentence (for `tinyq registry resolve`).
std::string resolve_reason(const Registry& registry, const RegistryEntry& e);

/// An edit of one entry's quantisation fields (`tinyq registry set`).
struct RegistryUpdate {
  QuantMode quant_mode = QuantMode::Fp32;
  std::optional<double> budget;                  ///< quant_accuracy_budget_plcc
  std::optional<std::string> calibration_set;    ///< quant_calibration_set
  /// An int8 model to record; copied to the entry's int8 sibling path when it is elsewhere.
  /// Without it a non-fp32 mode hashes the existing sibling.
  std::optional<std::string> int8_file;
};

struct RegistryUpdateResult {
  bool written = false;
  /// Problems the edit would introduce (nothing is written when there are any).
  std::vector<std::string> problems;
  std::string int8_sha256;  ///< the digest recorded, "" when none was computed
};

/// Applies an update to entry `id` and rewrites the registry atomically (temp file + rename),
/// keeping every other field, the key order, the indentation and the escaping of the original.
/// Refuses (written = false) when the result has problems the original did not have. Throws
/// tinyq::Error for unreadable files, unknown ids and bad arguments.
RegistryUpdateResult update_registry_entry(const std::string& path, const std::string& id,
                                           const RegistryUpdate& update,
                                           const RegistryOptions& options = {});

}  // namespace tinyq
