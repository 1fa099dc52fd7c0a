// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// finite_minmax_f32 (the calibration observer): every ISA version against the scalar reference,
// over lengths around the vector width and the block size, with NaN and infinities placed
// anywhere, including the masked tail.

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "kernels/dispatch.h"
#include "kernels/reduce.h"
#include "require_isa.h"

namespace tinyq::kernels {
namespace {

struct Result {
  float lo, hi;
  int64_t nonfinite;
};

template <typename Fn>
Result run(Fn fn, const std::vector<float>& v, float lo0, float hi0) {
  Result r{lo0, hi0, 0};
  r.nonfinite = fn(v.data(), static_cast<int64_t>(v.size()), &r.lo, &r.hi);
  return r;
}

void expect_same(const Result& a, const Result& b, const std::string& what) {
  EXPECT_EQ(a.nonfinite, b.nonfinite) << what;
  EXPECT_EQ(a.lo, b.lo) << what;
  EXPECT_EQ(a.hi, b.hi) << what;
}

TEST(FiniteMinMax, ReferenceSkipsAndCountsNonFinite) {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> v{3.0f, std::nanf(""), -2.0f, inf, 7.5f, -inf};
  const Result r = run(finite_minmax_f32_ref, v, inf, -inf);
  EXPECT_EQ(r.nonfinite, 3);
  EXPECT_EQ(r.lo, -2.0f);
  EXPECT_EQ(r.hi, 7.5f);
  // The running range carries over from earlier calls.
  const Result r2 = run(finite_minmax_f32_ref, {1.0f}, -5.0f, 0.5f);
  EXPECT_EQ(r2.lo, -5.0f);
  EXPECT_EQ(r2.hi, 1.0f);
}

TEST(FiniteMinMax, Avx512MatchesReference) {
  REQUIRE_ISA(Isa::Avx512);
  const float inf = std::numeric_limits<float>::infinity();
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 3.0f);
  for (int64_t n : {0, 1, 15, 16, 17, 31, 32, 33, 47, 4095, 4096, 4097, 8192 + 45, 20000}) {
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = nd(rng);
    expect_same(run(finite_minmax_f32_avx512, v, inf, -inf), run(finite_minmax_f32_ref, v, inf, -inf),
                "finite n=" + std::to_string(n));
    expect_same(run(finite_minmax_f32_avx512, v, -1.0f, 1.0f), run(finite_minmax_f32_ref, v, -1.0f, 1.0f),
                "running n=" + std::to_string(n));
    if (n == 0) continue;
    // Non-finite values at the start, in the middle, in the last (possibly masked) lanes.
    for (int64_t at : {int64_t{0}, n / 2, n - 1}) {
      for (float bad : {std::nanf(""), inf, -inf}) {
        std::vector<float> w = v;
        w[static_cast<size_t>(at)] = bad;
        expect_same(run(finite_minmax_f32_avx512, w, inf, -inf), run(finite_minmax_f32_ref, w, inf, -inf),
                    "n=" + std::to_string(n) + " bad at " + std::to_string(at));
      }
    }
  }
}

}  // namespace
}  // namespace tinyq::kernels
