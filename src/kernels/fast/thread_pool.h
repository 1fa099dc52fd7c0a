// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// A small fork-join pool for the fast kernels (--threads N). Workers are started on first use
// and kept for the process; a call hands each worker a contiguous slice of [0, n) and returns
// when all slices are done. Calls from several threads at once are serialised; a call made from
// inside a slice runs inline, so nested parallel code cannot deadlock.

#include <cstdint>
#include <functional>

namespace tinyq::kernels {

/// Runs fn(begin, end) over slices of [0, n) on up to `threads` threads (the caller's thread
/// takes the first slice). threads <= 1 or n <= 1 runs fn(0, n) directly.
void parallel_for(int threads, int64_t n, const std::function<void(int64_t, int64_t)>& fn);

/// Threads the current Session::run allows on this thread (1 outside a run). The session sets
/// it for the duration of a run (ThreadScope), so every op can use SessionOptions::threads
/// without carrying it.
int current_threads();
class ThreadScope {
 public:
  explicit ThreadScope(int threads);
  ~ThreadScope();
  ThreadScope(const ThreadScope&) = delete;
  ThreadScope& operator=(const ThreadScope&) = delete;

 private:
  int previous_;
};

/// Threads worth using for `work` units (e.g. multiply-adds) when `threads` are allowed:
/// small problems stay on one thread, where starting workers would cost more than it saves.
int useful_threads(int threads, double work, double min_work_per_thread = 2.0e6);

}  // namespace tinyq::kernels
