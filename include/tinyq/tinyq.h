// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#ifndef TINYQ_TINYQ_H
#define TINYQ_TINYQ_H

/* The C API, for embedding tinyq in C programs (libvmaf is C).
 *
 * Objects are opaque handles: a registry (registry.json) and a session (one model, ready to run).
 * Every call returns a tinyq_status; on failure tinyq_last_error() gives a one-line message for
 * the calling thread (valid until that thread's next tinyq call). No call aborts or throws.
 *
 * Strings and arrays returned through pointers belong to the handle they came from: they stay
 * valid until the handle is freed (results of tinyq_session_run: until the next run).
 *
 * Typical use:
 *   tinyq_registry* reg; tinyq_session* s;
 *   tinyq_registry_open("model/tiny/registry.json", NULL, &reg);
 *   tinyq_session_create_by_id(reg, "vmaf_tiny_v4", NULL, &s);   // sha256 + allowlist checks
 *   tinyq_session_run(s, 1, &data, &shape, &rank);
 *   tinyq_session_output(s, 0, &out, &out_shape, &out_rank, &out_count);
 *   tinyq_session_free(s); tinyq_registry_free(reg);
 */

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#define TINYQ_API
#elif defined(__GNUC__)
#define TINYQ_API __attribute__((visibility("default")))
#else
#define TINYQ_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tinyq_status {
  TINYQ_OK = 0,
  TINYQ_ERROR_ARGUMENT = 1,    /* a NULL handle or pointer, an index out of range, bad sizes */
  TINYQ_ERROR_IO = 2,          /* a file is missing or cannot be read */
  TINYQ_ERROR_REGISTRY = 3,    /* the registry breaks its schema or a cross-field rule */
  TINYQ_ERROR_NOT_FOUND = 4,   /* no registry entry with that id */
  TINYQ_ERROR_INTEGRITY = 5,   /* the sha256 of the model bytes differs from the registry's */
  TINYQ_ERROR_REFUSED = 6,     /* op not allowlisted, foreign domain, unsafe path, sidecar mismatch */
  TINYQ_ERROR_MODEL = 7,       /* the model is malformed or uses something tinyq cannot run */
  TINYQ_ERROR_RUN = 8,         /* inputs do not fit the model, or running it failed */
  TINYQ_ERROR_OUT_OF_MEMORY = 9,
  TINYQ_ERROR_INTERNAL = 10
} tinyq_status;

typedef enum tinyq_quant_mode {
  TINYQ_QUANT_FP32 = 0,
  TINYQ_QUANT_DYNAMIC = 1,
  TINYQ_QUANT_STATIC = 2,
  TINYQ_QUANT_QAT = 3
} tinyq_quant_mode;

typedef struct tinyq_registry tinyq_registry;
typedef struct tinyq_session tinyq_session;

typedef struct tinyq_session_options {
  int threads; /* worker threads; 0 or 1 = one */
} tinyq_session_options;

/* "1.2.3". */
TINYQ_API const char* tinyq_version(void);
/* The calling thread's last error message ("" when the last call succeeded). */
TINYQ_API const char* tinyq_last_error(void);
/* "TINYQ_ERROR_INTEGRITY" etc. */
TINYQ_API const char* tinyq_status_name(tinyq_status status);

/* Reads and validates registry.json (schema + cross-field rules). root: the repo root that
 * quant_calibration_set paths are relative to (NULL = current directory). */
TINYQ_API tinyq_status tinyq_registry_open(const char* path, const char* root, tinyq_registry** out);
TINYQ_API void tinyq_registry_free(tinyq_registry* registry);
/* Number of entries, and the id of entry i (in models[] order). */
TINYQ_API tinyq_status tinyq_registry_count(const tinyq_registry* registry, size_t* count);
TINYQ_API tinyq_status tinyq_registry_id(const tinyq_registry* registry, size_t index, const char** id);
/* The file the loader opens for an id (the fp32 model, or its int8 sibling for the
 * dynamic/static/qat modes) and the entry's quant mode. Either output may be NULL. */
TINYQ_API tinyq_status tinyq_registry_resolve(const tinyq_registry* registry, const char* id,
                                              const char** path, tinyq_quant_mode* mode);

/* A session for a registry id, after every trust check: path safety, sha256 of the exact bytes
 * opened, op allowlist and domain (subgraphs included), sidecar names and shapes. options may
 * be NULL. */
TINYQ_API tinyq_status tinyq_session_create_by_id(const tinyq_registry* registry, const char* id,
                                                  const tinyq_session_options* options,
                                                  tinyq_session** out);
/* A session for a model file outside any registry (the op allowlist still applies). */
TINYQ_API tinyq_status tinyq_session_create_by_path(const char* path, const tinyq_session_options* options,
                                                    tinyq_session** out);
TINYQ_API void tinyq_session_free(tinyq_session* session);

/* The model's inputs (the tensors a caller feeds) and outputs. */
TINYQ_API tinyq_status tinyq_session_input_count(const tinyq_session* session, size_t* count);
TINYQ_API tinyq_status tinyq_session_output_count(const tinyq_session* session, size_t* count);
TINYQ_API tinyq_status tinyq_session_input_name(const tinyq_session* session, size_t index, const char** name);
TINYQ_API tinyq_status tinyq_session_output_name(const tinyq_session* session, size_t index, const char** name);
/* Declared shape: *rank dims, -1 for a dynamic or unknown dim; *rank = -1 when the model does
 * not declare the rank (dims is then NULL). */
TINYQ_API tinyq_status tinyq_session_input_shape(const tinyq_session* session, size_t index,
                                                 const int64_t** dims, int64_t* rank);
TINYQ_API tinyq_status tinyq_session_output_shape(const tinyq_session* session, size_t index,
                                                  const int64_t** dims, int64_t* rank);

/* Runs the model on float32 inputs given in input order: data[i] holds the product of
 * shapes[i][0..ranks[i]) values, C order. The data is copied; the caller keeps ownership. */
TINYQ_API tinyq_status tinyq_session_run(tinyq_session* session, size_t input_count, const float* const* data,
                                         const int64_t* const* shapes, const size_t* ranks);
/* Output i of the last run, converted to float32: *count values of shape dims[0..*rank).
 * Valid until the next run or tinyq_session_free. Any output pointer may be NULL. */
TINYQ_API tinyq_status tinyq_session_output(const tinyq_session* session, size_t index, const float** data,
                                            const int64_t** dims, size_t* rank, size_t* count);

#ifdef __cplusplus
}
#endif

#endif /* TINYQ_TINYQ_H */
