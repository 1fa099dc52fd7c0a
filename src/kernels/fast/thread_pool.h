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

/// A non-owning reference to a callable fn(begin, end): no allocation (a std::function around
/// a lambda with many captures would allocate on every call, which the tiny MLPs feel).
class RangeFn {
 public:
  template <typename Fn>
  RangeFn(Fn& fn)  // NOLINT: implicit, from the lambda the caller passes
      : obj_(&fn), call_([](void* o, int64_t b, int64_t e) { (*static_cast<Fn*>(o))(b, e); }) {}
  void operator()(int64_t begin, int64_t end) const { call_(obj_, begin, end); }

 private:
  void* obj_;
  void (*call_)(void*, int64_t, int64_t);
};

/// Runs fn(begin, end) over slices of [0, n) on up to `threads` threads (the caller's thread
/// takes the first slice). threads <= 1 or n <= 1 runs fn(0, n) directly.
void parallel_for_ref(int threads, int64_t n, RangeFn fn);
template <typename Fn>
void parallel_for(int threads, int64_t n, Fn&& fn) {
  if (n <= 0) return;
  if (threads <= 1 || n == 1) {
    fn(int64_t{0}, n);
    return;
  }
  parallel_for_ref(threads, n, RangeFn(fn));
}

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
