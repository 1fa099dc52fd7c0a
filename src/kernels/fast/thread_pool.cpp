// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include "kernels/fast/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace tinyq::kernels {

namespace {

// How long a thread polls before it sleeps on a condition variable: a model's layers call the
// pool back to back, a few microseconds apart, and a futex wake-up costs tens of microseconds
// per call (most of what kept two threads from halving a 224x224 int8 convolution stack).
constexpr auto kSpin = std::chrono::microseconds(50);

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#else
  std::this_thread::yield();
#endif
}

// Polls until done() or kSpin has passed; true when done() came true.
template <typename Done>
bool spin_until(Done done) {
  const auto until = std::chrono::steady_clock::now() + kSpin;
  for (;;) {
    for (int i = 0; i < 32; ++i) {
      if (done()) return true;
      cpu_relax();
    }
    if (std::chrono::steady_clock::now() >= until) return false;
    // On a busy machine the thread we wait for may need this core.
    std::this_thread::yield();
  }
}

thread_local bool t_in_pool_slice = false;
thread_local int t_threads = 1;

class Pool {
 public:
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    work_cv_.notify_all();
    for (auto& t : workers_) t.join();
  }

  void run(int parts, const std::function<void(int)>& part) {
    std::lock_guard<std::mutex> call_lock(call_mu_);
    std::unique_lock<std::mutex> lock(mu_);
    while (static_cast<int>(workers_.size()) < parts - 1) {
      const int id = static_cast<int>(workers_.size()) + 1;
      workers_.emplace_back([this, id] { worker(id); });
    }
    job_ = &part;
    parts_ = parts;
    pending_.store(parts - 1, std::memory_order_relaxed);
    error_ = nullptr;
    ++generation_;
    published_.store(generation_, std::memory_order_release);
    lock.unlock();
    work_cv_.notify_all();
    // The caller runs slice 0 itself.
    std::exception_ptr mine;
    t_in_pool_slice = true;
    try {
      part(0);
    } catch (...) {
      mine = std::current_exception();
    }
    t_in_pool_slice = false;
    spin_until([this] { return pending_.load(std::memory_order_acquire) == 0; });
    lock.lock();
    done_cv_.wait(lock, [this] { return pending_.load(std::memory_order_relaxed) == 0; });
    job_ = nullptr;
    std::exception_ptr err = mine ? mine : error_;
    lock.unlock();
    if (err) std::rethrow_exception(err);
  }

 private:
  void worker(int id) {
    uint64_t seen = 0;
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      if (!stop_ && generation_ == seen) {
        // Poll (without the lock) for the next call before sleeping; the predicate below is
        // checked under the lock either way, so no call is missed.
        lock.unlock();
        spin_until([&] { return published_.load(std::memory_order_acquire) != seen; });
        lock.lock();
      }
      work_cv_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      if (id >= parts_) continue;  // this call needs fewer workers
      const std::function<void(int)>* job = job_;
      lock.unlock();
      std::exception_ptr err;
      t_in_pool_slice = true;
      try {
        (*job)(id);
      } catch (...) {
        err = std::current_exception();
      }
      t_in_pool_slice = false;
      lock.lock();
      if (err && !error_) error_ = err;
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) done_cv_.notify_one();
    }
  }

  std::mutex call_mu_;
  std::mutex mu_;
  std::condition_variable work_cv_, done_cv_;
  std::vector<std::thread> workers_;
  const std::function<void(int)>* job_ = nullptr;
  int parts_ = 0;
  std::atomic<int> pending_{0};
  uint64_t generation_ = 0;
  std::atomic<uint64_t> published_{0};  // generation_, readable without the lock
  bool stop_ = false;
  std::exception_ptr error_;
};

Pool& pool() {
  static Pool p;
  return p;
}

}  // namespace

void parallel_for_ref(int threads, int64_t n, RangeFn fn) {
  if (n <= 0) return;
  const int parts = static_cast<int>(std::min<int64_t>(std::max(threads, 1), n));
  if (parts <= 1 || t_in_pool_slice) {
    fn(0, n);
    return;
  }
  pool().run(parts, [&](int i) {
    const int64_t begin = n * i / parts, end = n * (i + 1) / parts;
    if (begin < end) fn(begin, end);
  });
}

int current_threads() { return t_threads; }

ThreadScope::ThreadScope(int threads) : previous_(t_threads) { t_threads = std::max(1, threads); }
ThreadScope::~ThreadScope() { t_threads = previous_; }

int useful_threads(int threads, double work, double min_work_per_thread) {
  if (threads <= 1) return 1;
  const double by_work = work / min_work_per_thread;
  return static_cast<int>(std::max(1.0, std::min<double>(threads, by_work)));
}

}  // namespace tinyq::kernels
