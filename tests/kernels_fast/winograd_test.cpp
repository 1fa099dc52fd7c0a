// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// The Winograd fp32 convolution (kernels/fast/conv_winograd.h), F(2x2) and F(4x4), on every ISA
// path against the scalar reference convolution: odd and tiny planes, batch > 1, padding of
// 0, 1 and 2 on any side, channel counts that are not multiples of the weight blocks, tile
// rows split into several blocks, bias / residual / clamp epilogues, 1 and 3 threads; runs with
// other strides going to the direct fallback; selection picking it for learned_filter's shape.
//
// Error bound. The exact result y = sum w x is computed in double. A direct fp32 sum of n
// products is within about n * eps * S of it, S = sum |w| |x| (eps = 2^-24): conv_f32_ref's
// own error scale. Winograd forms the same sum through the transforms; its rounding errors
// are those of sums of products whose magnitudes the transforms scale by at most
// |B^T|_1^2 |A^T|_1^2 (F(2x2): 2^2 * 3^2, F(4x4): 10^2 * 19^2 for the largest rows; in
// practice far less, as the errors are not all of one sign). The test holds every output to
//     |y_winograd - y| <= 4 * eps * (n * S + |bias| + |residual|)             (F(2x2))
//     |y_winograd - y| <= 32 * eps * (n * S + |bias| + |residual|)            (F(4x4))
// with n = 9 C (the direct kernel's worst case, n * eps * S) — measured worst ratios on these
// cases are well inside (about 0.03 and 0.4 of n * eps * S); a transform or indexing bug gives
// errors of the order of S itself, thousands of times the bound.

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <tuple>
#include <random>
#include <string>
#include <vector>

#include "kernels/conv_geometry.h"
#include "kernels/dispatch.h"
#include "kernels/fast/conv_winograd.h"
#include "kernels/fast/select.h"
#include "kernels/ref/conv_ref.h"
#include "require_isa.h"

namespace tinyq::kernels {
namespace {

struct WinoCase {
  int64_t n, c, m, h, w, pt, pl, pb, pr;
};

const WinoCase kCases[] = {
    // n  c   m   h    w   pt pl pb pr
    {1, 16, 16, 9, 37, 1, 1, 1, 1},   // learned_filter's body conv, odd width
    {1, 16, 16, 12, 48, 1, 1, 1, 1},  // whole vectors of tiles
    {2, 8, 12, 7, 5, 1, 1, 1, 1},     // batch 2, odd H and W, M not a multiple of 8
    {1, 9, 13, 1, 1, 1, 1, 1, 1},     // a single output position
    {1, 10, 9, 6, 6, 0, 0, 0, 0},     // no padding (out 4x4)
    {1, 11, 17, 5, 19, 2, 0, 1, 2},   // asymmetric padding up to 2
    {3, 12, 8, 11, 3, 1, 2, 2, 1},    // batch 3, narrow plane
    {1, 64, 64, 6, 100, 1, 1, 1, 1},  // a tile row split into several blocks
    {1, 16, 16, 3, 130, 1, 1, 1, 1},  // long row: several 3-vector GEMM chunks and a tail
};

ConvParams params_of(const WinoCase& k) {
  ConvParams p;
  p.batch = k.n;
  p.in_channels = k.c;
  p.out_channels = k.m;
  p.group = 1;
  p.spatial_rank = 2;
  const int64_t in[2] = {k.h, k.w}, pb[2] = {k.pt, k.pl}, pe[2] = {k.pb, k.pr};
  for (int a = 0; a < 2; ++a) {
    p.in_size[a] = in[a];
    p.kernel[a] = 3;
    p.pad_begin[a] = pb[a];
    p.out_size[a] = conv_output_size(in[a], 3, 1, 1, pb[a], pe[a]);
  }
  return p;
}

std::string describe(const WinoCase& k) {
  return "n" + std::to_string(k.n) + " c" + std::to_string(k.c) + " m" + std::to_string(k.m) + " " +
         std::to_string(k.h) + "x" + std::to_string(k.w) + " pads " + std::to_string(k.pt) + "," +
         std::to_string(k.pl) + "," + std::to_string(k.pb) + "," + std::to_string(k.pr);
}

// The exact convolution (double) and, per output, S = sum |w| |x| over the taps.
void exact_conv(const ConvParams& p, const std::vector<float>& x, const std::vector<float>& w, std::vector<double>* y,
                std::vector<double>* s) {
  const int64_t H = p.in_size[0], W = p.in_size[1], OH = p.out_size[0], OW = p.out_size[1];
  const int64_t C = p.in_channels, M = p.out_channels;
  y->assign(static_cast<size_t>(p.batch * M * OH * OW), 0.0);
  s->assign(y->size(), 0.0);
  for (int64_t n = 0; n < p.batch; ++n)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          double acc = 0.0, mag = 0.0;
          for (int64_t c = 0; c < C; ++c)
            for (int64_t kh = 0; kh < 3; ++kh)
              for (int64_t kw = 0; kw < 3; ++kw) {
                const int64_t ih = oh + kh - p.pad_begin[0], iw = ow + kw - p.pad_begin[1];
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                const double a = x[static_cast<size_t>(((n * C + c) * H + ih) * W + iw)];
                const double b = w[static_cast<size_t>(((m * C + c) * 3 + kh) * 3 + kw)];
                acc += a * b;
                mag += std::fabs(a * b);
              }
          const size_t i = static_cast<size_t>(((n * M + m) * OH + oh) * OW + ow);
          (*y)[i] = acc;
          (*s)[i] = mag;
        }
}

struct Param {
  Isa isa;
  int tile;
};

class Winograd : public ::testing::TestWithParam<Param> {};

int64_t out_numel(const ConvParams& p) { return p.batch * p.out_channels * p.out_size[0] * p.out_size[1]; }

// A case's input, weights, bias and residual, uniform in [-1, 1].
struct CaseData {
  std::vector<float> x, w, b, res;
  CaseData(const ConvParams& p, std::mt19937& rng)
      : x(static_cast<size_t>(p.batch * p.in_channels * p.in_size[0] * p.in_size[1])),
        w(static_cast<size_t>(p.out_channels * p.in_channels * 9)),
        b(static_cast<size_t>(p.out_channels)),
        res(static_cast<size_t>(out_numel(p))) {
    std::uniform_real_distribution<float> d(-1.0f, 1.0f);
    for (auto* v : {&x, &w, &b, &res})
      for (float& f : *v) f = d(rng);
  }
};

TEST_P(Winograd, MatchesReferenceWithEpilogues) {
  const Param prm = GetParam();
  REQUIRE_ISA(prm.isa);
  const double eps = std::ldexp(1.0, -24);
  const double factor = prm.tile == 2 ? 4.0 : 32.0;  // 0: either tile, per case
  std::mt19937 rng(11);
  double worst_ratio = 0.0;  // of the error to n * eps * S, reported
  for (const WinoCase& k : kCases) {
    SCOPED_TRACE(describe(k));
    const ConvParams p = params_of(k);
    CaseData data(p, rng);
    std::vector<float>& x = data.x;
    const std::vector<float>&w = data.w, &b = data.b, &res = data.res;
    std::vector<double> exact, mag;
    exact_conv(p, x, w, &exact, &mag);
    std::vector<float> ref(exact.size());
    conv_f32_ref(p, x.data(), w.data(), nullptr, ref.data());
    ConvF32Winograd wino(prm.isa, p, w.data(), prm.tile);
    if (prm.tile != 0) {
      ASSERT_EQ(wino.tile_for(p), prm.tile);
    }
    const double n_taps = 9.0 * static_cast<double>(p.in_channels);
    const int64_t plane = p.out_size[0] * p.out_size[1];
    // Epilogue variants: none; bias + residual + clamp (the fused conv + Add + Relu).
    for (int variant = 0; variant < 2; ++variant) {
      ConvF32Epilogue ep;
      if (variant == 1) {
        ep.bias = b.data();
        ep.residual = res.data();
        ep.clamp = true;
        ep.lo = -0.5f;
        ep.hi = 0.75f;
      }
      for (int threads : {1, 3}) {
        std::vector<float> got(exact.size(), NAN);
        wino.run(p, x.data(), ep, got.data(), threads);
        int reported = 0;
        for (size_t i = 0; i < got.size(); ++i) {
          const int64_t ch = static_cast<int64_t>(i) / plane % p.out_channels;
          double want = exact[i], ref_want = ref[i], extra = 0.0;
          if (variant == 1) {
            want += b[static_cast<size_t>(ch)] + res[i];
            ref_want = static_cast<float>(static_cast<float>(ref[i] + b[static_cast<size_t>(ch)]) + res[i]);
            extra = std::fabs(b[static_cast<size_t>(ch)]) + std::fabs(res[i]);
            want = std::min(std::max(want, -0.5), 0.75);
            ref_want = std::min(std::max(ref_want, -0.5), 0.75);
          }
          const double err = std::fabs(got[i] - want);
          const double bound = factor * eps * (n_taps * mag[i] + extra);
          if (mag[i] > 0) worst_ratio = std::max(worst_ratio, err / (n_taps * eps * mag[i] + eps * extra));
          // The reference kernel stands within the same bound of the exact value, so the two
          // agree within twice of it.
          if (!(err <= bound && std::fabs(got[i] - ref_want) <= 2 * bound) && reported++ < 5)
            ADD_FAILURE() << wino.name() << " threads " << threads << " variant " << variant << " output " << i
                          << ": got " << got[i] << ", exact " << want << ", conv_f32_ref " << ref_want
                          << ", bound " << bound;
        }
      }
    }
  }
  std::cout << "[ info ] " << isa_name(prm.isa) << " "
            << (prm.tile ? "F(" + std::to_string(prm.tile) + "x" + std::to_string(prm.tile) + ", 3x3)" : "auto tile")
            << ": worst error / (9 C eps sum|w||x|) = " << worst_ratio << "\n";
}

// Geometries Winograd does not take go to the direct kernel inside the same object.
TEST_P(Winograd, OtherStridesUseTheDirectKernel) {
  const Param prm = GetParam();
  REQUIRE_ISA(prm.isa);
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  ConvParams p = params_of({2, 8, 8, 11, 13, 1, 1, 1, 1});
  std::vector<float> w(static_cast<size_t>(8 * 8 * 9));
  for (float& f : w) f = d(rng);
  ConvF32Winograd wino(prm.isa, p, w.data(), prm.tile);
  for (int variant = 0; variant < 2; ++variant) {
    ConvParams q = p;
    if (variant == 0) {
      q.stride[0] = q.stride[1] = 2;
    } else {
      q.dilation[0] = q.dilation[1] = 2;
    }
    for (int a = 0; a < 2; ++a)
      q.out_size[a] = conv_output_size(q.in_size[a], 3, q.stride[a], q.dilation[a], 1, 1);
    std::vector<float> x(static_cast<size_t>(q.batch * 8 * q.in_size[0] * q.in_size[1]));
    for (float& f : x) f = d(rng);
    std::vector<float> want(static_cast<size_t>(out_numel(q))), got(want.size(), NAN);
    conv_f32_ref(q, x.data(), w.data(), nullptr, want.data());
    wino.run(q, x.data(), ConvF32Epilogue(), got.data(), 2);
    double worst = 0.0;
    for (size_t i = 0; i < want.size(); ++i) worst = std::max(worst, static_cast<double>(std::fabs(got[i] - want[i])));
    EXPECT_LE(worst, 1e-5) << (variant == 0 ? "stride 2" : "dilation 2");
  }
}

// Calibration's measurements (ConvF32Epilogue::range, pre, pre_range), taken by the output
// kernels as they store: the ranges equal a pass over what was stored, NaN and infinities
// counted (a few in the input spread through their tiles, which takes the exact re-measure);
// `pre` holds conv + bias bit for bit as a run without the residual stores it.
TEST_P(Winograd, MeasuresWhatItStores) {
  const Param prm = GetParam();
  REQUIRE_ISA(prm.isa);
  std::mt19937 rng(17);
  for (const WinoCase& k : kCases) {
    SCOPED_TRACE(describe(k));
    const ConvParams p = params_of(k);
    CaseData data(p, rng);
    std::vector<float>& x = data.x;
    const std::vector<float>&w = data.w, &b = data.b, &res = data.res;
    ConvF32Winograd wino(prm.isa, p, w.data(), prm.tile);
    for (int nonfinite = 0; nonfinite < 2; ++nonfinite) {
      if (nonfinite) {
        x[x.size() / 3] = std::numeric_limits<float>::quiet_NaN();
        x[x.size() / 2] = std::numeric_limits<float>::infinity();
      }
      for (int threads : {1, 3}) {
        ConvF32Epilogue plain;
        plain.bias = b.data();
        std::vector<float> conv(res.size());
        wino.run(p, x.data(), plain, conv.data(), threads);

        FiniteRange range, pre_range;
        std::vector<float> got(res.size(), NAN), pre(res.size(), NAN);
        ConvF32Epilogue ep = plain;
        ep.residual = res.data();
        ep.clamp = true;
        ep.lo = -0.5f;
        ep.hi = 0.75f;
        ep.range = &range;
        ep.pre = pre.data();
        ep.pre_range = &pre_range;
        wino.run(p, x.data(), ep, got.data(), threads);
        EXPECT_EQ(0, std::memcmp(pre.data(), conv.data(), conv.size() * sizeof(float))) << "threads " << threads;

        FiniteRange want, pre_want;
        want.fold(got.data(), static_cast<int64_t>(got.size()));
        pre_want.fold(conv.data(), static_cast<int64_t>(conv.size()));
        for (const auto& [m, e, what] : {std::tie(range, want, "dst"), std::tie(pre_range, pre_want, "pre")}) {
          EXPECT_EQ(m.lo, e.lo) << what << " threads " << threads;
          EXPECT_EQ(m.hi, e.hi) << what << " threads " << threads;
          EXPECT_EQ(m.count, e.count) << what << " threads " << threads;
          EXPECT_EQ(m.nonfinite, e.nonfinite) << what << " threads " << threads;
        }
        if (nonfinite) {
          EXPECT_GT(pre_range.nonfinite, 0);
        }

        // Without a residual, range alone (a Conv + Relu's output).
        FiniteRange relu_range;
        ConvF32Epilogue relu = plain;
        relu.clamp = true;
        relu.lo = 0.0f;
        relu.hi = std::numeric_limits<float>::infinity();
        relu.range = &relu_range;
        wino.run(p, x.data(), relu, got.data(), threads);
        FiniteRange relu_want;
        relu_want.fold(got.data(), static_cast<int64_t>(got.size()));
        EXPECT_EQ(relu_range.lo, relu_want.lo);
        EXPECT_EQ(relu_range.hi, relu_want.hi);
        EXPECT_EQ(relu_range.count, relu_want.count);
        EXPECT_EQ(relu_range.nonfinite, relu_want.nonfinite);
      }
    }
  }
}

// run_rows: bands of whole tile rows give run()'s output bit for bit, into a ring of rows
// (row r at r % ring) and read back from one (ConvStack's layers, runtime/passes/op_conv_stack.cpp).
TEST_P(Winograd, BandsAndRingsGiveRunsOutput) {
  const Param prm = GetParam();
  REQUIRE_ISA(prm.isa);
  std::mt19937 rng(23);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  const ConvParams p = params_of({2, 16, 16, 29, 21, 1, 1, 1, 1});
  std::vector<float> x(static_cast<size_t>(2 * 16 * 29 * 21)), w(16 * 16 * 9), b(16);
  for (auto* v : {&x, &w, &b})
    for (float& f : *v) f = d(rng);
  ConvF32Winograd wino(prm.isa, p, w.data(), prm.tile);
  const int64_t step = wino.row_step(p), H = 29, W = 21, ring = 4 * step, plane = H * W;
  ASSERT_TRUE(wino.takes_rings(p));
  ConvF32Epilogue ep;
  ep.bias = b.data();
  std::vector<float> want(x.size()), got(x.size(), NAN), rung(static_cast<size_t>(2 * 16 * ring * W), NAN);
  wino.run(p, x.data(), ep, want.data(), 1);
  // Bands of `step` rows into a ring, each checked against run()'s rows before the next
  // overwrites its slots; and the same bands into the whole tensor.
  for (int64_t r0 = 0; r0 < H; r0 += step) {
    const int64_t r1 = std::min(H, r0 + step);
    wino.run_rows(p, x.data(), ep, rung.data(), 2, r0, r1, RowRings{0, ring});
    wino.run_rows(p, x.data(), ep, got.data(), 1, r0, r1);
    for (int64_t n = 0; n < 2; ++n)
      for (int64_t c = 0; c < 16; ++c)
        for (int64_t r = r0; r < r1; ++r)
          ASSERT_EQ(0, std::memcmp(&rung[static_cast<size_t>(((n * 16 + c) * ring + r % ring) * W)],
                                   &want[static_cast<size_t>((n * 16 + c) * plane + r * W)], W * sizeof(float)))
              << "ring row " << r;
  }
  EXPECT_EQ(0, std::memcmp(got.data(), want.data(), want.size() * sizeof(float)));
  // Reading from a ring: before each band its input rows (one above and below) are copied in.
  const int64_t in_ring = step + 4;
  std::vector<float> xr(static_cast<size_t>(2 * 16 * in_ring * W), NAN);
  std::fill(got.begin(), got.end(), NAN);
  for (int64_t r0 = 0; r0 < H; r0 += step) {
    const int64_t r1 = std::min(H, r0 + step);
    for (int64_t n = 0; n < 2; ++n)
      for (int64_t c = 0; c < 16; ++c)
        for (int64_t r = std::max<int64_t>(0, r0 - 1); r < std::min(H, r1 + 1); ++r)
          std::memcpy(&xr[static_cast<size_t>(((n * 16 + c) * in_ring + r % in_ring) * W)],
                      &x[static_cast<size_t>((n * 16 + c) * plane + r * W)], W * sizeof(float));
    wino.run_rows(p, xr.data(), ep, got.data(), 1, r0, r1, RowRings{in_ring, 0});
  }
  EXPECT_EQ(0, std::memcmp(got.data(), want.data(), want.size() * sizeof(float)));
}

INSTANTIATE_TEST_SUITE_P(IsasAndTiles, Winograd,
                         ::testing::Values(Param{Isa::Ref, 2}, Param{Isa::Ref, 4}, Param{Isa::Avx2, 2},
                                           Param{Isa::Avx2, 4}, Param{Isa::Avx512, 2}, Param{Isa::Avx512, 4},
                                           Param{Isa::Avx512, 0}),
                         [](const ::testing::TestParamInfo<Param>& i) {
                           return std::string(isa_name(i.param.isa)) + "_" +
                                  (i.param.tile ? "F" + std::to_string(i.param.tile) : std::string("auto"));
                         });

// With both tile sizes kept, a run takes the one that fills the vector lanes better: F(4x4) on
// learned_filter's 224-wide planes, F(2x2) on a 12-wide one (3 tiles of 4 in a 16-lane vector).
TEST(WinogradTiles, ChoosesByLaneUse) {
  std::vector<float> w(16 * 16 * 9, 0.25f);
  ConvParams p = params_of({1, 16, 16, 224, 224, 1, 1, 1, 1});
  ConvF32Winograd wino(Isa::Ref, p, w.data());
  EXPECT_EQ(wino.tile_for(p), 4);
  p = params_of({1, 16, 16, 12, 12, 1, 1, 1, 1});
  EXPECT_EQ(wino.tile_for(p), 2);
  p.stride[0] = 2;
  EXPECT_EQ(wino.tile_for(p), 0);  // the direct kernel
}

// Selection: learned_filter's 16 -> 16 3x3 convolution goes to Winograd on SIMD CPUs (unless
// TINYQ_WINOGRAD=0); the C = 1 entry convolution, grouped and 5x5 ones do not.
TEST(WinogradSelection, TakesLearnedFilterBodyOnly) {
  auto name_of = [](const std::vector<int64_t>& w_shape, int64_t group) {
    const ConvParams wg = weight_geometry(w_shape, group);
    std::vector<float> w(static_cast<size_t>(w_shape[0] * w_shape[1] * w_shape[2] * w_shape[3]), 0.5f);
    auto k = select_conv_f32(wg, w.data(), true, true);
    return k ? k->name() : std::string("none");
  };
  const std::string body = name_of({16, 16, 3, 3}, 1);
  if (isa_usable(Isa::Avx2) && winograd_enabled())
    EXPECT_NE(body.find("winograd"), std::string::npos) << body;
  else
    EXPECT_EQ(body.find("winograd"), std::string::npos) << body;
  EXPECT_EQ(name_of({16, 1, 3, 3}, 1).find("winograd"), std::string::npos);
  EXPECT_EQ(name_of({16, 4, 3, 3}, 4).find("winograd"), std::string::npos);
  EXPECT_EQ(name_of({16, 16, 5, 5}, 1).find("winograd"), std::string::npos);
  EXPECT_FALSE(ConvF32Winograd::declines(weight_geometry({16, 16, 3, 3}, 1)).empty() && !winograd_enabled());
}

}  // namespace
}  // namespace tinyq::kernels
