// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// Replaces the global allocation functions for this test executable only (failing_new.h).
// Every replaceable form of operator new goes through one counter; delete is plain free().

#include "failing_new.h"

#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <execinfo.h>
#include <new>

namespace tinyq::test::alloc {
namespace {

std::atomic<bool> counting{false};
std::atomic<int64_t> made{0};
std::atomic<int64_t> fail_at{0};  // 0: never
std::atomic<bool> did_fail{false};

// Whether this allocation is the one to fail.
bool should_fail() {
  if (!counting.load(std::memory_order_relaxed)) return false;
  const int64_t k = made.fetch_add(1, std::memory_order_relaxed) + 1;
  if (k != fail_at.load(std::memory_order_relaxed)) return false;
  did_fail.store(true);
  // TINYQ_ALLOC_BACKTRACE=1 prints where the failing allocation came from (a sweep that fails
  // names the allocation; this tells whose it is).
  static const bool trace = std::getenv("TINYQ_ALLOC_BACKTRACE") != nullptr;
  if (trace) {
    void* frames[32];
    backtrace_symbols_fd(frames, backtrace(frames, 32), 2);
  }
  return true;
}

void* allocate(std::size_t size, std::size_t align, bool nothrow) {
  if (should_fail()) {
    if (nothrow) return nullptr;
    throw std::bad_alloc();
  }
  if (size == 0) size = 1;
  void* p = align > alignof(std::max_align_t) ? std::aligned_alloc(align, (size + align - 1) / align * align)
                                              : std::malloc(size);
  if (!p && !nothrow) throw std::bad_alloc();
  return p;
}

}  // namespace

void fail_nth(int64_t n) {
  made = 0;
  did_fail = false;
  fail_at = n;
  counting = true;
}

void count() { fail_nth(0); }

int64_t disarm() {
  counting = false;
  fail_at = 0;
  return made.load();
}

bool failed() { return did_fail.load(); }

}  // namespace tinyq::test::alloc

using tinyq::test::alloc::allocate;

void* operator new(std::size_t n) { return allocate(n, 0, false); }
void* operator new[](std::size_t n) { return allocate(n, 0, false); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return allocate(n, 0, true); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return allocate(n, 0, true); }
void* operator new(std::size_t n, std::align_val_t a) { return allocate(n, static_cast<std::size_t>(a), false); }
void* operator new[](std::size_t n, std::align_val_t a) { return allocate(n, static_cast<std::size_t>(a), false); }
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return allocate(n, static_cast<std::size_t>(a), true);
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return allocate(n, static_cast<std::size_t>(a), true);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
