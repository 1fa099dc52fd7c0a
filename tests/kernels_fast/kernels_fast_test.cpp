// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// Every ISA path of the fast kernels against the scalar reference kernels (kernels/ref), on
// edge shapes: sizes that are not multiples of any vector width, K = 1, single positions,
// depthwise and grouped convolutions, strides, dilations, asymmetric padding, 1-D; and integer
// values at the ends of their ranges (0 / 255 activations with -128 / 127 weights: the pair
// sums that saturate vpmaddubsw). Integer paths must match exactly; fp32 paths within
// rounding. An ISA this CPU lacks is skipped with a message.

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "common/qmath.h"
#include "kernels/conv_geometry.h"
#include "kernels/dispatch.h"
#include "kernels/fast/conv_fast.h"
#include "kernels/fast/micro_kernels.h"
#include "kernels/onednn/onednn_conv.h"
#include "kernels/ref/conv_ref.h"
#include "kernels/ref/gemm_ref.h"
#include "kernels/ref/qconv_ref.h"
#include "kernels/ref/qgemm_ref.h"
#include "kernels/ref/qlinear_ref.h"
#include "require_isa.h"

namespace tinyq::kernels {
namespace {

// One convolution case: N, C, H, W, M, kernel h/w, stride h/w, dilation h/w, pads
// (top, left, bottom, right), group; H = 0 marks a 1-D convolution over W.
struct ConvCase {
  int64_t n, c, h, w, m, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, group;
};

const ConvCase kConvCases[] = {
    // n  c   h   w   m  kh kw sh sw dh dw pt pl pb pr g
    {1, 16, 9, 37, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},    // learned_filter's body conv, odd width
    {1, 1, 7, 19, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},     // C = 1 entry conv
    {1, 16, 5, 23, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},     // M = 1 exit conv
    {2, 1, 11, 13, 16, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1},    // stride 2, batch 2
    {1, 16, 12, 12, 16, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 16},  // depthwise stride 2
    {1, 32, 6, 7, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 32},    // depthwise stride 1
    {1, 16, 6, 9, 32, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1},     // pointwise (direct layout)
    {1, 64, 3, 3, 128, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1},    // pointwise, 9 positions
    {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1},       // K = 1, one position
    {1, 3, 1, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1},       // one position, K = 3
    {1, 6, 10, 17, 9, 3, 2, 3, 2, 2, 3, 2, 1, 0, 3, 3},     // groups, stride 3x2, dilation, asymmetric pads
    {1, 5, 8, 8, 7, 5, 5, 1, 1, 1, 1, 4, 4, 4, 4, 1},       // padding as wide as the kernel
    {1, 8, 0, 40, 12, 0, 5, 0, 2, 0, 2, 0, 3, 0, 1, 2},     // 1-D: kernel 5, stride 2, dilation 2
    {3, 4, 4, 33, 20, 2, 2, 2, 2, 1, 1, 0, 0, 1, 1, 1},     // even kernel, end padding only
    // The AVX2 tile's shapes: rows longer than its 96-position chunk with a tail that is not a
    // whole 6-position tile, 16-channel blocks plus an 8-channel half block (M = 24, 40), and
    // position steps 32 and 8 (its constant-displacement loops) next to 16 above.
    {1, 32, 4, 130, 24, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},
    {1, 8, 3, 101, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},
    {1, 16, 3, 203, 40, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1},   // pointwise: one flat run of 609
    // Tall stride-1 padded planes, built band by band (ConvF32Fast::run_banded): several bands
    // per image, batch 2, split over threads; with dilation 2 the bands' halo is 4 rows.
    {2, 16, 120, 90, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},
    {1, 8, 200, 64, 4, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 1},
};

ConvParams params_of(const ConvCase& k) {
  ConvParams p;
  p.batch = k.n;
  p.in_channels = k.c;
  p.out_channels = k.m;
  p.group = k.group;
  const bool one_d = k.h == 0;
  p.spatial_rank = one_d ? 1 : 2;
  const int64_t in[2] = {k.h, k.w}, ker[2] = {k.kh, k.kw}, st[2] = {k.sh, k.sw}, di[2] = {k.dh, k.dw};
  const int64_t pb[2] = {k.pt, k.pl}, pe[2] = {k.pb, k.pr};
  for (int a = one_d ? 1 : 0, i = 0; a < 2; ++a, ++i) {
    p.in_size[i] = in[a];
    p.kernel[i] = ker[a];
    p.stride[i] = st[a];
    p.dilation[i] = di[a];
    p.pad_begin[i] = pb[a];
    p.out_size[i] = conv_output_size(in[a], ker[a], st[a], di[a], pb[a], pe[a]);
  }
  return p;
}

int64_t in_numel(const ConvParams& p) {
  int64_t v = p.batch * p.in_channels;
  for (int a = 0; a < p.spatial_rank; ++a) v *= p.in_size[a];
  return v;
}
int64_t out_numel(const ConvParams& p) {
  int64_t v = p.batch * p.out_channels;
  for (int a = 0; a < p.spatial_rank; ++a) v *= p.out_size[a];
  return v;
}
int64_t w_numel(const ConvParams& p) {
  int64_t v = p.out_channels * (p.in_channels / p.group);
  for (int a = 0; a < p.spatial_rank; ++a) v *= p.kernel[a];
  return v;
}

std::string describe(const ConvCase& k) {
  return "conv n" + std::to_string(k.n) + " c" + std::to_string(k.c) + " " + std::to_string(k.h) + "x" +
         std::to_string(k.w) + " m" + std::to_string(k.m) + " k" + std::to_string(k.kh) + "x" + std::to_string(k.kw) +
         " s" + std::to_string(k.sh) + "x" + std::to_string(k.sw) + " g" + std::to_string(k.group);
}

class FastKernels : public ::testing::TestWithParam<Isa> {};

// --- fp32 -------------------------------------------------------------------------------------

TEST_P(FastKernels, ConvF32MatchesReference) {
  const Isa isa = GetParam();
  REQUIRE_ISA(isa);
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  for (const ConvCase& k : kConvCases) {
    SCOPED_TRACE(describe(k));
    const ConvParams p = params_of(k);
    std::vector<float> x(static_cast<size_t>(in_numel(p))), w(static_cast<size_t>(w_numel(p))),
        b(static_cast<size_t>(p.out_channels)), res(static_cast<size_t>(out_numel(p)));
    for (auto* v : {&x, &w, &b, &res})
      for (float& f : *v) f = d(rng);
    std::vector<float> want(static_cast<size_t>(out_numel(p))), got(want.size(), NAN);
    conv_f32_ref(p, x.data(), w.data(), b.data(), want.data());
    // With a residual and a clamp: y = clamp(conv + b + res, -0.5, 0.75).
    for (size_t i = 0; i < want.size(); ++i) want[i] = std::min(std::max(want[i] + res[i], -0.5f), 0.75f);
    ConvF32Fast fast(isa, p, w.data());
    ConvF32Epilogue ep;
    ep.bias = b.data();
    ep.residual = res.data();
    ep.clamp = true;
    ep.lo = -0.5f;
    ep.hi = 0.75f;
    for (int threads : {1, 3}) {
      std::fill(got.begin(), got.end(), NAN);
      fast.run(p, x.data(), ep, got.data(), threads);
      double worst = 0;
      for (size_t i = 0; i < want.size(); ++i) worst = std::max(worst, static_cast<double>(std::fabs(want[i] - got[i])));
      EXPECT_LE(worst, 1e-5) << fast.name() << " threads " << threads;
      // The range the run measures (calibration's observer) is that of what it wrote.
      FiniteRange measured, passed;
      ConvF32Epilogue watched = ep;
      watched.range = &measured;
      fast.run(p, x.data(), watched, got.data(), threads);
      passed.fold(got.data(), static_cast<int64_t>(got.size()));
      EXPECT_EQ(measured.lo, passed.lo) << fast.name() << " threads " << threads;
      EXPECT_EQ(measured.hi, passed.hi) << fast.name() << " threads " << threads;
      EXPECT_EQ(measured.count, passed.count) << fast.name() << " threads " << threads;
    }
  }
}

TEST_P(FastKernels, GemmF32MatchesReference) {
  const Isa isa = GetParam();
  REQUIRE_ISA(isa);
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  for (int64_t rows : {1, 2, 9, 33}) {
    for (int64_t k : {1, 6, 17}) {
      for (int64_t n : {1, 15, 16, 33}) {
        for (bool trans : {false, true}) {
          SCOPED_TRACE("gemm " + std::to_string(rows) + "x" + std::to_string(k) + "x" + std::to_string(n));
          std::vector<float> a(static_cast<size_t>(rows * k)), b(static_cast<size_t>(k * n)), bias(static_cast<size_t>(n));
          for (auto* v : {&a, &b, &bias})
            for (float& f : *v) f = d(rng);
          GemmParams g;
          g.M = rows;
          g.N = n;
          g.K = k;
          g.a_row = k;
          g.a_col = 1;
          g.b_row = trans ? 1 : n;
          g.b_col = trans ? k : 1;
          g.c_row = 0;
          g.c_col = 1;
          g.ldd = n;
          g.beta = 1.0f;
          std::vector<float> want(static_cast<size_t>(rows * n)), got(want.size(), NAN);
          gemm_f32_ref(g, a.data(), b.data(), bias.data(), want.data());
          for (float& v : want) v = std::max(v, 0.0f);
          GemmF32Fast fast(isa, k, n, b.data(), trans);
          fast.run(rows, a.data(), k, bias.data(), true, 0.0f, std::numeric_limits<float>::infinity(), got.data(), n, 2);
          for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(want[i], got[i], 1e-5) << fast.name() << " at " << i;
        }
      }
    }
  }
}

// --- integer ----------------------------------------------------------------------------------

// Integer test data: random, or pinned to the range ends (the saturation trap).
enum class Fill { Random, Ends, Max };

template <typename T>
std::vector<T> int_data(std::mt19937& rng, int64_t n, Fill fill) {
  std::vector<T> v(static_cast<size_t>(n));
  const int lo = std::numeric_limits<T>::min(), hi = std::numeric_limits<T>::max();
  std::uniform_int_distribution<int> d(lo, hi), coin(0, 1);
  for (T& x : v) {
    switch (fill) {
      case Fill::Random: x = static_cast<T>(d(rng)); break;
      case Fill::Ends: x = static_cast<T>(coin(rng) ? hi : lo); break;
      case Fill::Max: x = static_cast<T>(hi); break;
    }
  }
  return v;
}

TEST_P(FastKernels, QConvMatchesReferenceExactly) {
  const Isa isa = GetParam();
  REQUIRE_ISA(isa);
  std::mt19937 rng(3);
  for (const ConvCase& k : kConvCases) {
    for (Fill fill : {Fill::Random, Fill::Ends, Fill::Max}) {
      for (bool s8_input : {false, true}) {
        SCOPED_TRACE(describe(k) + (s8_input ? " s8 x" : " u8 x") + " fill " + std::to_string(static_cast<int>(fill)));
        const ConvParams p = params_of(k);
        const int64_t xn = in_numel(p), wn = w_numel(p), yn = out_numel(p);
        std::vector<int8_t> w = int_data<int8_t>(rng, wn, fill);
        if (fill == Fill::Max) std::fill(w.begin(), w.end(), static_cast<int8_t>(-128));
        // Per-channel weight zero points 0 (the quantisers' symmetric weights) and one case
        // with non-zero ones that keep w - zw inside int8.
        std::vector<int32_t> zw(static_cast<size_t>(p.out_channels), 0);
        std::vector<int32_t> want(static_cast<size_t>(yn)), got(want.size(), -7);
        const int32_t zx = fill == Fill::Random ? 37 : (s8_input ? -128 : 0);
        QWeights qw;
        qw.data = w.data();
        qw.zero_points = zw.data();
        qw.zp_stride = 1;
        QInput in;
        std::vector<uint8_t> xu;
        std::vector<int8_t> xs;
        if (s8_input) {
          xs = int_data<int8_t>(rng, xn, fill);
          std::vector<int8_t> scratch(static_cast<size_t>(qconv_scratch_size(p)));
          qconv_s8s8_ref(p, xs.data(), zx, w.data(), zw.data(), 1, want.data(), scratch.data());
          in.kind = QInputKind::S8;
          in.data = xs.data();
        } else {
          xu = int_data<uint8_t>(rng, xn, fill);
          std::vector<uint8_t> scratch(static_cast<size_t>(qconv_scratch_size(p)));
          qconv_u8s8_ref(p, xu.data(), zx, w.data(), zw.data(), 1, want.data(), scratch.data());
          in.kind = QInputKind::U8;
          in.data = xu.data();
        }
        in.zero_point = zx;
        ASSERT_EQ(QConvFast::declines(p, qw), "");
        QConvFast fast(isa, p, qw);
        QOutput out;
        out.kind = QEpilogueKind::Int32;
        out.dst = got.data();
        fast.run(p, in, out, 2);
        for (size_t i = 0; i < want.size(); ++i) ASSERT_EQ(want[i], got[i]) << fast.name() << " at " << i;
      }
    }
  }
}

// fp32 input quantised inside the convolution (DynamicQuantizeLinear -> ConvInteger), on the
// tiles and on the exact-fp32 path (depthwise cases; C = 1 or M = 1 without VNNI, where the
// tiles would carry padding; with VNNI C = 1 packs a kernel row's taps), against the reference on
// the input quantised beforehand; values beyond the range and NaN included.
TEST_P(FastKernels, QConvFloatInputMatchesQuantisedReference) {
  const Isa isa = GetParam();
  REQUIRE_ISA(isa);
  std::mt19937 rng(4);
  std::uniform_real_distribution<float> d(-1.5f, 2.5f);
  for (const ConvCase& k : kConvCases) {
    SCOPED_TRACE(describe(k));
    const ConvParams p = params_of(k);
    const int64_t xn = in_numel(p), wn = w_numel(p), yn = out_numel(p);
    std::vector<int8_t> w = int_data<int8_t>(rng, wn, Fill::Random);
    std::vector<float> xf(static_cast<size_t>(xn));
    for (float& v : xf) v = d(rng);
    if (xn > 2) xf[1] = std::numeric_limits<float>::quiet_NaN();
    const float scale = 3.0f / 255.0f;
    const int32_t zx = 85;
    std::vector<uint8_t> xu(static_cast<size_t>(xn));
    quantize_f32_u8_row_ref(xf.data(), xn, scale, zx, xu.data());
    std::vector<int32_t> want(static_cast<size_t>(yn)), got(want.size(), -7);
    std::vector<uint8_t> scratch(static_cast<size_t>(qconv_scratch_size(p)));
    qconv_u8s8_ref(p, xu.data(), zx, w.data(), nullptr, 0, want.data(), scratch.data());
    QWeights qw;
    qw.data = w.data();
    QConvFast fast(isa, p, qw);
    QInput in;
    in.kind = QInputKind::F32;
    in.data = xf.data();
    in.scale = scale;
    in.zero_point = zx;
    QOutput out;
    out.kind = QEpilogueKind::Int32;
    out.dst = got.data();
    fast.run(p, in, out, 1);
    for (size_t i = 0; i < want.size(); ++i) ASSERT_EQ(want[i], got[i]) << fast.name() << " at " << i;
  }
}

// Requantised (QLinearConv) and dequantised (dynamic quantisation) epilogues against the
// reference accumulators finished with qmath's arithmetic, written out here.
TEST_P(FastKernels, QConvEpiloguesMatchReference) {
  const Isa isa = GetParam();
  REQUIRE_ISA(isa);
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  for (const ConvCase& k : kConvCases) {
    SCOPED_TRACE(describe(k));
    const ConvParams p = params_of(k);
    const int64_t xn = in_numel(p), wn = w_numel(p), yn = out_numel(p), m = p.out_channels;
    const int64_t plane = yn / (p.batch * m);
    std::vector<int8_t> w = int_data<int8_t>(rng, wn, Fill::Random);
    std::vector<int8_t> x = int_data<int8_t>(rng, xn, Fill::Random);
    const int32_t zx = -3;
    std::vector<int32_t> acc(static_cast<size_t>(yn));
    std::vector<int8_t> scratch(static_cast<size_t>(qconv_scratch_size(p)));
    qconv_s8s8_ref(p, x.data(), zx, w.data(), nullptr, 0, acc.data(), scratch.data());
    std::vector<float> mult(static_cast<size_t>(m)), scale(static_cast<size_t>(m)), bias(static_cast<size_t>(m));
    std::vector<int32_t> bias_i(static_cast<size_t>(m));
    std::vector<float> res(static_cast<size_t>(yn));
    for (int64_t c = 0; c < m; ++c) {
      mult[static_cast<size_t>(c)] = 0.0007f * static_cast<float>(c + 1);
      scale[static_cast<size_t>(c)] = 0.0001f * static_cast<float>(c + 3);
      bias[static_cast<size_t>(c)] = d(rng);
      bias_i[static_cast<size_t>(c)] = static_cast<int32_t>(d(rng) * 3000.0f);
    }
    for (float& f : res) f = d(rng);
    QWeights qw;
    qw.data = w.data();
    QConvFast fast(isa, p, qw);
    QInput in;
    in.kind = QInputKind::S8;
    in.data = x.data();
    in.zero_point = zx;
    // Requant to int8 with zero point 5.
    std::vector<int8_t> got8(static_cast<size_t>(yn));
    QOutput rq;
    rq.kind = QEpilogueKind::RequantS8;
    rq.dst = got8.data();
    rq.scale = mult.data();
    rq.bias_i32 = bias_i.data();
    rq.zero_point = 5;
    fast.run(p, in, rq, 1);
    // Dequant with bias, residual and a Relu.
    std::vector<float> gotf(static_cast<size_t>(yn));
    QOutput dq;
    dq.kind = QEpilogueKind::Dequant;
    dq.dst = gotf.data();
    dq.scale = scale.data();
    dq.bias = bias.data();
    dq.residual = res.data();
    dq.clamp = true;
    dq.lo = 0.0f;
    dq.hi = std::numeric_limits<float>::infinity();
    fast.run(p, in, dq, 2);
    for (int64_t i = 0; i < yn; ++i) {
      const int64_t c = (i / plane) % m;
      const int32_t a = acc[static_cast<size_t>(i)];
      const int32_t want8 = qmath::requantize(a + bias_i[static_cast<size_t>(c)], mult[static_cast<size_t>(c)], 5, -128, 127);
      ASSERT_EQ(want8, got8[static_cast<size_t>(i)]) << fast.name() << " requant at " << i;
      float wantf = static_cast<float>(a) * scale[static_cast<size_t>(c)];
      wantf = wantf + bias[static_cast<size_t>(c)];
      wantf = wantf + res[static_cast<size_t>(i)];
      wantf = std::max(wantf, 0.0f);
      ASSERT_EQ(wantf, gotf[static_cast<size_t>(i)]) << fast.name() << " dequant at " << i;  // bit for bit
    }
  }
}

TEST_P(FastKernels, QGemmMatchesReferenceExactly) {
  const Isa isa = GetParam();
  REQUIRE_ISA(isa);
  std::mt19937 rng(9);
  for (int64_t rows : {1, 7, 16, 17, 40, 103}) {
    for (int64_t k : {1, 2, 3, 5, 6, 64, 67}) {
      for (int64_t n : {1, 7, 8, 16, 24, 33}) {
        for (Fill fill : {Fill::Random, Fill::Ends, Fill::Max}) {
          for (bool trans : {false, true}) {
            SCOPED_TRACE("qgemm " + std::to_string(rows) + "x" + std::to_string(k) + "x" + std::to_string(n) +
                         " fill " + std::to_string(static_cast<int>(fill)) + (trans ? " transB" : ""));
            std::vector<uint8_t> a = int_data<uint8_t>(rng, rows * k, fill);
            std::vector<int8_t> b = int_data<int8_t>(rng, k * n, fill);  // [K, N], or [N, K] when trans
            const int32_t za = fill == Fill::Random ? 129 : 0;
            std::vector<int32_t> zb(static_cast<size_t>(n), 0);
            if (fill == Fill::Random)
              for (int64_t j = 0; j < n; ++j) zb[static_cast<size_t>(j)] = static_cast<int32_t>(j % 3) - 1;
            if (fill == Fill::Random)
              for (int8_t& v : b) v = static_cast<int8_t>(std::clamp<int>(v, -127, 126));  // keep b - zb in int8
            std::vector<int8_t> b_kn(b);
            if (trans)
              for (int64_t kk = 0; kk < k; ++kk)
                for (int64_t j = 0; j < n; ++j) b_kn[static_cast<size_t>(kk * n + j)] = b[static_cast<size_t>(j * k + kk)];
            std::vector<int32_t> want(static_cast<size_t>(rows * n)), got(want.size(), -7);
            QGemmArgs<uint8_t, int8_t> g;
            g.m = rows;
            g.n = n;
            g.k = k;
            g.a = a.data();
            g.lda = k;
            g.b = b_kn.data();
            g.ldb = n;
            g.c = want.data();
            g.ldc = n;
            g.a_zero_points = &za;
            g.b_zero_points = zb.data();
            g.b_zp_stride = 1;
            qgemm_u8s8_ref(g);
            QWeights qw;
            qw.data = b.data();
            qw.zero_points = zb.data();
            qw.zp_stride = 1;
            ASSERT_EQ(QGemmFast::declines(k, n, qw), "");
            QGemmFast fast(isa, k, n, qw, trans);
            QInput in;
            in.kind = QInputKind::U8;
            in.data = a.data();
            in.zero_point = za;
            QOutput out;
            out.dst = got.data();
            fast.run(rows, in, out, n, 2);
            for (size_t i = 0; i < want.size(); ++i) ASSERT_EQ(want[i], got[i]) << fast.name() << " at " << i;
          }
        }
      }
    }
  }
}

// The tile kernel alone, at both range ends in every k position, with every channel count up
// to two blocks: the exact answer is n * 255 * (-128) per lane and so on.
TEST_P(FastKernels, QTileRangeEnds) {
  const Isa isa = GetParam();
  REQUIRE_ISA(isa);
  for (int64_t k : {1, 2, 4, 8, 36, 144}) {
    for (int8_t wv : {static_cast<int8_t>(-128), static_cast<int8_t>(127)}) {
      for (uint8_t av : {static_cast<uint8_t>(255), static_cast<uint8_t>(0), static_cast<uint8_t>(1)}) {
        // 101 rows: whole AVX2 tiles and chunks with a short tail, besides 5 (one short tile).
        for (int64_t rows : {5, 101}) {
          std::vector<uint8_t> a(static_cast<size_t>(rows * k), av);
          std::vector<int8_t> b(static_cast<size_t>(k * 33), wv);
          QWeights qw;
          qw.data = b.data();
          QGemmFast fast(isa, k, 33, qw);
          QInput in;
          in.data = a.data();
          std::vector<int32_t> got(static_cast<size_t>(rows * 33), 0);
          QOutput out;
          out.dst = got.data();
          fast.run(rows, in, out, 33, 1);
          for (int32_t v : got) ASSERT_EQ(v, static_cast<int32_t>(k) * av * wv) << fast.name() << " k " << k;
        }
      }
    }
  }
}

TEST_P(FastKernels, QuantizeAndRangeScanMatchReference) {
  const Isa isa = GetParam();
  REQUIRE_ISA(isa);
  std::mt19937 rng(13);
  std::uniform_real_distribution<float> d(-3.0f, 3.0f);
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  for (int64_t n : {0, 1, 7, 31, 32, 33, 100}) {
    std::vector<float> x(static_cast<size_t>(n));
    for (float& v : x) v = d(rng);
    if (n > 5) {
      x[1] = nan;
      x[2] = 1e30f;
      x[3] = -inf;
      x[4] = 0.5f * 0.0117647f;  // exactly halfway cases round to even
      x[5] = 2.5f * 0.0117647f;
      x[n - 1] = -0.001f;  // a quotient of -0.085: rounds to -0 in fp32 when the zero point is > 0
    }
    float lo_ref, hi_ref, lo, hi;
    minmax_f32_ref(x.data(), n, &lo_ref, &hi_ref);
    minmax_fn(isa)(x.data(), n, &lo, &hi);
    EXPECT_EQ(lo_ref, lo);
    EXPECT_EQ(hi_ref, hi);
    for (int32_t zp : {0, 17, 255}) {
      std::vector<uint8_t> want(static_cast<size_t>(n)), got(static_cast<size_t>(n));
      const float scale = 0.0117647f;
      QAxisLayout l;
      l.inner = n;
      quantize_f32_u8_ref(x.data(), l, &scale, &zp, want.data());
      quantize_u8_fn(isa)(x.data(), n, scale, zp, got.data());
      EXPECT_EQ(want, got) << "zero point " << zp;
      // The exact-fp32 path's input: the same integers less the zero point, bit for bit (+0,
      // never -0, for the zero point itself).
      std::vector<float> got_c(static_cast<size_t>(n), -7.0f);
      chain_quantize_fn(isa)(x.data(), n, scale, zp, ChainStore::F32, got_c.data());
      for (int64_t i = 0; i < n; ++i) {
        const float want_c = static_cast<float>(want[static_cast<size_t>(i)] - zp);
        ASSERT_EQ(0, std::memcmp(&want_c, &got_c[static_cast<size_t>(i)], sizeof(float)))
            << "zero point " << zp << " at " << i << ": " << got_c[static_cast<size_t>(i)];
      }
    }
  }
}

// --- oneDNN adapter ----------------------------------------------------------------------------

// The adapter against the same references: int8 bit for bit (its zero-point compensation and
// padding must be ONNX's), fp32 within rounding. 2-D cases only (the adapter's scope).
TEST(OneDnnAdapter, MatchesReference) {
  if (!onednn_available()) GTEST_SKIP() << "oneDNN adapter skipped: " << onednn_version();
  std::mt19937 rng(21);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  for (const ConvCase& k : kConvCases) {
    if (k.h == 0) continue;
    SCOPED_TRACE(describe(k));
    const ConvParams p = params_of(k);
    std::vector<float> x(static_cast<size_t>(in_numel(p))), w(static_cast<size_t>(w_numel(p))),
        b(static_cast<size_t>(p.out_channels));
    for (auto* v : {&x, &w, &b})
      for (float& f : *v) f = d(rng);
    std::vector<float> want(static_cast<size_t>(out_numel(p))), got(want.size(), NAN);
    conv_f32_ref(p, x.data(), w.data(), b.data(), want.data());
    for (float& v : want) v = std::min(std::max(v, 0.0f), 6.0f);
    ConvF32OneDnn f32(p, w.data());
    ConvF32Epilogue ep;
    ep.bias = b.data();
    ep.clamp = true;
    ep.lo = 0.0f;
    ep.hi = 6.0f;
    f32.run(p, x.data(), ep, got.data(), 1);
    for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(want[i], got[i], 1e-5) << f32.impl_name() << " at " << i;

    for (Fill fill : {Fill::Random, Fill::Ends}) {
      std::vector<int8_t> wq = int_data<int8_t>(rng, w_numel(p), fill);
      std::vector<uint8_t> xq = int_data<uint8_t>(rng, in_numel(p), fill);
      const int32_t zx = fill == Fill::Random ? 77 : 255;
      std::vector<int32_t> want_i(static_cast<size_t>(out_numel(p))), got_i(want_i.size(), -7);
      std::vector<uint8_t> scratch(static_cast<size_t>(qconv_scratch_size(p)));
      qconv_u8s8_ref(p, xq.data(), zx, wq.data(), nullptr, 0, want_i.data(), scratch.data());
      QWeights qw;
      qw.data = wq.data();
      ASSERT_EQ(QConvOneDnn::declines(p, qw), "");
      QConvOneDnn q(p, qw);
      QInput in;
      in.data = xq.data();
      in.zero_point = zx;
      QOutput out;
      out.dst = got_i.data();
      q.run(p, in, out, 1);
      for (size_t i = 0; i < want_i.size(); ++i) ASSERT_EQ(want_i[i], got_i[i]) << q.impl_name() << " at " << i;
    }
  }
}

std::string isa_param_name(const ::testing::TestParamInfo<Isa>& info) { return isa_name(info.param); }

INSTANTIATE_TEST_SUITE_P(Isas, FastKernels, ::testing::Values(Isa::Ref, Isa::Avx2, Isa::Avx512, Isa::Avx512Vnni),
                         isa_param_name);

}  // namespace
}  // namespace tinyq::kernels
