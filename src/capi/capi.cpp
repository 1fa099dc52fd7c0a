// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// The C API (include/tinyq/tinyq.h): a thin wrapper that turns C++ exceptions into status codes
// and a per-thread last-error string, and keeps every string or array it hands out inside the
// handle it came from.

#include "tinyq/tinyq.h"

#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "common/file_util.h"
#include "common/one_line.h"
#include "tinyq/registry.h"
#include "tinyq/session.h"
#include "tinyq/version.h"

struct tinyq_registry {
  tinyq::Registry registry;
  std::vector<std::string> resolved;  // per entry, so resolve can return a stable pointer
};

struct tinyq_session {
  explicit tinyq_session(tinyq::Session s) : session(std::move(s)) {}
  struct Port {
    std::string name;
    tinyq::DType dtype = tinyq::DType::Undefined;
    bool has_shape = false;
    std::vector<int64_t> dims;  // -1 for dynamic or unknown
  };
  tinyq::Session session;
  std::vector<Port> inputs, outputs;
  struct Result {
    std::vector<float> data;
    std::vector<int64_t> shape;
  };
  std::vector<Result> results;  // of the last successful run
};

namespace {

thread_local std::string g_last_error;

// An error the wrapper itself detects, with its status.
struct CapiError {
  tinyq_status status;
  std::string message;
};

tinyq_status fail(tinyq_status status, const std::string& message) {
  g_last_error = tinyq::one_line(message);  // one printable line, whatever names the model holds
  return status;
}

tinyq_status status_of(tinyq::RegistryError::Kind kind) {
  using K = tinyq::RegistryError::Kind;
  switch (kind) {
    case K::Invalid: return TINYQ_ERROR_REGISTRY;
    case K::NotFound: return TINYQ_ERROR_NOT_FOUND;
    case K::MissingFile: return TINYQ_ERROR_IO;
    case K::Integrity: return TINYQ_ERROR_INTEGRITY;
    case K::Refused: return TINYQ_ERROR_REFUSED;
  }
  return TINYQ_ERROR_INTERNAL;
}

// Runs fn, mapping whatever it throws to a status; `other` is the status for a plain
// tinyq::Error, whose meaning depends on the call (unreadable registry, bad model, bad run).
template <typename Fn>
tinyq_status guarded(tinyq_status other, Fn&& fn) {
  try {
    fn();
    g_last_error.clear();
    return TINYQ_OK;
  } catch (const CapiError& e) {
    return fail(e.status, e.message);
  } catch (const tinyq::RegistryError& e) {
    return fail(status_of(e.kind()), e.message());
  } catch (const tinyq::Error& e) {
    return fail(other, e.message());
  } catch (const std::bad_alloc&) {
    return fail(TINYQ_ERROR_OUT_OF_MEMORY, "out of memory");
  } catch (const std::exception& e) {
    return fail(TINYQ_ERROR_INTERNAL, e.what());
  } catch (...) {
    return fail(TINYQ_ERROR_INTERNAL, "unknown error");
  }
}

void require(bool ok, const std::string& what) {
  if (!ok) throw CapiError{TINYQ_ERROR_ARGUMENT, what};
}

tinyq_quant_mode mode_of(tinyq::QuantMode mode) {
  switch (mode) {
    case tinyq::QuantMode::Fp32: return TINYQ_QUANT_FP32;
    case tinyq::QuantMode::Dynamic: return TINYQ_QUANT_DYNAMIC;
    case tinyq::QuantMode::Static: return TINYQ_QUANT_STATIC;
    case tinyq::QuantMode::Qat: return TINYQ_QUANT_QAT;
  }
  return TINYQ_QUANT_FP32;
}

tinyq::SessionOptions session_options(const tinyq_session_options* options) {
  tinyq::SessionOptions o;
  if (options && options->threads > 1) o.threads = options->threads;
  return o;
}

tinyq_session::Port port_of(const tinyq::ValueInfo& v) {
  tinyq_session::Port p;
  p.name = v.name;
  p.dtype = v.dtype;
  p.has_shape = v.has_shape;
  for (const auto& d : v.dims) p.dims.push_back(d.known() ? d.value : -1);
  return p;
}

tinyq_session* make_session(tinyq::Session s) {
  auto out = std::make_unique<tinyq_session>(std::move(s));  // owned until every port is in
  for (const auto& v : out->session.inputs()) out->inputs.push_back(port_of(v));
  for (const auto& v : out->session.outputs()) out->outputs.push_back(port_of(v));
  return out.release();
}

const tinyq_session::Port& port(const tinyq_session* s, size_t index, bool input) {
  require(s != nullptr, "session is NULL");
  const auto& ports = input ? s->inputs : s->outputs;
  require(index < ports.size(), std::string(input ? "input" : "output") + " index " + std::to_string(index) +
                                    " is out of range (the model has " + std::to_string(ports.size()) + ")");
  return ports[index];
}

tinyq_status shape_of(const tinyq_session* session, size_t index, bool input, const int64_t** dims,
                             int64_t* rank) {
  return guarded(TINYQ_ERROR_INTERNAL, [&] {
    require(dims && rank, "dims or rank is NULL");
    const auto& p = port(session, index, input);
    *dims = p.has_shape ? p.dims.data() : nullptr;
    *rank = p.has_shape ? static_cast<int64_t>(p.dims.size()) : -1;
  });
}

}  // namespace

extern "C" {

const char* tinyq_version(void) { return tinyq::version_string(); }

const char* tinyq_last_error(void) { return g_last_error.c_str(); }

const char* tinyq_status_name(tinyq_status status) {
  switch (status) {
    case TINYQ_OK: return "TINYQ_OK";
    case TINYQ_ERROR_ARGUMENT: return "TINYQ_ERROR_ARGUMENT";
    case TINYQ_ERROR_IO: return "TINYQ_ERROR_IO";
    case TINYQ_ERROR_REGISTRY: return "TINYQ_ERROR_REGISTRY";
    case TINYQ_ERROR_NOT_FOUND: return "TINYQ_ERROR_NOT_FOUND";
    case TINYQ_ERROR_INTEGRITY: return "TINYQ_ERROR_INTEGRITY";
    case TINYQ_ERROR_REFUSED: return "TINYQ_ERROR_REFUSED";
    case TINYQ_ERROR_MODEL: return "TINYQ_ERROR_MODEL";
    case TINYQ_ERROR_RUN: return "TINYQ_ERROR_RUN";
    case TINYQ_ERROR_OUT_OF_MEMORY: return "TINYQ_ERROR_OUT_OF_MEMORY";
    case TINYQ_ERROR_INTERNAL: return "TINYQ_ERROR_INTERNAL";
  }
  return "TINYQ_ERROR_UNKNOWN";
}

tinyq_status tinyq_registry_open(const char* path, const char* root, tinyq_registry** out) {
  return guarded(TINYQ_ERROR_IO, [&] {
    require(out != nullptr, "out is NULL");
    *out = nullptr;
    require(path != nullptr, "path is NULL");
    tinyq::RegistryOptions opts;
    if (root) opts.root = root;
    auto reg = std::make_unique<tinyq_registry>();
    reg->registry = tinyq::load_registry(path, opts);
    for (const auto& e : reg->registry.models) reg->resolved.push_back(reg->registry.resolved_path(e));
    *out = reg.release();
  });
}

void tinyq_registry_free(tinyq_registry* registry) { delete registry; }

tinyq_status tinyq_registry_count(const tinyq_registry* registry, size_t* count) {
  return guarded(TINYQ_ERROR_INTERNAL, [&] {
    require(registry && count, "registry or count is NULL");
    *count = registry->registry.models.size();
  });
}

tinyq_status tinyq_registry_id(const tinyq_registry* registry, size_t index, const char** id) {
  return guarded(TINYQ_ERROR_INTERNAL, [&] {
    require(registry && id, "registry or id is NULL");
    require(index < registry->registry.models.size(),
            "index " + std::to_string(index) + " is out of range (the registry has " +
                std::to_string(registry->registry.models.size()) + " models)");
    *id = registry->registry.models[index].id.c_str();
  });
}

tinyq_status tinyq_registry_resolve(const tinyq_registry* registry, const char* id, const char** path,
                                    tinyq_quant_mode* mode) {
  return guarded(TINYQ_ERROR_INTERNAL, [&] {
    require(registry && id, "registry or id is NULL");
    const tinyq::RegistryEntry& e = registry->registry.at(id);
    if (path) *path = registry->resolved[e.index].c_str();
    if (mode) *mode = mode_of(e.quant_mode);
  });
}

tinyq_status tinyq_session_create_by_id(const tinyq_registry* registry, const char* id,
                                        const tinyq_session_options* options, tinyq_session** out) {
  return guarded(TINYQ_ERROR_MODEL, [&] {
    require(out != nullptr, "out is NULL");
    *out = nullptr;
    require(registry && id, "registry or id is NULL");
    *out = make_session(tinyq::open_model(registry->registry, id, session_options(options)));
  });
}

tinyq_status tinyq_session_create_by_path(const char* path, const tinyq_session_options* options,
                                          tinyq_session** out) {
  return guarded(TINYQ_ERROR_MODEL, [&] {
    require(out != nullptr, "out is NULL");
    *out = nullptr;
    require(path != nullptr, "path is NULL");
    if (!tinyq::file_exists(path)) throw CapiError{TINYQ_ERROR_IO, std::string(path) + ": no such file"};
    *out = make_session(tinyq::open_model_file(path, session_options(options)));
  });
}

void tinyq_session_free(tinyq_session* session) { delete session; }

tinyq_status tinyq_session_input_count(const tinyq_session* session, size_t* count) {
  return guarded(TINYQ_ERROR_INTERNAL, [&] {
    require(session && count, "session or count is NULL");
    *count = session->inputs.size();
  });
}

tinyq_status tinyq_session_output_count(const tinyq_session* session, size_t* count) {
  return guarded(TINYQ_ERROR_INTERNAL, [&] {
    require(session && count, "session or count is NULL");
    *count = session->outputs.size();
  });
}

tinyq_status tinyq_session_input_name(const tinyq_session* session, size_t index, const char** name) {
  return guarded(TINYQ_ERROR_INTERNAL, [&] {
    require(name != nullptr, "name is NULL");
    *name = port(session, index, true).name.c_str();
  });
}

tinyq_status tinyq_session_output_name(const tinyq_session* session, size_t index, const char** name) {
  return guarded(TINYQ_ERROR_INTERNAL, [&] {
    require(name != nullptr, "name is NULL");
    *name = port(session, index, false).name.c_str();
  });
}

tinyq_status tinyq_session_input_shape(const tinyq_session* session, size_t index, const int64_t** dims,
                                       int64_t* rank) {
  return shape_of(session, index, true, dims, rank);
}

tinyq_status tinyq_session_output_shape(const tinyq_session* session, size_t index, const int64_t** dims,
                                        int64_t* rank) {
  return shape_of(session, index, false, dims, rank);
}

tinyq_status tinyq_session_run(tinyq_session* session, size_t input_count, const float* const* data,
                               const int64_t* const* shapes, const size_t* ranks) {
  return guarded(TINYQ_ERROR_RUN, [&] {
    require(session != nullptr, "session is NULL");
    session->results.clear();  // a failed run leaves no stale outputs behind
    require(input_count == session->inputs.size(),
            "the model takes " + std::to_string(session->inputs.size()) + " inputs, " +
                std::to_string(input_count) + " were given");
    require(input_count == 0 || (data && shapes && ranks), "data, shapes or ranks is NULL");
    std::vector<tinyq::Tensor> feeds;
    for (size_t i = 0; i < input_count; ++i) {
      const auto& p = session->inputs[i];
      require(p.dtype == tinyq::DType::F32 || p.dtype == tinyq::DType::Undefined,
              "input '" + p.name + "' is " + tinyq::dtype_name(p.dtype) + "; the C API feeds float32 only");
      require(ranks[i] <= 64, "input '" + p.name + "': rank " + std::to_string(ranks[i]) + " is too large");
      require(ranks[i] == 0 || shapes[i], "input '" + p.name + "': shape is NULL");
      tinyq::Shape shape(shapes[i], shapes[i] + ranks[i]);
      for (int64_t d : shape)
        require(d >= 0, "input '" + p.name + "': shape " + tinyq::shape_to_string(shape) + " has a negative dim");
      tinyq::Tensor t(tinyq::DType::F32, shape);  // throws tinyq::Error when the size overflows
      require(t.numel() == 0 || data[i], "input '" + p.name + "': data is NULL");
      if (t.nbytes()) std::memcpy(t.raw(), data[i], t.nbytes());
      feeds.push_back(std::move(t));
    }
    std::vector<tinyq::Tensor> outs = session->session.run(feeds);
    std::vector<tinyq_session::Result> results;
    for (size_t k = 0; k < outs.size(); ++k) {
      const tinyq::Tensor& t = outs[k];
      tinyq_session::Result r;
      r.shape = t.shape();
      if (t.dtype() == tinyq::DType::F32) {
        const float* p = t.data<float>();
        r.data.assign(p, p + t.numel());
      } else if (tinyq::dtype_is_numeric(t.dtype())) {
        for (double v : tinyq::tensor_to_doubles(t)) r.data.push_back(static_cast<float>(v));
      } else {
        throw tinyq::Error("output '" + session->outputs[k].name + "'",
                           std::string("is ") + tinyq::dtype_name(t.dtype()) + ", which cannot be returned as float32");
      }
      results.push_back(std::move(r));
    }
    session->results = std::move(results);
  });
}

tinyq_status tinyq_session_output(const tinyq_session* session, size_t index, const float** data,
                                  const int64_t** dims, size_t* rank, size_t* count) {
  return guarded(TINYQ_ERROR_INTERNAL, [&] {
    require(session != nullptr, "session is NULL");
    require(!session->results.empty() || session->outputs.empty(), "the session has not run yet");
    require(index < session->results.size(), "output index " + std::to_string(index) + " is out of range (the model has " +
                                                 std::to_string(session->results.size()) + ")");
    const auto& r = session->results[index];
    if (data) *data = r.data.data();
    if (dims) *dims = r.shape.data();
    if (rank) *rank = r.shape.size();
    if (count) *count = r.data.size();
  });
}

}  // extern "C"
