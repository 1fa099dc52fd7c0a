// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// numpy.random.default_rng(seed) reproduced bit-exactly, so the gate feeds the same synthetic
// inputs as the seed's Python script: SeedSequence(seed) -> PCG64 (XSL-RR 128/64) ->
// Generator.random(shape, dtype=float32).

#include <array>
#include <cstdint>
#include <vector>

#include "tinyq/tensor.h"

namespace tinyq {

/// numpy.random.SeedSequence(entropy).generate_state(n_words, np.uint32) for a non-negative
/// integer entropy and no spawn key (pool size 4).
std::vector<uint32_t> numpy_seed_sequence_state32(uint64_t entropy, size_t n_words);
/// The same, as generate_state(n_words, np.uint64): pairs of 32-bit words, low word first.
std::vector<uint64_t> numpy_seed_sequence_state64(uint64_t entropy, size_t n_words);

/// numpy.random.default_rng(seed): PCG64 seeded through SeedSequence, with numpy's buffering
/// of the spare 32-bit half for float32 draws.
class NumpyGenerator {
 public:
  explicit NumpyGenerator(uint64_t seed);

  /// PCG64's 128-bit state and increment as (high, low) 64-bit halves, as numpy's
  /// bit_generator.state reports them (as Python ints).
  std::array<uint64_t, 2> state() const;
  std::array<uint64_t, 2> increment() const;

  /// bit_generator.random_raw(): one 64-bit output.
  uint64_t next_uint64();
  /// numpy's next_uint32: the low half of a 64-bit draw, the high half kept for the next call.
  uint32_t next_uint32();
  /// Generator.random(dtype=float32) for one value: the top 24 bits of next_uint32() * 2^-24.
  float next_float();
  /// Generator.random() (float64) for one value: the top 53 bits of next_uint64() * 2^-53.
  double next_double();

  /// Generator.random(shape, dtype=float32): C-ordered, numel draws of next_float().
  Tensor random_f32(const Shape& shape);

 private:
  uint64_t state_hi_ = 0, state_lo_ = 0;
  uint64_t inc_hi_ = 0, inc_lo_ = 0;
  bool has_uint32_ = false;
  uint32_t uinteger_ = 0;
};

}  // namespace tinyq
