// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include "gate/numpy_rng.h"

namespace tinyq {
namespace {

// SeedSequence's constants (numpy/random/bit_generator.pyx, after Melissa O'Neill's seed_seq).
// All arithmetic is on uint32 and wraps.
constexpr uint32_t kInitA = 0x43b0d7e5u;
constexpr uint32_t kMultA = 0x931e8875u;
constexpr uint32_t kInitB = 0x8b51f9ddu;
constexpr uint32_t kMultB = 0x58f38dedu;
constexpr uint32_t kMixMultL = 0xca01f9ddu;
constexpr uint32_t kMixMultR = 0x4973f715u;
constexpr unsigned kXShift = 16;  // half the bits of a uint32 word
constexpr size_t kPoolSize = 4;

uint32_t hashmix(uint32_t value, uint32_t& hash_const) {
  value ^= hash_const;
  hash_const *= kMultA;
  value *= hash_const;
  value ^= value >> kXShift;
  return value;
}

uint32_t mix(uint32_t x, uint32_t y) {
  uint32_t r = kMixMultL * x - kMixMultR * y;
  return r ^ (r >> kXShift);
}

// The entropy pool after mixing a non-negative integer seed, split into 32-bit words from the
// least significant end (numpy's _int_to_uint32_array; 0 is the single word [0]).
std::array<uint32_t, kPoolSize> seed_pool(uint64_t entropy) {
  std::vector<uint32_t> words{static_cast<uint32_t>(entropy)};
  if (entropy >> 32) words.push_back(static_cast<uint32_t>(entropy >> 32));
  std::array<uint32_t, kPoolSize> pool{};
  uint32_t hash_const = kInitA;
  for (size_t i = 0; i < kPoolSize; ++i) pool[i] = hashmix(i < words.size() ? words[i] : 0u, hash_const);
  for (size_t src = 0; src < kPoolSize; ++src)
    for (size_t dst = 0; dst < kPoolSize; ++dst)
      if (src != dst) pool[dst] = mix(pool[dst], hashmix(pool[src], hash_const));
  // Words beyond the pool are folded in afterwards; a 64-bit seed never has more than two.
  for (size_t src = kPoolSize; src < words.size(); ++src)
    for (size_t dst = 0; dst < kPoolSize; ++dst) pool[dst] = mix(pool[dst], hashmix(words[src], hash_const));
  return pool;
}

// 128-bit arithmetic on (high, low) halves, portable (no __int128): PCG64's LCG step is
// state = state * multiplier + increment (mod 2^128).
struct U128 {
  uint64_t hi, lo;
};

// Full 64x64 -> 128 product from 32-bit partial products.
U128 mul_64x64(uint64_t a, uint64_t b) {
  uint64_t a_lo = a & 0xffffffffu, a_hi = a >> 32, b_lo = b & 0xffffffffu, b_hi = b >> 32;
  uint64_t ll = a_lo * b_lo, lh = a_lo * b_hi, hl = a_hi * b_lo, hh = a_hi * b_hi;
  uint64_t mid = (ll >> 32) + (lh & 0xffffffffu) + (hl & 0xffffffffu);
  return {hh + (lh >> 32) + (hl >> 32) + (mid >> 32), (mid << 32) | (ll & 0xffffffffu)};
}

U128 mul_128(U128 a, U128 b) {
  U128 r = mul_64x64(a.lo, b.lo);
  r.hi += a.lo * b.hi + a.hi * b.lo;  // the a.hi * b.hi term lies entirely above bit 127
  return r;
}

U128 add_128(U128 a, U128 b) {
  U128 r{a.hi + b.hi, a.lo + b.lo};
  if (r.lo < a.lo) ++r.hi;
  return r;
}

// PCG's default 128-bit LCG multiplier.
constexpr U128 kPcgMultiplier{2549297995355413924ull, 4865540595714422341ull};

}  // namespace

std::vector<uint32_t> numpy_seed_sequence_state32(uint64_t entropy, size_t n_words) {
  std::array<uint32_t, kPoolSize> pool = seed_pool(entropy);
  std::vector<uint32_t> state(n_words);
  uint32_t hash_const = kInitB;
  for (size_t i = 0; i < n_words; ++i) {
    uint32_t v = pool[i % kPoolSize];
    v ^= hash_const;
    hash_const *= kMultB;
    v *= hash_const;
    v ^= v >> kXShift;
    state[i] = v;
  }
  return state;
}

std::vector<uint64_t> numpy_seed_sequence_state64(uint64_t entropy, size_t n_words) {
  std::vector<uint32_t> w = numpy_seed_sequence_state32(entropy, 2 * n_words);
  std::vector<uint64_t> out(n_words);
  // numpy views the uint32 array as uint64 on a little-endian host: low word first.
  for (size_t i = 0; i < n_words; ++i) out[i] = (static_cast<uint64_t>(w[2 * i + 1]) << 32) | w[2 * i];
  return out;
}

NumpyGenerator::NumpyGenerator(uint64_t seed) {
  // PCG64.__init__: generate_state(4, uint64) -> initstate = (v0 << 64) | v1,
  // initseq = (v2 << 64) | v3; then PCG's srandom: inc = initseq << 1 | 1, state = 0, step,
  // state += initstate, step.
  std::vector<uint64_t> v = numpy_seed_sequence_state64(seed, 4);
  inc_hi_ = (v[2] << 1) | (v[3] >> 63);
  inc_lo_ = (v[3] << 1) | 1u;
  state_hi_ = state_lo_ = 0;
  auto step = [this] {
    U128 s = add_128(mul_128({state_hi_, state_lo_}, kPcgMultiplier), {inc_hi_, inc_lo_});
    state_hi_ = s.hi;
    state_lo_ = s.lo;
  };
  step();
  U128 s = add_128({state_hi_, state_lo_}, {v[0], v[1]});
  state_hi_ = s.hi;
  state_lo_ = s.lo;
  step();
}

std::array<uint64_t, 2> NumpyGenerator::state() const { return {state_hi_, state_lo_}; }
std::array<uint64_t, 2> NumpyGenerator::increment() const { return {inc_hi_, inc_lo_}; }

uint64_t NumpyGenerator::next_uint64() {
  // Step first, then output from the new state: XSL-RR xors the halves and rotates right by
  // the state's top six bits.
  U128 s = add_128(mul_128({state_hi_, state_lo_}, kPcgMultiplier), {inc_hi_, inc_lo_});
  state_hi_ = s.hi;
  state_lo_ = s.lo;
  uint64_t x = state_hi_ ^ state_lo_;
  unsigned rot = static_cast<unsigned>(state_hi_ >> 58);
  return (x >> rot) | (x << ((64u - rot) & 63u));
}

uint32_t NumpyGenerator::next_uint32() {
  if (has_uint32_) {
    has_uint32_ = false;
    return uinteger_;
  }
  uint64_t v = next_uint64();
  has_uint32_ = true;
  uinteger_ = static_cast<uint32_t>(v >> 32);
  return static_cast<uint32_t>(v);
}

float NumpyGenerator::next_float() {
  // 24 random bits fill a float's mantissa exactly: the result is k / 2^24, k in [0, 2^24).
  return static_cast<float>(next_uint32() >> 8) * (1.0f / 16777216.0f);
}

double NumpyGenerator::next_double() {
  return static_cast<double>(next_uint64() >> 11) * (1.0 / 9007199254740992.0);
}

Tensor NumpyGenerator::random_f32(const Shape& shape) {
  Tensor t(DType::F32, shape);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = next_float();
  return t;
}

}  // namespace tinyq
