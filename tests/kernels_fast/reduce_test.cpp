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
  int64_t (*const finite_minmax_avx512)(const float*, int64_t, float*, float*) =
      TINYQ_X86_KERNEL(finite_minmax_f32_avx512);
  const float inf = std::numeric_limits<float>::infinity();
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 3.0f);
  for (int64_t n : {0, 1, 15, 16, 17, 31, 32, 33, 47, 4095, 4096, 4097, 8192 + 45, 20000}) {
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = nd(rng);
    expect_same(run(finite_minmax_avx512, v, inf, -inf), run(finite_minmax_f32_ref, v, inf, -inf),
                "finite n=" + std::to_string(n));
    expect_same(run(finite_minmax_avx512, v, -1.0f, 1.0f), run(finite_minmax_f32_ref, v, -1.0f, 1.0f),
                "running n=" + std::to_string(n));
    if (n == 0) continue;
    // Non-finite values at the start, in the middle, in the last (possibly masked) lanes.
    for (int64_t at : {int64_t{0}, n / 2, n - 1}) {
      for (float bad : {std::nanf(""), inf, -inf}) {
        std::vector<float> w = v;
        w[static_cast<size_t>(at)] = bad;
        expect_same(run(finite_minmax_avx512, w, inf, -inf), run(finite_minmax_f32_ref, w, inf, -inf),
                    "n=" + std::to_string(n) + " bad at " + std::to_string(at));
      }
    }
  }
}

// The row-set version (an output block: channels x rows of a plane) against the reference, for
// row lengths around the vector width, with gaps between rows that hold values it must not read
// as part of the set, and with non-finite values in one row's masked tail.
TEST(FiniteMinMax, RowSetsMatchReference) {
  REQUIRE_ISA(Isa::Avx512);
  int64_t (*const rows_avx512)(const RowSet&, float*, float*) = TINYQ_X86_KERNEL(finite_minmax_rows_f32_avx512);
  const float inf = std::numeric_limits<float>::infinity();
  std::mt19937 rng(9);
  std::normal_distribution<float> nd(0.0f, 3.0f);
  for (int64_t len : {1, 7, 16, 17, 31, 32, 33, 50, 112}) {
    const int64_t outer = 3, rows = 4, stride = len + 5, outer_stride = rows * stride + 3;
    std::vector<float> buf(static_cast<size_t>(outer * outer_stride));
    for (float& x : buf) x = nd(rng);
    for (int64_t i = 0; i < outer; ++i)  // the gaps: extremes no row of the set holds
      for (int64_t j = 0; j < rows; ++j)
        for (int64_t k = len; k < stride && i * outer_stride + j * stride + k < outer * outer_stride; ++k)
          buf[static_cast<size_t>(i * outer_stride + j * stride + k)] = k % 2 ? 1e9f : std::nanf("");
    const RowSet set{buf.data(), outer, outer_stride, rows, stride, len};
    auto both = [&](const std::string& what) {
      Result a{inf, -inf, 0}, b{inf, -inf, 0};
      a.nonfinite = rows_avx512(set, &a.lo, &a.hi);
      b.nonfinite = finite_minmax_rows_f32_ref(set, &b.lo, &b.hi);
      expect_same(a, b, what + " len=" + std::to_string(len));
      return b;
    };
    const Result clean = both("finite");
    EXPECT_EQ(clean.nonfinite, 0);
    EXPECT_LT(clean.hi, 1e8f);
    buf[static_cast<size_t>(outer_stride + 2 * stride + len - 1)] = -inf;  // a row's last lane
    EXPECT_EQ(both("non-finite").nonfinite, 1);
  }
}

}  // namespace
}  // namespace tinyq::kernels
