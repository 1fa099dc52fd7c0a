// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// The global operator new of the alloc tier's executable, made to fail on request: armed with
// n, the n-th allocation after arming (on any thread) throws std::bad_alloc, once; every other
// allocation goes through malloc as usual. Tests sweep n over every allocation an operation
// makes to check that each failure surfaces as an exception, on the calling thread, and leaves
// nothing broken behind.

#include <cstdint>

namespace tinyq::test::alloc {

/// The n-th allocation from now fails (n >= 1).
void fail_nth(int64_t n);
/// Stops failing; returns how many allocations were made since the last fail_nth / count.
int64_t disarm();
/// Counts allocations without failing any (disarm() returns the count).
void count();
/// Whether the armed failure has happened.
bool failed();

}  // namespace tinyq::test::alloc
