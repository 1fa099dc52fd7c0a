// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// In-process latency of tiny models through the C++ API (what a caller embedding tinyq sees),
// for bench/bench.sh: one Session, feeds built once, then batches of back-to-back run() calls
// timed together (a single call of a 6->32->16->1 MLP is far below the clock's resolution).
//
// usage: tinyq_bench_mlp MODEL.onnx [--batch B] [--threads N] [--seconds S] [--json]
// Prints the median, 10th and 90th percentile time per run() call over the timed batches,
// and per row of the batch.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "tinyq/error.h"
#include "tinyq/session.h"

namespace {

struct Args {
  std::string model;
  int64_t batch = 1;
  int threads = 1;
  double seconds = 1.0;
  bool json = false;
};

[[noreturn]] void usage() {
  std::fprintf(stderr, "usage: tinyq_bench_mlp MODEL.onnx [--batch B] [--threads N] [--seconds S] [--json]\n");
  std::exit(2);
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string v = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) usage();
      return argv[++i];
    };
    if (v == "--batch") a.batch = std::atoll(next());
    else if (v == "--threads") a.threads = std::atoi(next());
    else if (v == "--seconds") a.seconds = std::atof(next());
    else if (v == "--json") a.json = true;
    else if (a.model.empty() && v.rfind("--", 0) != 0) a.model = v;
    else usage();
  }
  if (a.model.empty() || a.batch < 1 || a.threads < 1 || a.seconds <= 0) usage();
  return a;
}

double quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double pos = (v.size() - 1) * q;
  const size_t lo = static_cast<size_t>(pos), hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  try {
    tinyq::SessionOptions opts;
    opts.threads = a.threads;
    tinyq::Session session = tinyq::Session::from_file(a.model, opts);
    std::vector<tinyq::Tensor> feeds;
    uint32_t seed = 12345;
    for (const tinyq::ValueInfo& in : session.inputs()) {
      tinyq::Shape shape;
      for (size_t d = 0; d < in.dims.size(); ++d) shape.push_back(in.dims[d].known() ? in.dims[d].value : (d == 0 ? a.batch : 1));
      if (!shape.empty() && !in.dims[0].known()) shape[0] = a.batch;
      tinyq::Tensor t(tinyq::DType::F32, shape);
      float* p = t.data<float>();
      for (int64_t i = 0; i < t.numel(); ++i) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = static_cast<float>(seed >> 8) / 16777216.0f;
      }
      feeds.push_back(t);
    }
    using clock = std::chrono::steady_clock;
    // Calibrate: calls per timed batch so one batch takes about 2 ms.
    for (int i = 0; i < 50; ++i) session.run(feeds);
    auto t0 = clock::now();
    int64_t calls = 0;
    while (std::chrono::duration<double>(clock::now() - t0).count() < 0.02) {
      session.run(feeds);
      ++calls;
    }
    const double per_call = 0.02 / static_cast<double>(std::max<int64_t>(calls, 1));
    const int64_t per_batch = std::max<int64_t>(1, static_cast<int64_t>(0.002 / per_call));
    std::vector<double> ns;
    const auto start = clock::now();
    while (std::chrono::duration<double>(clock::now() - start).count() < a.seconds || ns.size() < 5) {
      const auto b0 = clock::now();
      for (int64_t i = 0; i < per_batch; ++i) session.run(feeds);
      const double dt = std::chrono::duration<double, std::nano>(clock::now() - b0).count();
      ns.push_back(dt / static_cast<double>(per_batch));
    }
    const double med = quantile(ns, 0.5), p10 = quantile(ns, 0.1), p90 = quantile(ns, 0.9);
    if (a.json) {
      std::printf("{\"model\": \"%s\", \"batch\": %lld, \"threads\": %d, \"median_ns\": %.1f, \"p10_ns\": %.1f, "
                  "\"p90_ns\": %.1f, \"median_ns_per_row\": %.2f, \"calls\": %lld}\n",
                  a.model.c_str(), static_cast<long long>(a.batch), a.threads, med, p10, p90,
                  med / static_cast<double>(a.batch), static_cast<long long>(per_batch * static_cast<int64_t>(ns.size())));
    } else {
      std::printf("%s batch %lld threads %d: median %.1f ns per call (p10 %.1f, p90 %.1f), %.2f ns per row\n",
                  a.model.c_str(), static_cast<long long>(a.batch), a.threads, med, p10, p90,
                  med / static_cast<double>(a.batch));
    }
  } catch (const tinyq::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }
  return 0;
}
