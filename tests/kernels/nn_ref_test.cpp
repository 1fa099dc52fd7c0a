// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// The fp32 nn reference kernels and the shared window geometry, checked against textbook
// definitions written out loop by loop (independent of the kernels' range arithmetic) on edge
// shapes: padding wider than the kernel, strides beyond the kernel, dilations, groups, 1-D/3-D.

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/conv_geometry.h"
#include "kernels/nn_kernels.h"
#include "kernels/ref/conv_ref.h"
#include "kernels/ref/gemm_ref.h"
#include "kernels/ref/resize_ref.h"

namespace tinyq::kernels {
namespace {

std::vector<float> random_vec(std::mt19937& rng, int64_t n) {
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = d(rng);
  return v;
}

int64_t prod(const int64_t* v, int n) {
  int64_t p = 1;
  for (int i = 0; i < n; ++i) p *= v[i];
  return p;
}

// Unravels a flat index over `dims` (n entries) into `idx`.
void unravel(int64_t flat, const int64_t* dims, int n, int64_t* idx) {
  for (int i = n - 1; i >= 0; --i) {
    idx[i] = flat % dims[i];
    flat /= dims[i];
  }
}

// y[n][oc][o] = b[oc] + sum_{icg, k} x[n][g*icg_n + icg][o*s - p + k*d] * w[oc][icg][k], skipping
// positions outside the input.
std::vector<float> naive_conv(const ConvParams& p, const std::vector<float>& x, const std::vector<float>& w,
                              const std::vector<float>& b) {
  const int r = p.spatial_rank;
  const int64_t in_plane = prod(p.in_size, r), out_plane = prod(p.out_size, r), taps = prod(p.kernel, r);
  const int64_t icg_n = p.in_channels / p.group, ocg_n = p.out_channels / p.group;
  std::vector<float> y(static_cast<size_t>(p.batch * p.out_channels * out_plane));
  for (int64_t n = 0; n < p.batch; ++n)
    for (int64_t oc = 0; oc < p.out_channels; ++oc)
      for (int64_t o = 0; o < out_plane; ++o) {
        int64_t oi[3];
        unravel(o, p.out_size, r, oi);
        float acc = b.empty() ? 0.0f : b[static_cast<size_t>(oc)];
        for (int64_t icg = 0; icg < icg_n; ++icg)
          for (int64_t t = 0; t < taps; ++t) {
            int64_t ki[3];
            unravel(t, p.kernel, r, ki);
            int64_t flat = 0;
            bool inside = true;
            for (int a = 0; a < r; ++a) {
              const int64_t pos = oi[a] * p.stride[a] - p.pad_begin[a] + ki[a] * p.dilation[a];
              inside = inside && pos >= 0 && pos < p.in_size[a];
              flat = flat * p.in_size[a] + pos;
            }
            if (!inside) continue;
            const int64_t ic = (oc / ocg_n) * icg_n + icg;
            acc += x[static_cast<size_t>((n * p.in_channels + ic) * in_plane + flat)] *
                   w[static_cast<size_t>((oc * icg_n + icg) * taps + t)];
          }
        y[static_cast<size_t>((n * p.out_channels + oc) * out_plane + o)] = acc;
      }
  return y;
}

// The transposed convolution as a gather: output o takes input i through tap k when
// o = i*s - p + k*d.
std::vector<float> naive_conv_transpose(const ConvParams& p, const std::vector<float>& x, const std::vector<float>& w,
                                        const std::vector<float>& b) {
  const int r = p.spatial_rank;
  const int64_t in_plane = prod(p.in_size, r), out_plane = prod(p.out_size, r), taps = prod(p.kernel, r);
  const int64_t icg_n = p.in_channels / p.group, ocg_n = p.out_channels / p.group;
  std::vector<float> y(static_cast<size_t>(p.batch * p.out_channels * out_plane));
  for (int64_t n = 0; n < p.batch; ++n)
    for (int64_t oc = 0; oc < p.out_channels; ++oc)
      for (int64_t o = 0; o < out_plane; ++o) {
        int64_t oi[3];
        unravel(o, p.out_size, r, oi);
        double acc = b.empty() ? 0.0 : b[static_cast<size_t>(oc)];
        for (int64_t icg = 0; icg < icg_n; ++icg)
          for (int64_t t = 0; t < taps; ++t) {
            int64_t ki[3];
            unravel(t, p.kernel, r, ki);
            int64_t flat = 0;
            bool hit = true;
            for (int a = 0; a < r; ++a) {
              const int64_t num = oi[a] + p.pad_begin[a] - ki[a] * p.dilation[a];
              const int64_t i = num / p.stride[a];
              hit = hit && num >= 0 && num % p.stride[a] == 0 && i < p.in_size[a];
              flat = flat * p.in_size[a] + i;
            }
            if (!hit) continue;
            const int64_t ic = (oc / ocg_n) * icg_n + icg;
            acc += static_cast<double>(x[static_cast<size_t>((n * p.in_channels + ic) * in_plane + flat)]) *
                   w[static_cast<size_t>((ic * ocg_n + oc % ocg_n) * taps + t)];
          }
        y[static_cast<size_t>((n * p.out_channels + oc) * out_plane + o)] = static_cast<float>(acc);
      }
  return y;
}

struct Geometry {
  int rank;
  int64_t batch, in_channels, out_channels, group;
  std::vector<int64_t> in, kernel, stride, dilation, pad_begin, pad_end;
};

ConvParams to_params(const Geometry& g, bool transpose) {
  ConvParams p;
  p.batch = g.batch;
  p.in_channels = g.in_channels;
  p.out_channels = g.out_channels;
  p.group = g.group;
  p.spatial_rank = g.rank;
  for (int a = 0; a < g.rank; ++a) {
    p.in_size[a] = g.in[a];
    p.kernel[a] = g.kernel[a];
    p.stride[a] = g.stride[a];
    p.dilation[a] = g.dilation[a];
    p.pad_begin[a] = g.pad_begin[a];
    p.out_size[a] = transpose ? conv_transpose_output_size(g.in[a], g.kernel[a], g.stride[a], g.dilation[a],
                                                           g.pad_begin[a], g.pad_end[a], 0)
                              : conv_output_size(g.in[a], g.kernel[a], g.stride[a], g.dilation[a], g.pad_begin[a],
                                                 g.pad_end[a]);
  }
  return p;
}

const std::vector<Geometry> kGeometries = {
    {2, 1, 3, 4, 1, {7, 7}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}},
    {2, 2, 4, 6, 2, {6, 5}, {3, 2}, {2, 3}, {1, 2}, {3, 0}, {1, 2}},     // pads wider than the kernel
    {2, 1, 3, 3, 3, {9, 8}, {3, 3}, {4, 5}, {2, 1}, {2, 1}, {0, 2}},     // depthwise, stride > kernel
    {1, 2, 2, 4, 2, {13}, {4}, {3}, {2}, {5}, {1}},
    {3, 1, 2, 2, 1, {4, 5, 6}, {2, 3, 2}, {1, 2, 2}, {2, 1, 1}, {1, 0, 1}, {0, 2, 1}},
    {2, 1, 1, 1, 1, {1, 1}, {1, 1}, {1, 1}, {1, 1}, {0, 0}, {0, 0}},     // 1x1 everything
};

// Every row of the conv tables (the _ref row today; SIMD rows as they arrive) against the
// textbook definitions, on every geometry the row accepts.
TEST(KernelsConvRef, EveryTableRowMatchesTextbookConvolution) {
  ASSERT_STREQ(conv_f32_kernels().back().name, "conv_f32_ref");
  std::mt19937 rng(11);
  for (const Geometry& g : kGeometries) {
    ConvParams p = to_params(g, false);
    ASSERT_GE(p.out_size[0], 1);
    const int r = g.rank;
    std::vector<float> x = random_vec(rng, p.batch * p.in_channels * prod(p.in_size, r));
    std::vector<float> w = random_vec(rng, p.out_channels * (p.in_channels / p.group) * prod(p.kernel, r));
    std::vector<float> b = random_vec(rng, p.out_channels);
    const std::vector<float> want = naive_conv(p, x, w, b), want_nb = naive_conv(p, x, w, {});
    for (const ConvF32Kernel& k : conv_f32_kernels()) {
      if (!k.accepts(p)) continue;
      std::vector<float> got(want.size(), NAN);
      k.run(p, x.data(), w.data(), b.data(), got.data());
      for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-5) << k.name << " element " << i;
      k.run(p, x.data(), w.data(), nullptr, got.data());
      for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(got[i], want_nb[i], 1e-5) << k.name << " element " << i;
    }
  }
}

TEST(KernelsConvRef, EveryTransposeRowMatchesGatherDefinition) {
  ASSERT_STREQ(conv_transpose_f32_kernels().back().name, "conv_transpose_f32_ref");
  std::mt19937 rng(12);
  for (const Geometry& g : kGeometries) {
    ConvParams p = to_params(g, true);
    if (p.out_size[0] < 1) continue;
    const int r = g.rank;
    std::vector<float> x = random_vec(rng, p.batch * p.in_channels * prod(p.in_size, r));
    std::vector<float> w = random_vec(rng, p.in_channels * (p.out_channels / p.group) * prod(p.kernel, r));
    std::vector<float> b = random_vec(rng, p.out_channels);
    const std::vector<float> want = naive_conv_transpose(p, x, w, b);
    for (const ConvF32Kernel& k : conv_transpose_f32_kernels()) {
      if (!k.accepts(p)) continue;
      std::vector<float> got(want.size(), NAN);
      k.run(p, x.data(), w.data(), b.data(), got.data());
      for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-5) << k.name << " element " << i;
    }
  }
}

TEST(KernelsConvGeometry, OutputSizesAndPads) {
  EXPECT_EQ(conv_output_size(7, 3, 1, 1, 0, 0), 5);
  EXPECT_EQ(conv_output_size(7, 3, 2, 1, 1, 1), 4);
  EXPECT_EQ(conv_output_size(7, 3, 2, 2, 0, 0), 2);   // extent 5
  EXPECT_EQ(conv_output_size(2, 3, 1, 1, 0, 0), 0);   // does not fit
  EXPECT_EQ(conv_output_size(8, 3, 2, 1, 0, 0, true), 4);
  EXPECT_EQ(conv_output_size(8, 3, 2, 1, 0, 0, false), 3);
  // ceil_mode drops a last window that would start in the end padding
  EXPECT_EQ(conv_output_size(3, 2, 3, 1, 0, 1, true), 1);
  EXPECT_EQ(conv_output_size(6, 3, 2, 1, 1, 1, true), 4);

  AxisPads p = conv_same_pads(7, 4, 2, 1, AutoPad::SameUpper);  // out 4: total (4-1)*2+4-7 = 3
  EXPECT_EQ(p.begin, 1);
  EXPECT_EQ(p.end, 2);
  p = conv_same_pads(7, 4, 2, 1, AutoPad::SameLower);
  EXPECT_EQ(p.begin, 2);
  EXPECT_EQ(p.end, 1);
  p = conv_same_pads(7, 1, 4, 1, AutoPad::SameUpper);  // stride beyond the kernel: no padding
  EXPECT_EQ(p.begin + p.end, 0);
  p = conv_same_pads(9, 3, 1, 2, AutoPad::SameUpper);  // dilated extent 5
  EXPECT_EQ(p.begin, 2);
  EXPECT_EQ(p.end, 2);

  EXPECT_EQ(conv_transpose_output_size(3, 3, 2, 1, 0, 0, 0), 7);
  EXPECT_EQ(conv_transpose_output_size(3, 3, 2, 1, 1, 0, 1), 7);
  p = conv_transpose_pads_for_output(3, 6, 3, 2, 1, 0, AutoPad::SameUpper);  // total 1: at the end
  EXPECT_EQ(p.begin, 0);
  EXPECT_EQ(p.end, 1);
  p = conv_transpose_pads_for_output(3, 6, 3, 2, 1, 0, AutoPad::NotSet);  // otherwise at the start
  EXPECT_EQ(p.begin, 1);
  EXPECT_EQ(p.end, 0);
  p = conv_transpose_pads_for_output(3, 9, 3, 2, 1, 0, AutoPad::NotSet);  // larger output: no pads
  EXPECT_EQ(p.begin + p.end, 0);

  AutoPad ap;
  EXPECT_TRUE(parse_auto_pad("SAME_LOWER", &ap));
  EXPECT_EQ(ap, AutoPad::SameLower);
  EXPECT_FALSE(parse_auto_pad("same_lower", &ap));
}

// valid_output_range against its definition, by enumeration.
TEST(KernelsConvGeometry, ValidOutputRange) {
  for (int64_t in = 1; in <= 6; ++in)
    for (int64_t out = 1; out <= 6; ++out)
      for (int64_t stride = 1; stride <= 4; ++stride)
        for (int64_t pad = 0; pad <= 4; ++pad)
          for (int64_t tap = 0; tap <= 5; ++tap) {
            OutputRange r = valid_output_range(in, out, stride, pad, tap);
            for (int64_t o = 0; o < out; ++o) {
              const int64_t pos = o * stride - pad + tap;
              const bool want = pos >= 0 && pos < in;
              const bool got = o >= r.lo && o < r.hi;
              ASSERT_EQ(got, want) << "in " << in << " out " << out << " stride " << stride << " pad " << pad
                                   << " tap " << tap << " o " << o;
            }
          }
}

TEST(KernelsGemmRef, EveryTableRowTransposesAndBroadcastsC) {
  ASSERT_STREQ(gemm_f32_kernels().back().name, "gemm_f32_ref");
  std::mt19937 rng(13);
  const int64_t M = 3, N = 4, K = 5;
  std::vector<float> a = random_vec(rng, M * K), b = random_vec(rng, K * N), c = random_vec(rng, N);
  for (int trans_a = 0; trans_a < 2; ++trans_a)
    for (int trans_b = 0; trans_b < 2; ++trans_b) {
      GemmParams p;
      p.M = M;
      p.N = N;
      p.K = K;
      p.a_row = trans_a ? 1 : K;
      p.a_col = trans_a ? M : 1;
      p.b_row = trans_b ? 1 : N;
      p.b_col = trans_b ? K : 1;
      p.c_row = 0;  // C [N] broadcast over rows
      p.c_col = 1;
      p.ldd = N;
      p.alpha = 0.5f;
      p.beta = -2.0f;
      for (const GemmF32Kernel& kernel : gemm_f32_kernels()) {
        if (!kernel.accepts(p)) continue;
        std::vector<float> y(static_cast<size_t>(M * N));
        kernel.run(p, a.data(), b.data(), c.data(), y.data());
        for (int64_t m = 0; m < M; ++m)
          for (int64_t n = 0; n < N; ++n) {
            double acc = 0;
            for (int64_t k = 0; k < K; ++k) {
              const float av = trans_a ? a[static_cast<size_t>(k * M + m)] : a[static_cast<size_t>(m * K + k)];
              const float bv = trans_b ? b[static_cast<size_t>(n * K + k)] : b[static_cast<size_t>(k * N + n)];
              acc += static_cast<double>(av) * bv;
            }
            EXPECT_NEAR(y[static_cast<size_t>(m * N + n)], 0.5 * acc - 2.0 * c[static_cast<size_t>(n)], 1e-5)
                << kernel.name;
          }
      }
    }
}

TEST(KernelsResizeRef, NearestRoundingModes) {
  ResizeParams p;
  p.mode = ResizeMode::Nearest;
  p.coord = ResizeCoordMode::Asymmetric;  // x_original = j / 2: 0, 0.5, 1, 1.5, ...
  const int64_t want[4][6] = {
      {0, 0, 1, 1, 2, 2},  // round_prefer_floor
      {0, 1, 1, 2, 2, 3},  // round_prefer_ceil (clamped to 3 at the end)
      {0, 0, 1, 1, 2, 2},  // floor
      {0, 1, 1, 2, 2, 3},  // ceil
  };
  const ResizeNearestMode modes[4] = {ResizeNearestMode::RoundPreferFloor, ResizeNearestMode::RoundPreferCeil,
                                      ResizeNearestMode::Floor, ResizeNearestMode::Ceil};
  for (int m = 0; m < 4; ++m) {
    p.nearest = modes[m];
    ResizeAxisPlan plan = resize_axis_plan(p, 4, 6, 2.0f, 0, 1);
    for (int64_t j = 0; j < 6; ++j) {
      ASSERT_EQ(plan.first[j + 1] - plan.first[j], 1);
      EXPECT_EQ(plan.index[static_cast<size_t>(plan.first[j])], want[m][j]) << "mode " << m << " j " << j;
    }
  }
}

// Every linear/cubic plan's weights sum to 1 (cubic: Keys' kernel is a partition of unity, and
// exclude_outside renormalises), and the indices stay inside the input.
TEST(KernelsResizeRef, WeightsArePartitionsOfUnity) {
  const ResizeCoordMode coords[] = {ResizeCoordMode::HalfPixel, ResizeCoordMode::PytorchHalfPixel,
                                    ResizeCoordMode::AlignCorners, ResizeCoordMode::Asymmetric};
  for (ResizeMode mode : {ResizeMode::Linear, ResizeMode::Cubic})
    for (ResizeCoordMode coord : coords)
      for (bool exclude : {false, true})
        for (bool aa : {false, true})
          for (float scale : {0.4f, 0.75f, 1.6f, 3.0f}) {
            ResizeParams p;
            p.mode = mode;
            p.coord = coord;
            p.exclude_outside = exclude;
            p.antialias = aa;
            const int64_t in = 7, out = static_cast<int64_t>(scale * in);
            ResizeAxisPlan plan = resize_axis_plan(p, in, out, scale, 0, 1);
            for (int64_t j = 0; j < out; ++j) {
              double sum = 0;
              for (int64_t t = plan.first[j]; t < plan.first[j + 1]; ++t) {
                sum += plan.weight[static_cast<size_t>(t)];
                ASSERT_GE(plan.index[static_cast<size_t>(t)], 0);
                ASSERT_LT(plan.index[static_cast<size_t>(t)], in);
              }
              EXPECT_NEAR(sum, 1.0, 1e-5) << "mode " << static_cast<int>(mode) << " coord "
                                          << static_cast<int>(coord) << " exclude " << exclude << " aa " << aa
                                          << " scale " << scale << " j " << j;
            }
          }
}

// A scale-1 axis passes through (each output row depends on its own input row only, and the
// plan says identity); a same-shape resize copies.
TEST(KernelsResizeRef, IdentityAxesAndCopy) {
  ResizeParams p;
  p.mode = ResizeMode::Cubic;
  EXPECT_TRUE(resize_axis_plan(p, 3, 3, 1.0f, 0, 1).identity);
  EXPECT_FALSE(resize_axis_plan(p, 3, 6, 2.0f, 0, 1).identity);
  const int64_t shape[2] = {3, 4}, out_shape[2] = {3, 8};
  const float scales[2] = {1.0f, 2.0f}, roi0[2] = {0, 0}, roi1[2] = {1, 1};
  std::vector<float> src = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  std::vector<float> a(24), b(24);
  resize_f32_ref(p, 2, shape, out_shape, scales, roi0, roi1, src.data(), a.data());
  for (size_t i = 4; i < 8; ++i) src[i] *= -3.0f;  // change row 1 only
  resize_f32_ref(p, 2, shape, out_shape, scales, roi0, roi1, src.data(), b.data());
  for (size_t i = 0; i < 24; ++i) {
    if (i >= 8 && i < 16) EXPECT_NE(a[i], b[i]) << i;
    else EXPECT_EQ(a[i], b[i]) << i;
  }
  std::vector<float> same(12);
  const float ones[2] = {1, 1};
  resize_f32_ref(p, 2, shape, shape, ones, roi0, roi1, src.data(), same.data());
  EXPECT_EQ(same, src);
}

}  // namespace
}  // namespace tinyq::kernels
