// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// The gate itself: build the input samples, run both models, compare one output at a time.

#include "tinyq/gate.h"

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <sstream>

#include "common/file_util.h"
#include "gate/numpy_rng.h"
#include "tinyq/error.h"
#include "tinyq/npz.h"
#include "tinyq/session.h"
#include "tinyq/stats.h"

namespace tinyq {
namespace {

using Samples = std::vector<NamedTensors>;

// 1 GiB of float32 per synthetic input; tinyq's largest real input is 3x224x224.
constexpr int64_t kMaxSeedElements = int64_t{1} << 28;

struct InputSet {
  std::string label;  // "seed" or "data"
  Samples samples;
};

// Which output to compare, by position in each model's output list.
struct OutputPick {
  std::string name;
  size_t fp32_index = 0;
  size_t int8_index = 0;
};

// An error message that always names the file: session errors often name only the node.
std::string error_text(const std::string& path, const Error& e) {
  std::string msg = e.message();
  return e.subject() == path || msg.rfind(path, 0) == 0 ? msg : path + ": " + msg;
}

// The seed script's shape rule: keep positive dims, 1 for symbolic, unknown or zero dims.
Shape seed_shape(const ValueInfo& v) {
  TINYQ_CHECK(v.has_shape, v.name, "input has no declared shape; the seed gate cannot synthesise it");
  Shape s;
  for (const Dim& d : v.dims) s.push_back(d.value > 0 ? d.value : 1);
  // A hostile declared shape must not make the gate allocate and fill gigabytes of noise.
  TINYQ_CHECK(shape_numel(s) <= kMaxSeedElements, v.name,
              "declared shape " << shape_to_string(s) << " is over the gate's limit of " << kMaxSeedElements
                                << " elements per input");
  return s;
}

Samples seed_samples(const std::vector<ValueInfo>& inputs, int count, uint64_t seed) {
  TINYQ_CHECK(count > 0, "gate", "the sample count must be positive, not " << count);
  for (const ValueInfo& v : inputs)
    TINYQ_CHECK(v.dtype == DType::F32, v.name,
                "input is " << dtype_name(v.dtype) << "; the seed gate feeds float32 noise");
  // One generator for the whole model: sample-major, then inputs in graph order, exactly the
  // draw order of the seed's loop, so the first input of every sample matches numpy's.
  NumpyGenerator rng(seed);
  Samples out(static_cast<size_t>(count));
  for (NamedTensors& feeds : out)
    for (const ValueInfo& v : inputs) feeds.emplace_back(v.name, rng.random_f32(seed_shape(v)));
  return out;
}

// Sample i of a [N, ...] array, shaped for the input: when the array has the input's rank the
// batch dim is kept as 1 ([i:i+1]); with one more dim the leading one is dropped ([i]).
Tensor data_sample(const Tensor& all, int64_t i, const ValueInfo& v, const std::string& path) {
  Shape shape(all.shape().begin() + 1, all.shape().end());
  if (!v.has_shape || all.rank() == v.dims.size()) {
    shape.insert(shape.begin(), 1);
  } else {
    TINYQ_CHECK(all.rank() == v.dims.size() + 1, path,
                "array '" << v.name << "' is " << shape_to_string(all.shape()) << " but input '" << v.name
                          << "' is " << v.shape_string() << ": expected [N, ...] with the input's rank or one more");
  }
  Tensor dst(v.dtype == DType::F32 && all.dtype() == DType::F64 ? DType::F32 : all.dtype(), shape);
  size_t per = static_cast<size_t>(dst.numel());
  if (all.dtype() == dst.dtype()) {
    std::memcpy(dst.raw(), static_cast<const uint8_t*>(all.raw()) + i * per * dtype_size(all.dtype()), dst.nbytes());
  } else {
    // numpy arrays are float64 unless asked otherwise; narrowing here saves every caller a
    // conversion step for a float32 input.
    const double* src = all.data<double>() + i * static_cast<int64_t>(per);
    float* d = dst.data<float>();
    for (size_t k = 0; k < per; ++k) d[k] = static_cast<float>(src[k]);
  }
  return dst;
}

// Empty when `if_present` and the file holds none of the inputs.
Samples data_samples(const std::vector<ValueInfo>& inputs, const std::string& path, bool if_present) {
  NamedTensors data = read_npz(path);
  bool any = false;
  for (const ValueInfo& v : inputs) any = any || find_array(data, v.name);
  if (if_present && !any) return {};
  TINYQ_CHECK(!inputs.empty(), path, "the model takes no inputs to feed from it");
  int64_t n = -1;
  for (const ValueInfo& v : inputs) {
    const Tensor* t = find_array(data, v.name);
    if (!t) {
      std::string names;
      for (const auto& [k, a] : data) names += (names.empty() ? "" : ", ") + k;
      throw Error(path, "no array named '" + v.name + "' for the model's input (arrays: " +
                            (names.empty() ? "none" : names) + ")");
    }
    TINYQ_CHECK(t->rank() >= 1 && t->dim(0) > 0, path, "array '" << v.name << "' has no samples: shape "
                                                                   << shape_to_string(t->shape()));
    TINYQ_CHECK(t->dtype() == v.dtype || (v.dtype == DType::F32 && t->dtype() == DType::F64), path,
                "array '" << v.name << "' is " << dtype_name(t->dtype()) << " but the input is "
                          << dtype_name(v.dtype));
    TINYQ_CHECK(n < 0 || t->dim(0) == n, path,
                "arrays hold different sample counts (" << n << " and " << t->dim(0) << " for '" << v.name << "')");
    n = t->dim(0);
  }
  Samples out(static_cast<size_t>(n < 0 ? 0 : n));
  for (int64_t i = 0; i < n; ++i)
    for (const ValueInfo& v : inputs) out[i].emplace_back(v.name, data_sample(*find_array(data, v.name), i, v, path));
  return out;
}

size_t find_output(const std::vector<ValueInfo>& outs, const std::string& name) {
  for (size_t i = 0; i < outs.size(); ++i)
    if (outs[i].name == name) return i;
  return outs.size();
}

std::string output_names(const std::vector<ValueInfo>& outs) {
  std::string s;
  for (const auto& o : outs) s += (s.empty() ? "" : ", ") + o.name;
  return s;
}

std::vector<OutputPick> pick_outputs(const Session& fp32, const Session& int8, const GateOptions& opt,
                                     const std::string& fp32_path, const std::string& int8_path) {
  const auto& fo = fp32.outputs();
  const auto& io = int8.outputs();
  TINYQ_CHECK(!fo.empty(), fp32_path, "model has no outputs");
  TINYQ_CHECK(!io.empty(), int8_path, "model has no outputs");
  std::vector<OutputPick> picks;
  if (!opt.output_name.empty()) {
    size_t f = find_output(fo, opt.output_name), q = find_output(io, opt.output_name);
    TINYQ_CHECK(f < fo.size(), fp32_path, "no output named '" << opt.output_name << "' (outputs: " << output_names(fo) << ")");
    TINYQ_CHECK(q < io.size(), int8_path, "no output named '" << opt.output_name << "' (outputs: " << output_names(io) << ")");
    picks.push_back({opt.output_name, f, q});
  } else if (opt.all_outputs) {
    for (size_t f = 0; f < fo.size(); ++f) {
      // Same name when the int8 model kept it (quantisers do), else the same position.
      size_t q = find_output(io, fo[f].name);
      if (q == io.size()) q = f;
      TINYQ_CHECK(q < io.size(), int8_path, "has no output matching '" << fo[f].name << "' (outputs: " << output_names(io) << ")");
      picks.push_back({fo[f].name, f, q});
    }
  } else {
    // The seed compares run(None, feed)[0] of each session.
    picks.push_back({fo[0].name, 0, 0});
  }
  return picks;
}

void append_values(std::vector<double>& dst, const Tensor& t, const std::string& path, const std::string& output) {
  TINYQ_CHECK(dtype_is_numeric(t.dtype()), path, "output '" << output << "' is " << dtype_name(t.dtype()) << ", not numeric");
  std::vector<double> v = tensor_to_doubles(t);
  dst.insert(dst.end(), v.begin(), v.end());
}

// PLCC, drop and worst_abs over the flattened outputs, and the verdict.
void score(GateRow& row, const std::vector<double>& a, const std::vector<double>& b) {
  row.values = static_cast<int64_t>(a.size());
  if (a.empty()) {
    row.status = GateStatus::Error;
    row.reason = "output '" + row.output + "' is empty";
    return;
  }
  size_t bad_a = 0, bad_b = 0;
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i])) ++bad_a;
    if (!std::isfinite(b[i])) ++bad_b;
    if (std::isfinite(a[i]) && std::isfinite(b[i])) worst = std::max(worst, std::fabs(a[i] - b[i]));
  }
  row.worst_abs = worst;
  if (bad_a || bad_b) {
    // A NaN would otherwise flow into PLCC and compare false against the budget either way.
    row.status = GateStatus::Fail;
    std::ostringstream os;
    if (bad_a) os << "fp32 output has " << bad_a << " non-finite value" << (bad_a == 1 ? "" : "s");
    if (bad_a && bad_b) os << "; ";
    if (bad_b) os << "int8 output has " << bad_b << " non-finite value" << (bad_b == 1 ? "" : "s");
    os << " (of " << a.size() << ")";
    row.reason = os.str();
    row.plcc = row.drop = std::numeric_limits<double>::quiet_NaN();
    return;
  }
  double plcc = pearson(a, b);
  if (std::isnan(plcc)) {
    row.status = GateStatus::Fail;
    row.reason = "PLCC undefined (constant output)";
    row.plcc = row.drop = std::numeric_limits<double>::quiet_NaN();
    return;
  }
  row.plcc = plcc;
  row.drop = 1.0 - plcc;
  row.has_numbers = true;
  if (row.drop <= row.budget) {
    row.status = GateStatus::Pass;
  } else {
    row.status = GateStatus::Fail;
    std::ostringstream os;
    os.setf(std::ios::fixed);
    os.precision(6);
    os << "drop " << row.drop << " exceeds budget ";
    os.precision(4);
    os << row.budget;
    row.reason = os.str();
  }
}

// Runs both sessions over one input set and scores each picked output.
std::vector<GateRow> gate_input_set(const GateRow& proto, Session& fp32, Session& int8, const InputSet& set,
                                    const std::vector<OutputPick>& picks, const GateOptions& opt) {
  std::vector<std::vector<double>> fv(picks.size()), qv(picks.size());
  for (size_t s = 0; s < set.samples.size(); ++s) {
    NamedTensors fo, qo;
    try {
      fo = fp32.run(set.samples[s]);
    } catch (const Error& e) {
      throw Error(proto.fp32_path, "sample " + std::to_string(s) + ": " + e.message());
    }
    try {
      qo = int8.run(set.samples[s]);
    } catch (const Error& e) {
      throw Error(proto.int8_path, "sample " + std::to_string(s) + ": " + e.message());
    }
    for (size_t p = 0; p < picks.size(); ++p) {
      const Tensor& f = fo.at(picks[p].fp32_index).second;
      const Tensor& q = qo.at(picks[p].int8_index).second;
      TINYQ_CHECK(f.numel() == q.numel(), proto.int8_path,
                  "output '" << picks[p].name << "' is " << shape_to_string(q.shape()) << " but the fp32 model's is "
                             << shape_to_string(f.shape()) << " (sample " << s << ")");
      append_values(fv[p], f, proto.fp32_path, picks[p].name);
      append_values(qv[p], q, proto.int8_path, picks[p].name);
    }
  }
  std::vector<GateRow> rows;
  for (size_t p = 0; p < picks.size(); ++p) {
    GateRow row = proto;
    row.inputs = set.label;
    row.output = picks[p].name;
    row.output_chosen = opt.all_outputs || !opt.output_name.empty();
    row.samples = static_cast<int64_t>(set.samples.size());
    score(row, fv[p], qv[p]);
    if (opt.keep_values) {
      row.fp32_values.assign(fv[p].begin(), fv[p].end());
      row.int8_values.assign(qv[p].begin(), qv[p].end());
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

GateRow error_row(GateRow row, std::string reason) {
  row.status = GateStatus::Error;
  row.reason = std::move(reason);
  return row;
}

}  // namespace

const char* gate_status_name(GateStatus status) {
  switch (status) {
    case GateStatus::Pass: return "PASS";
    case GateStatus::Fail: return "FAIL";
    case GateStatus::Error: return "FAIL";
  }
  return "FAIL";
}

std::vector<GateRow> gate_model_pair(const std::string& id, const std::string& mode, const std::string& fp32_path,
                                     const std::string& int8_path, double budget, const GateOptions& options) {
  GateRow proto;
  proto.id = id;
  proto.mode = mode;
  proto.fp32_path = fp32_path;
  proto.int8_path = int8_path;
  proto.budget = budget;
  if (!options.seed_inputs && options.data_path.empty())
    throw Error("gate", "no inputs to gate on: enable the seed inputs or give a data file");

  std::string missing;
  if (!file_exists(fp32_path)) missing = "fp32 model missing: " + fp32_path;
  if (!file_exists(int8_path)) missing += (missing.empty() ? "" : "; ") + std::string("int8 model missing: ") + int8_path;
  if (!missing.empty()) return {error_row(proto, missing)};

  std::unique_ptr<Session> fp32, int8;
  for (auto [path, session] : {std::make_pair(&fp32_path, &fp32), std::make_pair(&int8_path, &int8)}) {
    try {
      *session = std::make_unique<Session>(Session::from_file(*path));
    } catch (const Error& e) {
      return {error_row(proto, error_text(*path, e))};
    } catch (const std::exception& e) {
      return {error_row(proto, *path + ": " + e.what())};
    }
  }

  std::vector<OutputPick> picks;
  try {
    // The int8 model must take the same inputs: the gate feeds both the same tensors.
    for (const ValueInfo& v : fp32->inputs()) {
      bool found = false;
      for (const ValueInfo& w : int8->inputs()) found = found || w.name == v.name;
      TINYQ_CHECK(found, int8_path, "has no input named '" << v.name << "' (the fp32 model's input)");
    }
    TINYQ_CHECK(int8->inputs().size() == fp32->inputs().size(), int8_path,
                "takes " << int8->inputs().size() << " inputs, the fp32 model " << fp32->inputs().size());
    picks = pick_outputs(*fp32, *int8, options, fp32_path, int8_path);
  } catch (const Error& e) {
    return {error_row(proto, e.message())};
  }

  std::vector<GateRow> rows;
  auto run_set = [&](const std::string& label, const std::function<Samples()>& make) {
    GateRow p = proto;
    p.inputs = label;
    try {
      InputSet set{label, make()};
      if (set.samples.empty()) return;  // data_if_present and none of the inputs in the file
      std::vector<GateRow> r = gate_input_set(p, *fp32, *int8, set, picks, options);
      rows.insert(rows.end(), r.begin(), r.end());
    } catch (const Error& e) {
      rows.push_back(error_row(p, e.message()));
    } catch (const std::exception& e) {
      rows.push_back(error_row(p, e.what()));
    }
  };
  if (options.seed_inputs)
    run_set("seed", [&] { return seed_samples(fp32->inputs(), options.samples, options.seed); });
  if (!options.data_path.empty())
    run_set("data", [&] { return data_samples(fp32->inputs(), options.data_path, options.data_if_present); });
  return rows;
}

int gate_exit_code(const std::vector<GateRow>& rows) {
  int code = 0;
  for (const GateRow& r : rows) {
    if (r.status == GateStatus::Error) return 2;
    if (r.status == GateStatus::Fail) code = 1;
  }
  return code;
}

}  // namespace tinyq
