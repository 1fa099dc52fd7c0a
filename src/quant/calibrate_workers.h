// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// The worker loop calibration runs its samples (calibrate_runner.cpp) and the mse search its
// candidates (calibrate_mse_search.cpp) on: each worker thread sets itself up once (a session
// of its own) and then takes indices from a shared counter until none is left.

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <thread>
#include <vector>

namespace tinyq::quant {

/// Runs work(worker, next) on min(workers, n) threads, at least one (the caller's thread is
/// worker 0). next() hands out each index of [0, n) once, then -1. The first exception stops
/// the other workers at their next index and is rethrown.
template <typename Work>
void run_workers(int64_t n, int workers, const Work& work) {
  const int count = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(workers, n)));
  std::atomic<int64_t> counter{0};
  auto next = [&]() -> int64_t {
    const int64_t i = counter++;
    return i < n ? i : -1;
  };
  std::vector<std::exception_ptr> errors(static_cast<size_t>(count));
  auto run = [&](int w) {
    try {
      work(w, next);
    } catch (...) {
      errors[static_cast<size_t>(w)] = std::current_exception();
      counter = n;  // the others stop early
    }
  };
  std::vector<std::thread> threads;
  for (int w = 1; w < count; ++w) threads.emplace_back(run, w);
  run(0);
  for (auto& t : threads) t.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace tinyq::quant
