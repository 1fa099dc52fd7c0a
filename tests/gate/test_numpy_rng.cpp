// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// numpy.random.default_rng(0) reproduced bit for bit. The expected integers were printed by
// numpy 1.24 (/usr/bin/python3):
//   np.random.SeedSequence(0).generate_state(4, np.uint64)
//   np.random.PCG64(0).state
//   np.random.default_rng(0).bit_generator.random_raw(2)
// and the gate inputs are the seed's own arrays in ../shared/reference/ort-1.30.

#include <gtest/gtest.h>

#include <cstring>

#include "gate/numpy_rng.h"
#include "test_support.h"
#include "tinyq/npz.h"

namespace tinyq {
namespace {

TEST(NumpyRng, SeedSequenceState) {
  std::vector<uint64_t> v = numpy_seed_sequence_state64(0, 4);
  ASSERT_EQ(v.size(), 4u);
  EXPECT_EQ(v[0], 0xdb2cd7e7b0f478beull);
  EXPECT_EQ(v[1], 0xabf4641a2c71ba49ull);
  EXPECT_EQ(v[2], 0x20c6ed6d9d7b8d41ull);
  EXPECT_EQ(v[3], 0x2c4099de223c39d4ull);
  // The uint32 view is the same words, low half first.
  std::vector<uint32_t> w = numpy_seed_sequence_state32(0, 8);
  EXPECT_EQ(w[0], 0xb0f478beu);
  EXPECT_EQ(w[1], 0xdb2cd7e7u);
}

TEST(NumpyRng, Pcg64StateAfterSeeding) {
  NumpyGenerator g(0);
  // 35399562948360463058890781895381311971 and 87136372517582989555478159403783844777 split
  // into 64-bit halves.
  auto s = g.state();
  auto inc = g.increment();
  EXPECT_EQ(s[0], 1919014152682489133ull);
  EXPECT_EQ(s[1], 673392287158723043ull);
  EXPECT_EQ(inc[0], 4723672219303484034ull);
  EXPECT_EQ(inc[1], 6377435431028945833ull);
}

TEST(NumpyRng, RawOutputs) {
  NumpyGenerator g(0);
  EXPECT_EQ(g.next_uint64(), 11749869230777074271ull);
  EXPECT_EQ(g.next_uint64(), 4976686463289251617ull);
}

TEST(NumpyRng, Float32UsesBufferedHalves) {
  // Two float32 draws consume one 64-bit output: low half first, then the high half.
  NumpyGenerator a(0), b(0);
  uint64_t raw = a.next_uint64();
  float lo = static_cast<float>(static_cast<uint32_t>(raw) >> 8) / 16777216.0f;
  float hi = static_cast<float>(static_cast<uint32_t>(raw >> 32) >> 8) / 16777216.0f;
  EXPECT_EQ(b.next_float(), lo);
  EXPECT_EQ(b.next_float(), hi);
  EXPECT_FLOAT_EQ(NumpyGenerator(0).random_f32({3}).data<float>()[0], 0.8506242f);
}

// Odd-sized draws leave a spare half buffered for the next call, and float64 draws bypass
// that buffer: default_rng(0).random(3, float32); .random(3, float32); .random(2).
TEST(NumpyRng, BufferCarriesAcrossCalls) {
  NumpyGenerator g(0);
  g.random_f32({3});
  Tensor b = g.random_f32({3});
  const float* p = b.data<float>();
  EXPECT_EQ(p[0], 4526269.0f / 16777216.0f);
  EXPECT_EQ(p[1], 5164520.0f / 16777216.0f);
  EXPECT_EQ(p[2], 687421.0f / 16777216.0f);
  EXPECT_EQ(g.next_double(), 0x1.0ec9ed84d0bc0p-6);
  EXPECT_EQ(g.next_double(), 0x1.a064f4f059bcap-1);
}

// A seed above 32 bits is two entropy words.
TEST(NumpyRng, WideSeed) {
  NumpyGenerator g(12345678901234ull);
  EXPECT_EQ(g.next_uint64(), 7496343037614434180ull);
  EXPECT_EQ(g.next_uint64(), 483370428031952295ull);
}

// The seed's 16 gate inputs for every reference model, regenerated with one generator per model
// run (sample-major, then input order) and compared bit for bit.
TEST(NumpyRng, GateInputsBitExact) {
  TINYQ_REQUIRE_SHARED();
  for (const char* m : {"vmaf_tiny_v3", "vmaf_tiny_v4", "nr_metric_v1", "learned_filter_v1"}) {
    SCOPED_TRACE(m);
    NamedTensors ref = read_npz(test::shared_dir() + "/reference/ort-1.30/" + m + ".gate_inputs.npz");
    ASSERT_EQ(ref.size(), 16u);
    NumpyGenerator g(0);
    for (int i = 0; i < 16; ++i) {
      const Tensor* want = nullptr;
      for (const auto& [key, t] : ref)
        if (key.size() > 3 && key.substr(key.rfind("__") + 2) == std::to_string(i)) want = &t;
      ASSERT_NE(want, nullptr) << "sample " << i;
      Tensor got = g.random_f32(want->shape());
      ASSERT_TRUE(got.bit_equal(*want)) << "sample " << i;
    }
  }
}

}  // namespace
}  // namespace tinyq
