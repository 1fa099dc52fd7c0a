// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// Tensor buffers: large ones are recycled through a per-thread cache (common/tensor.cpp). A
// recycled buffer must look exactly like a fresh one: zeroed when the constructor promises
// zeros, the slack past the end zeroed always, never shared with a live tensor, and safe to
// free on any thread, including after the allocating thread has exited.

#include <gtest/gtest.h>

#include <cstring>
#include <set>
#include <thread>
#include <vector>

#include "tinyq/tensor.h"

namespace tinyq {
namespace {

const Shape kLarge = {1, 16, 224, 224};  // 3 MiB of floats: above the recycling threshold

void fill(Tensor& t, uint8_t v) { std::memset(t.raw(), v, t.nbytes()); }

bool all_bytes(const Tensor& t, size_t from, size_t to, uint8_t v) {
  const auto* p = static_cast<const uint8_t*>(t.raw());
  for (size_t i = from; i < to; ++i)
    if (p[i] != v) return false;
  return true;
}

TEST(TensorBuffers, ZeroingConstructorZeroesARecycledBuffer) {
  for (int round = 0; round < 3; ++round) {
    {
      Tensor dirty = Tensor::uninitialized(DType::F32, kLarge);
      fill(dirty, 0xAB);
    }
    Tensor t(DType::F32, kLarge);
    ASSERT_TRUE(all_bytes(t, 0, t.nbytes(), 0)) << "round " << round;
  }
}

TEST(TensorBuffers, SlackPastTheEndIsZeroOnRecycledBuffers) {
  for (int round = 0; round < 3; ++round) {
    {
      Tensor dirty = Tensor::uninitialized(DType::F32, kLarge);
      fill(dirty, 0xCD);
      // The slack too, as a kernel writing a whole last vector might.
      std::memset(static_cast<uint8_t*>(dirty.raw()) + dirty.nbytes(), 0xCD, 64);
    }
    Tensor t = Tensor::uninitialized(DType::F32, kLarge);
    const auto* p = static_cast<const uint8_t*>(t.raw());
    for (size_t i = 0; i < 64; ++i) ASSERT_EQ(p[t.nbytes() + i], 0) << "byte " << i << " past the end, round " << round;
  }
}

TEST(TensorBuffers, LiveTensorsNeverShareABuffer) {
  std::vector<Tensor> live;
  for (int i = 0; i < 12; ++i) {
    live.push_back(Tensor::uninitialized(DType::F32, kLarge));
    fill(live.back(), static_cast<uint8_t>(i + 1));
    if (i % 3 == 2) live.erase(live.begin());  // free some, so later ones may be recycled
  }
  std::set<const void*> seen;
  for (const Tensor& t : live) EXPECT_TRUE(seen.insert(t.raw()).second);
  // Each survivor still holds its own bytes.
  for (const Tensor& t : live) {
    const uint8_t v = static_cast<const uint8_t*>(t.raw())[0];
    EXPECT_TRUE(all_bytes(t, 0, t.nbytes(), v));
  }
}

TEST(TensorBuffers, ManySizesAndCopiesShareOwnership) {
  std::vector<Tensor> ts;
  for (int64_t c = 1; c <= 20; ++c) ts.push_back(Tensor::uninitialized(DType::F32, {1, c, 160, 160}));
  Tensor keep = ts[5];  // shares the buffer: freeing ts must not recycle it
  fill(keep, 0x5A);
  ts.clear();
  std::vector<Tensor> again;
  for (int64_t c = 1; c <= 20; ++c) {
    again.push_back(Tensor(DType::F32, {1, c, 160, 160}));
    EXPECT_NE(again.back().raw(), keep.raw());
  }
  EXPECT_TRUE(all_bytes(keep, 0, keep.nbytes(), 0x5A));
}

TEST(TensorBuffers, FreedOnAnotherThreadAndAfterItsThreadExited) {
  // Made on a worker that exits, used and freed here.
  Tensor from_worker;
  std::thread([&] {
    from_worker = Tensor(DType::F32, kLarge);
    Tensor churn = Tensor::uninitialized(DType::F32, kLarge);  // freed into the worker's cache
    fill(churn, 0x11);
  }).join();
  EXPECT_TRUE(all_bytes(from_worker, 0, from_worker.nbytes(), 0));
  from_worker = Tensor();
  // Made here, freed on a worker (into its cache, released when it exits).
  Tensor here = Tensor::uninitialized(DType::F32, kLarge);
  fill(here, 0x22);
  std::thread([t = std::move(here)]() mutable { t = Tensor(); }).join();
  Tensor after(DType::F32, kLarge);
  EXPECT_TRUE(all_bytes(after, 0, after.nbytes(), 0));
}

}  // namespace
}  // namespace tinyq
