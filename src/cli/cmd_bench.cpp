// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// `tinyq bench MODEL.onnx [--int8 FILE] [--threads N] [--batch B] [--json] [--ort]`: latency of a
// model (and its int8 version) in tinyq's runtime: warm-up, then the median and spread of
// per-run times, the fp32/int8 ratio, this CPU's int8 features, and a plain warning when it has
// no int8 dot-product instruction. --ort runs the same models with the same feeds' shapes in
// ONNX Runtime (npm onnxruntime-node, bench/ort_bench.js) for a side-by-side table. The number
// the seed's PR template asks for.

#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iomanip>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/cli_util.h"
#include "cli/command.h"
#include "common/cpu_features.h"
#include "common/file_util.h"
#include "graph/model_summary.h"
#include "tinyq/model_io.h"
#include "tinyq/session.h"

namespace tinyq::cli {
namespace {

struct BenchArgs {
  std::string model;
  std::string int8;
  int threads = 1;
  int64_t batch = 1;
  double seconds = 1.0;
  bool json = false;
  bool ort = false;
  std::vector<std::string> shapes;  // NAME=d0,d1,...
};

struct Stats {
  std::string model;
  std::string runtime;  // "tinyq" or "onnxruntime"
  std::string error;    // set when the run failed (ORT missing, model refused)
  double median_us = 0, p10_us = 0, p90_us = 0;
  int64_t runs = 0;
};

double quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double pos = static_cast<double>(v.size() - 1) * q;
  const size_t lo = static_cast<size_t>(pos), hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

// Input shapes: --shape overrides; else declared dims, the first unknown one is the batch and
// any other unknown one is 1.
std::vector<std::pair<std::string, Shape>> input_shapes(const Session& s, const BenchArgs& a) {
  std::vector<std::pair<std::string, Shape>> out;
  for (const ValueInfo& in : s.inputs()) {
    Shape shape;
    bool overridden = false;
    for (const std::string& spec : a.shapes) {
      const size_t eq = spec.find('=');
      if (eq == std::string::npos) throw Error("--shape", "'" + spec + "' is not NAME=d0,d1,...");
      if (spec.substr(0, eq) != in.name) continue;
      std::stringstream dims(spec.substr(eq + 1));
      std::string d;
      while (std::getline(dims, d, ',')) {
        char* end = nullptr;
        const long long v = std::strtoll(d.c_str(), &end, 10);
        if (d.empty() || *end != '\0' || v < 0) throw Error("--shape", "'" + spec + "' has a bad dimension");
        shape.push_back(v);
      }
      overridden = true;
    }
    if (!overridden) {
      if (!in.has_shape) throw Error("input '" + in.name + "'", "has no declared shape; give --shape " + in.name + "=...");
      for (size_t d = 0; d < in.dims.size(); ++d) shape.push_back(in.dims[d].known() ? in.dims[d].value : d == 0 ? a.batch : 1);
    }
    if (in.dtype != DType::F32 && in.dtype != DType::Undefined)
      throw Error("input '" + in.name + "'", std::string("is ") + dtype_name(in.dtype) + "; bench feeds float inputs only");
    out.emplace_back(in.name, shape);
  }
  return out;
}

// Uniform [0, 1) values from the same generator as bench/ort_bench.js (seed 12345 + input index).
std::vector<Tensor> make_feeds(const std::vector<std::pair<std::string, Shape>>& shapes) {
  std::vector<Tensor> feeds;
  for (size_t k = 0; k < shapes.size(); ++k) {
    Tensor t(DType::F32, shapes[k].second);
    uint32_t s = 12345u + static_cast<uint32_t>(k);
    float* p = t.data<float>();
    for (int64_t i = 0; i < t.numel(); ++i) {
      s = s * 1664525u + 1013904223u;
      p[i] = static_cast<float>(s >> 8) / 16777216.0f;
    }
    feeds.push_back(std::move(t));
  }
  return feeds;
}

// Times groups of back-to-back runs (one run for models slower than ~0.2 ms, more for tiny
// ones, whose single run is below the clock's resolution) for `seconds` after a warm-up.
Stats time_tinyq(const std::string& path, const BenchArgs& a, std::vector<std::pair<std::string, Shape>>* shapes) {
  Stats st;
  st.model = path;
  st.runtime = "tinyq";
  SessionOptions opts;
  opts.threads = a.threads;
  Session session = Session::from_file(path, opts);
  *shapes = input_shapes(session, a);
  const std::vector<Tensor> feeds = make_feeds(*shapes);
  using clock = std::chrono::steady_clock;
  auto secs = [](clock::time_point t0) { return std::chrono::duration<double>(clock::now() - t0).count(); };
  const auto w0 = clock::now();
  int64_t warm = 0;
  while (warm < 3 || (secs(w0) < 0.2 && warm < 1000)) {
    session.run(feeds);
    ++warm;
  }
  const double per_run = secs(w0) / static_cast<double>(warm);
  const int64_t group = std::max<int64_t>(1, static_cast<int64_t>(200e-6 / per_run));
  std::vector<double> us;
  const auto start = clock::now();
  while (secs(start) < a.seconds || us.size() < 5) {
    const auto g0 = clock::now();
    for (int64_t i = 0; i < group; ++i) session.run(feeds);
    us.push_back(secs(g0) * 1e6 / static_cast<double>(group));
  }
  st.median_us = quantile(us, 0.5);
  st.p10_us = quantile(us, 0.1);
  st.p90_us = quantile(us, 0.9);
  st.runs = static_cast<int64_t>(us.size()) * group;
  return st;
}

std::string self_dir() {
  std::array<char, 4096> buf{};
  const ssize_t n = readlink("/proc/self/exe", buf.data(), buf.size() - 1);
  return n > 0 ? path_dirname(std::string(buf.data(), static_cast<size_t>(n))) : ".";
}

// bench/ort_bench.js: $TINYQ_ORT_BENCH, else beside the build folder or the working folder.
std::string find_ort_script() {
  if (const char* env = std::getenv("TINYQ_ORT_BENCH"); env && *env) return env;
  const std::string dir = self_dir();
  for (const std::string& c : {path_join(dir, "../bench/ort_bench.js"), path_join(dir, "bench/ort_bench.js"),
                               std::string("bench/ort_bench.js")})
    if (access(c.c_str(), R_OK) == 0) return c;
  return "";
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

Stats time_ort(const std::string& path, const BenchArgs& a, const std::vector<std::pair<std::string, Shape>>& shapes) {
  Stats st;
  st.model = path;
  st.runtime = "onnxruntime";
  const std::string script = find_ort_script();
  if (script.empty()) {
    st.error = "bench/ort_bench.js not found (set TINYQ_ORT_BENCH)";
    return st;
  }
  std::string cmd = "node " + shell_quote(script) + " " + shell_quote(path);
  for (const auto& [name, shape] : shapes) {
    std::string dims;
    for (size_t i = 0; i < shape.size(); ++i) dims += (i ? "," : "") + std::to_string(shape[i]);
    cmd += " --input " + shell_quote(name + ":" + dims);
  }
  std::ostringstream secs;
  secs << a.seconds;
  cmd += " --threads " + std::to_string(a.threads) + " --min-seconds " + secs.str() + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) {
    st.error = "could not start node";
    return st;
  }
  std::string text;
  std::array<char, 4096> buf{};
  size_t got = 0;
  while ((got = fread(buf.data(), 1, buf.size(), pipe)) > 0) text.append(buf.data(), got);
  const int rc = pclose(pipe);
  try {
    if (rc != 0) throw std::runtime_error(text);
    const nlohmann::json j = nlohmann::json::parse(text);
    st.median_us = j.at("median_us").get<double>();
    st.p10_us = j.at("p10_us").get<double>();
    st.p90_us = j.at("p90_us").get<double>();
    st.runs = j.at("runs").get<int64_t>();
  } catch (const std::exception& e) {
    std::string msg = e.what();
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == '\r')) msg.pop_back();
    st.error = "ONNX Runtime failed: " + (msg.empty() ? std::string("exit ") + std::to_string(rc) : msg);
  }
  return st;
}

std::string fmt_us(double us) {
  std::ostringstream o;
  o << std::fixed;
  if (us >= 1000.0)
    o << std::setprecision(us >= 100000.0 ? 1 : 2) << us / 1000.0 << " ms";
  else
    o << std::setprecision(us >= 100.0 ? 1 : 2) << us << " us";
  return o.str();
}

nlohmann::json stats_json(const Stats& s) {
  nlohmann::json j = {{"model", s.model}, {"runtime", s.runtime}};
  if (!s.error.empty()) {
    j["error"] = s.error;
  } else {
    j["median_us"] = s.median_us;
    j["p10_us"] = s.p10_us;
    j["p90_us"] = s.p90_us;
    j["runs"] = s.runs;
  }
  return j;
}

// A note for an int8 file whose convolutions quantise their input at run time (dynamic PTQ):
// each layer's output then takes a range pass and a quantise pass, work a static QDQ file does
// not do, so on convolution networks static PTQ is the faster int8 (ONNX Runtime's advice too:
// dynamic for MLPs and transformers, static for CNNs). "" for any other file.
std::string dynamic_conv_note(const std::string& int8_path) {
  const graph::ModelSummary s = graph::summarize(load_model(int8_path));
  const auto conv = s.op_histogram.find("ConvInteger");
  if (s.quant_format != graph::QuantFormat::Dynamic || conv == s.op_histogram.end()) return "";
  return path_basename(int8_path) + " quantises the input of its " + std::to_string(conv->second) +
         " convolutions at run time (dynamic PTQ): for convolution networks a static QDQ file "
         "(tinyq ptq-static) skips that work and usually runs faster";
}

int run(const BenchArgs& a) {
  require_onnx_file(a.model);
  if (!a.int8.empty()) require_onnx_file(a.int8);
  const CpuFeatures& f = cpu_features();
  const bool dot = f.has_int8_dot();
  std::vector<std::pair<std::string, Shape>> shapes;
  std::vector<Stats> rows;
  rows.push_back(time_tinyq(a.model, a, &shapes));
  if (!a.int8.empty()) {
    std::vector<std::pair<std::string, Shape>> int8_shapes;
    rows.push_back(time_tinyq(a.int8, a, &int8_shapes));
  }
  if (a.ort) {
    rows.push_back(time_ort(a.model, a, shapes));
    if (!a.int8.empty()) rows.push_back(time_ort(a.int8, a, shapes));
  }
  const bool has_ratio = !a.int8.empty();
  const std::string note = has_ratio ? dynamic_conv_note(a.int8) : "";
  const double ratio = has_ratio ? rows[0].median_us / rows[1].median_us : 0.0;
  const std::string warning =
      dot ? "" : "this CPU has no int8 dot-product instructions (AVX-512 VNNI, AVX-VNNI, AMX or Arm dotprod): "
                 "int8 runs on widening 16-bit multiplies and may be no faster than fp32";
  if (a.json) {
    nlohmann::json j;
    j["cpu"] = f.model_name;
    j["features"] = f.to_string();
    j["int8_dot_product"] = dot;
    j["threads"] = a.threads;
    j["batch"] = a.batch;
    j["results"] = nlohmann::json::array();
    for (const Stats& s : rows) j["results"].push_back(stats_json(s));
    if (has_ratio) j["fp32_over_int8"] = ratio;
    if (a.ort && rows.size() >= 2 + (has_ratio ? 2u : 0u) && rows[has_ratio ? 2 : 1].error.empty()) {
      const Stats& ort_fp32 = rows[has_ratio ? 2 : 1];
      j["ort_fp32_over_tinyq_fp32"] = ort_fp32.median_us / rows[0].median_us;
      if (has_ratio) j["ort_fp32_over_tinyq_int8"] = ort_fp32.median_us / rows[1].median_us;
    }
    if (!warning.empty()) j["warning"] = warning;
    if (!note.empty()) j["note"] = note;
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::cout << "cpu: " << f.model_name << " (" << f.to_string() << ")\n";
  std::cout << "threads " << a.threads << ", batch " << a.batch << ", " << a.seconds
            << " s per model after warm-up; per-run latency:\n";
  std::cout << std::left << std::setw(12) << "runtime" << std::setw(44) << "model" << std::right << std::setw(12)
            << "median" << std::setw(12) << "p10" << std::setw(12) << "p90" << std::setw(10) << "runs" << "\n";
  for (const Stats& s : rows) {
    std::cout << std::left << std::setw(12) << s.runtime << std::setw(44) << path_basename(s.model);
    if (!s.error.empty()) {
      std::cout << s.error << "\n";
      continue;
    }
    std::cout << std::right << std::setw(12) << fmt_us(s.median_us) << std::setw(12) << fmt_us(s.p10_us)
              << std::setw(12) << fmt_us(s.p90_us) << std::setw(10) << s.runs << "\n";
  }
  std::cout << std::fixed << std::setprecision(2);
  if (has_ratio) std::cout << "tinyq fp32 / int8 latency: " << ratio << "x\n";
  if (a.ort) {
    const size_t o = has_ratio ? 2 : 1;
    if (rows[o].error.empty()) {
      std::cout << "ONNX Runtime fp32 / tinyq fp32: " << rows[o].median_us / rows[0].median_us << "x\n";
      if (has_ratio) std::cout << "ONNX Runtime fp32 / tinyq int8: " << rows[o].median_us / rows[1].median_us << "x\n";
    }
  }
  if (!warning.empty()) std::cout << "warning: " << warning << "\n";
  if (!note.empty()) std::cout << "note: " << note << "\n";
  return 0;
}

}  // namespace

CommandAction setup_bench(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  app.add_option("model", a->model, "ONNX model file (fp32)")->required();
  app.add_option("--int8", a->int8, "Its int8 version, timed too, with the fp32/int8 ratio");
  app.add_option("--threads", a->threads, "Threads per run")->check(CLI::Range(1, 256));
  app.add_option("--batch", a->batch, "Size of the inputs' first unknown dimension")->check(CLI::Range(1, 1 << 20));
  app.add_option("--seconds", a->seconds, "Measuring time per model after warm-up")->check(CLI::Range(0.05, 600.0));
  app.add_option("--shape", a->shapes, "Input shape NAME=d0,d1,... (repeatable; overrides the declared shape)");
  app.add_flag("--json", a->json, "Print the results as JSON");
  app.add_flag("--ort", a->ort, "Also run the models in ONNX Runtime (node, tests/ort/node_modules) side by side");
  return [a] { return run(*a); };
}

}  // namespace tinyq::cli
