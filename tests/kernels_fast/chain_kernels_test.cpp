// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// The convolution-chain kernels (kernels/fast/chain_kernels.h, conv_chain.h):
//   - every SIMD micro-kernel against its portable `_ref` version: dense fp32, dense u8 x s8
//     (VNNI) and int16 (AVX2), depthwise fp32 (the 3x3 stride 1 / 2 paths and the general one),
//     the DynamicQuantizeLinear quantisation, in every epilogue mode, on row lengths that end in
//     every kind of tail, with integers at their range ends; integer results exactly, fp32
//     sums within rounding (the SIMD kernels fuse multiply-adds);
//   - whole chains (ConvChain) on every ISA against a scalar oracle built from kernels/ref
//     (conv_f32_ref, qconv_ref, qmath), exactly for the integer chains;
//   - the c4 integer tiles (QTileC4, VNNI) and their input interleave, and the QDQ add of every
//     ISA, against their `_ref` versions, exactly.
// An ISA this CPU lacks is skipped with a message.

#include "kernels/fast/chain_kernels.h"

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
#include "kernels/fast/conv_chain.h"
#include "kernels/fast/conv_fast.h"
#include "kernels/fast/micro_kernels.h"
#include "kernels/ref/conv_ref.h"
#include "kernels/ref/qconv_ref.h"
#include "kernels/ref/qlinear_ref.h"
#include "require_isa.h"

namespace tinyq::kernels {
namespace {

// 64-byte aligned storage, as the chain's buffers are.
template <typename T>
struct Buf {
  std::vector<T> v;
  size_t off = 0;
  explicit Buf(size_t n, T fill = T()) : v(n + 64 / sizeof(T) + 1, fill) {
    const uintptr_t a = reinterpret_cast<uintptr_t>(v.data());
    off = ((64 - a % 64) % 64) / sizeof(T);
  }
  T* data() { return v.data() + off; }
  T& operator[](size_t i) { return v[off + i]; }
};

struct Kernels {
  ChainDenseFn dense_f32, dense_int;
  ChainStore int_store;
  ChainDwFn dw;
  ChainQuantizeFn quantize;
};

Kernels kernels_for(Isa isa) {
  Kernels k{chain_dense_f32_ref, chain_dense_u8_ref, ChainStore::U8, chain_dw_f32_ref, chain_quantize_ref};
#if defined(TINYQ_X86_KERNELS)
  if (isa == Isa::Avx2)
    k = {chain_dense_f32_avx2, chain_dense_s16_avx2, ChainStore::S16, chain_dw_f32_avx2, chain_quantize_avx2};
  if (isa == Isa::Avx512)
    k = {chain_dense_f32_avx512, chain_dense_s16_avx2, ChainStore::S16, chain_dw_f32_avx512, chain_quantize_avx512};
  if (isa == Isa::Avx512Vnni)
    k = {chain_dense_f32_avx512, chain_dense_u8_avx512vnni, ChainStore::U8, chain_dw_f32_avx512, chain_quantize_avx512};
#else
  (void)isa;
#endif
  return k;
}

// The epilogues under test, for m channels: F32 (bias, clamp, range), Dequant, and Requant
// into each store. Fills the per-channel arrays it points at.
struct EpiCase {
  const char* name;
  ChainEpi kind;
  ChainStore store;
};
const EpiCase kEpis[] = {
    {"f32", ChainEpi::F32, ChainStore::F32},
    {"dequant", ChainEpi::Dequant, ChainStore::F32},
    {"requant-f32", ChainEpi::Requant, ChainStore::F32},
    {"requant-u8", ChainEpi::Requant, ChainStore::U8},
    {"requant-s16", ChainEpi::Requant, ChainStore::S16},
};

struct EpiData {
  std::vector<float> bias, scale;
  std::vector<int32_t> corr;
  std::vector<float> corr_f;  // corr as floats (the fp32 kernels' exact shortcut)
  float range[2];
  ChainEpilogue make(const EpiCase& c, bool with_range) {
    ChainEpilogue e;
    e.kind = c.kind;
    e.store = c.store;
    e.bias = bias.data();
    e.scale = scale.data();
    e.corr = corr.data();
    e.clamp = true;
    e.lo = c.kind == ChainEpi::F32 ? -0.75f : -2.0f;
    e.hi = c.kind == ChainEpi::F32 ? 0.5f : 3.0f;
    e.zero_point = 37;
    e.qmin = 0;
    e.qmax = 255;
    range[0] = std::numeric_limits<float>::infinity();
    range[1] = -std::numeric_limits<float>::infinity();
    if (with_range && c.kind == ChainEpi::Dequant) e.minmax = range;
    return e;
  }
};

EpiData epi_data(std::mt19937& rng, int64_t m, float scale_lo, float scale_hi) {
  EpiData d;
  std::uniform_real_distribution<float> b(-1.0f, 1.0f), s(scale_lo, scale_hi);
  std::uniform_int_distribution<int32_t> c(-3000, 3000);
  for (int64_t i = 0; i < m; ++i) {
    d.bias.push_back(b(rng));
    d.scale.push_back(s(rng));
    d.corr.push_back(c(rng));
    d.corr_f.push_back(static_cast<float>(d.corr.back()));
  }
  return d;
}

// Compares two outputs of n positions x m channels (dst_step m) in `store`. Integer stores and
// outputs of exact integer sums must agree exactly; float sums within `tol`.
void expect_same(const void* want, const void* got, int64_t count, ChainStore store, double tol,
                 const std::string& what) {
  for (int64_t i = 0; i < count; ++i) {
    if (store == ChainStore::F32) {
      const float a = static_cast<const float*>(want)[i], b = static_cast<const float*>(got)[i];
      if (std::isnan(a) && std::isnan(b)) continue;
      ASSERT_LE(std::fabs(a - b), tol) << what << " at " << i << ": " << a << " vs " << b;
    } else if (store == ChainStore::U8) {
      ASSERT_EQ(static_cast<const uint8_t*>(want)[i], static_cast<const uint8_t*>(got)[i]) << what << " at " << i;
    } else {
      ASSERT_EQ(static_cast<const int16_t*>(want)[i], static_cast<const int16_t*>(got)[i]) << what << " at " << i;
    }
  }
}

class ChainKernels : public ::testing::TestWithParam<Isa> {};

// Position counts that end in every tail of the tiles (3, 6, 8, 9, 12 positions).
const int64_t kRowLengths[] = {1, 2, 3, 4, 5, 7, 8, 11, 12, 13, 17, 25, 56};

// --- dense fp32 (also the float-exact integer layers) -------------------------------------------

TEST_P(ChainKernels, DenseF32MatchesReference) {
  const Isa isa = GetParam();
  REQUIRE_ISA(isa);
  const Kernels ks = kernels_for(isa);
  std::mt19937 rng(1);
  for (int64_t m : {16, 32, 48, 64, 80, 128}) {
    for (int64_t k : {1, 9, 16, 27}) {
      for (const EpiCase& ec : kEpis) {
        // Integer modes take the sum as an exact integer: small integer inputs and weights.
        const bool integer = ec.kind != ChainEpi::F32;
        std::uniform_real_distribution<float> real(-1.0f, 1.0f);
        std::uniform_int_distribution<int> small(-255, 255), wsmall(-128, 127);
        const int64_t n = kRowLengths[(m + k) % (sizeof(kRowLengths) / sizeof(kRowLengths[0]))];
        const int64_t step = k + 3;  // positions k + 3 floats apart; k-step j at offset j
        Buf<float> src(static_cast<size_t>(n * step + k + 16)), w(static_cast<size_t>(m * k));
        for (size_t i = 0; i < src.v.size(); ++i) src.v[i] = integer ? static_cast<float>(small(rng)) : real(rng);
        for (size_t i = 0; i < w.v.size(); ++i) w.v[i] = integer ? static_cast<float>(wsmall(rng)) : real(rng);
        std::vector<int64_t> k_off(static_cast<size_t>(k));
        for (int64_t j = 0; j < k; ++j) k_off[static_cast<size_t>(j)] = j;
        EpiData ed = epi_data(rng, m, 1e-4f, 2e-3f);
        Buf<uint8_t> want(static_cast<size_t>(n * m * 4)), got(static_cast<size_t>(n * m * 4));
        float want_range[2] = {0, 0};
        for (int pass = 0; pass < 2; ++pass) {
          ChainDense d;
          d.src = src.data();
          d.src_step = step;
          d.k_off = k_off.data();
          d.k = k;
          d.n = n;
          d.w = w.data();
          d.m = m;
          d.epi = ed.make(ec, true);
          // Odd rows: the SIMD kernel subtracts corr in float (exact here), the reference in int32.
          if (pass == 1 && integer && n % 2 == 1) d.epi.corr_f = ed.corr_f.data();
          d.dst = pass == 0 ? want.data() : got.data();
          d.dst_step = m;
          (pass == 0 ? chain_dense_f32_ref : ks.dense_f32)(d);
          if (pass == 0) {
            want_range[0] = ed.range[0];
            want_range[1] = ed.range[1];
          }
        }
        const std::string what = std::string(isa_name(isa)) + " dense f32 m" + std::to_string(m) + " k" +
                                 std::to_string(k) + " n" + std::to_string(n) + " " + ec.name;
        expect_same(want.data(), got.data(), n * m, ec.store, integer ? 0.0 : 1e-5, what);
        if (ec.kind == ChainEpi::Dequant) {  // the mode that tracks the range
          EXPECT_NEAR(want_range[0], ed.range[0], integer ? 0.0 : 1e-5) << what;
          EXPECT_NEAR(want_range[1], ed.range[1], integer ? 0.0 : 1e-5) << what;
        }
      }
    }
  }
}

// --- dense integer: u8 x s8 in 4-byte k-steps (VNNI, ref) or int16 pairs (AVX2) ----------------

TEST_P(ChainKernels, DenseIntegerMatchesReferenceExactly) {
  const Isa isa = GetParam();
  REQUIRE_ISA(isa);
  const Kernels ks = kernels_for(isa);
  const ChainDenseFn ref = ks.int_store == ChainStore::U8 ? chain_dense_u8_ref : chain_dense_s16_ref;
  const int64_t kg = ks.int_store == ChainStore::U8 ? 4 : 2;
  std::mt19937 rng(2);
  for (int fill = 0; fill < 3; ++fill) {  // random, range ends, all at the maximum
    for (int64_t m : {16, 32, 48, 64, 128}) {
      for (int64_t ksteps : {1, 3, 8, 16, 40}) {
        for (const EpiCase& ec : kEpis) {
          if (ec.kind == ChainEpi::F32) continue;  // integer sums have no F32 epilogue
          const int64_t n = kRowLengths[(m + ksteps + fill) % (sizeof(kRowLengths) / sizeof(kRowLengths[0]))];
          const int64_t step = ksteps * kg + 4;
          std::uniform_int_distribution<int> a8(0, 255), w8(-128, 127), coin(0, 1);
          auto act = [&]() { return fill == 0 ? a8(rng) : fill == 1 ? (coin(rng) ? 255 : 0) : 255; };
          auto wgt = [&]() { return fill == 0 ? w8(rng) : fill == 1 ? (coin(rng) ? 127 : -128) : -128; };
          const size_t in_count = static_cast<size_t>(n * step + kg * ksteps + 8);
          Buf<uint8_t> src8(in_count);
          Buf<int16_t> src16(in_count);
          for (size_t i = 0; i < in_count; ++i) {
            src8[i] = static_cast<uint8_t>(act());
            src16[i] = src8[i];
          }
          Buf<int8_t> w8b(static_cast<size_t>(m * ksteps * kg));
          Buf<int16_t> w16b(static_cast<size_t>(m * ksteps * kg));
          for (size_t i = 0; i < static_cast<size_t>(m * ksteps * kg); ++i) {
            w8b[i] = static_cast<int8_t>(wgt());
            w16b[i] = w8b[i];
          }
          std::vector<int64_t> k_off(static_cast<size_t>(ksteps));
          for (int64_t j = 0; j < ksteps; ++j) k_off[static_cast<size_t>(j)] = j * kg;
          EpiData ed = epi_data(rng, m, 1e-4f, 1e-3f);
          Buf<uint8_t> want(static_cast<size_t>(n * m * 4)), got(static_cast<size_t>(n * m * 4));
          float want_range[2] = {0, 0};
          for (int pass = 0; pass < 2; ++pass) {
            ChainDense d;
            d.src = ks.int_store == ChainStore::U8 ? static_cast<const void*>(src8.data()) : src16.data();
            d.src_step = step;
            d.k_off = k_off.data();
            d.k = ksteps;
            d.n = n;
            d.w = ks.int_store == ChainStore::U8 ? static_cast<const void*>(w8b.data()) : w16b.data();
            d.m = m;
            d.epi = ed.make(ec, true);
            d.dst = pass == 0 ? want.data() : got.data();
            d.dst_step = m;
            (pass == 0 ? ref : ks.dense_int)(d);
            if (pass == 0) {
              want_range[0] = ed.range[0];
              want_range[1] = ed.range[1];
            }
          }
          const std::string what = std::string(isa_name(isa)) + " dense int m" + std::to_string(m) + " ksteps" +
                                   std::to_string(ksteps) + " n" + std::to_string(n) + " fill" + std::to_string(fill) +
                                   " " + ec.name;
          expect_same(want.data(), got.data(), n * m, ec.store, 0.0, what);
          if (ec.kind == ChainEpi::Dequant) {
            EXPECT_EQ(want_range[0], ed.range[0]) << what;
            EXPECT_EQ(want_range[1], ed.range[1]) << what;
          }
        }
      }
    }
  }
}

// --- depthwise ------------------------------------------------------------------------------------

TEST_P(ChainKernels, DepthwiseMatchesReference) {
  const Isa isa = GetParam();
  REQUIRE_ISA(isa);
  const Kernels ks = kernels_for(isa);
  std::mt19937 rng(3);
  struct Shape2 {
    int kh, kw, stride, dil;
  };
  // 3x3 stride 1 / 2 take the register-streaming paths; the rest the general one.
  const Shape2 shapes[] = {{3, 3, 1, 1}, {3, 3, 2, 1}, {3, 3, 3, 1}, {5, 5, 1, 1}, {3, 3, 1, 2}, {1, 7, 2, 1}};
  for (const Shape2& sh : shapes) {
    for (int64_t m : {16, 32, 48}) {
      for (int64_t n : kRowLengths) {
        for (const EpiCase& ec : kEpis) {
          const bool integer = ec.kind != ChainEpi::F32;
          std::uniform_real_distribution<float> real(-1.0f, 1.0f);
          std::uniform_int_distribution<int> small(-255, 255), wsmall(-128, 127);
          const int64_t cols = (n - 1) * sh.stride + (sh.kw - 1) * sh.dil + 1, rows = (sh.kh - 1) * sh.dil + 1;
          const int64_t pitch = (cols + 2) * m;
          Buf<float> src(static_cast<size_t>(rows * pitch)), w(static_cast<size_t>(sh.kh * sh.kw * m));
          for (size_t i = 0; i < src.v.size(); ++i) src.v[i] = integer ? static_cast<float>(small(rng)) : real(rng);
          for (size_t i = 0; i < w.v.size(); ++i) w.v[i] = integer ? static_cast<float>(wsmall(rng)) : real(rng);
          std::vector<int64_t> taps;
          for (int a = 0; a < sh.kh; ++a)
            for (int b = 0; b < sh.kw; ++b) taps.push_back(a * sh.dil * pitch + b * sh.dil * m);
          EpiData ed = epi_data(rng, m, 1e-4f, 2e-3f);
          Buf<uint8_t> want(static_cast<size_t>(n * m * 4)), got(static_cast<size_t>(n * m * 4));
          for (int pass = 0; pass < 2; ++pass) {
            ChainDw d;
            d.src = src.data();
            d.src_step = sh.stride * m;
            d.tap_off = taps.data();
            d.taps = static_cast<int>(taps.size());
            d.n = n;
            d.w = w.data();
            d.m = m;
            d.epi = ed.make(ec, false);
            if (pass == 1 && integer && n % 2 == 1) d.epi.corr_f = ed.corr_f.data();  // as the dense test
            d.dst = pass == 0 ? want.data() : got.data();
            d.dst_step = m;
            (pass == 0 ? chain_dw_f32_ref : ks.dw)(d);
          }
          const std::string what = std::string(isa_name(isa)) + " dw " + std::to_string(sh.kh) + "x" +
                                   std::to_string(sh.kw) + " s" + std::to_string(sh.stride) + " d" +
                                   std::to_string(sh.dil) + " m" + std::to_string(m) + " n" + std::to_string(n) + " " +
                                   ec.name;
          expect_same(want.data(), got.data(), n * m, ec.store, integer ? 0.0 : 1e-5, what);
        }
      }
    }
  }
}

// --- DynamicQuantizeLinear's quantisation -------------------------------------------------------

TEST_P(ChainKernels, QuantizeMatchesReferenceExactly) {
  const Isa isa = GetParam();
  REQUIRE_ISA(isa);
  const Kernels ks = kernels_for(isa);
  std::mt19937 rng(4);
  const int64_t n = 1000;
  for (float scale : {6.0f / 255.0f, 0.0123f, 1.0f, 3e-7f}) {
    for (int32_t zp : {0, 37, 128, 255}) {
      std::vector<float> x(static_cast<size_t>(n));
      std::uniform_real_distribution<float> d(-300.0f * scale, 300.0f * scale);
      std::uniform_int_distribution<int> k(-260, 260);
      for (int64_t i = 0; i < n; ++i) {
        // Values on and next to the half-way points (the rounding ties), specials, and random.
        const float h = (static_cast<float>(k(rng)) + 0.5f) * scale;
        switch (i % 8) {
          case 0: x[static_cast<size_t>(i)] = h; break;
          case 1: x[static_cast<size_t>(i)] = std::nextafter(h, 1e30f); break;
          case 2: x[static_cast<size_t>(i)] = std::nextafter(h, -1e30f); break;
          case 3: x[static_cast<size_t>(i)] = i % 24 == 3 ? NAN : i % 24 == 11 ? INFINITY : -INFINITY; break;
          default: x[static_cast<size_t>(i)] = d(rng);
        }
      }
      for (ChainStore st : {ChainStore::F32, ChainStore::U8, ChainStore::S16}) {
        for (int64_t len : {n, int64_t{7}, int64_t{23}}) {
          Buf<uint8_t> want(static_cast<size_t>(n * 4)), got(static_cast<size_t>(n * 4));
          chain_quantize_ref(x.data(), len, scale, zp, st, want.data());
          ks.quantize(x.data(), len, scale, zp, st, got.data());
          expect_same(
              want.data(), got.data(), len, st, 0.0,
              std::string(isa_name(isa)) + " quantize scale " + std::to_string(scale) + " zp " + std::to_string(zp));
        }
      }
      // The reference itself is QuantizeLinear's arithmetic (qmath::quantize).
      std::vector<uint8_t> q(static_cast<size_t>(n));
      chain_quantize_ref(x.data(), n, scale, zp, ChainStore::U8, q.data());
      for (int64_t i = 0; i < n; ++i)
        ASSERT_EQ(q[static_cast<size_t>(i)], qmath::quantize(x[static_cast<size_t>(i)], scale, zp, 0, 255)) << i;
    }
  }
}

// --- whole chains against a scalar oracle ----------------------------------------------------------

// One layer of a test chain: [M, C/group, kh, kw], stride, pads (t, l, b, r).
struct LayerSpec {
  int64_t m, c, group, kh, kw, s, pt, pl, pb, pr;
};

// A MobileNet-style body: a narrow entry convolution (3 channels, stride 2), depthwise / pointwise
// pairs (stride 1 and 2, asymmetric pads), a pointwise layer with a channel count that is not a
// multiple of 16 and a strided pointwise one.
const LayerSpec kChain[] = {
    {16, 3, 1, 3, 3, 2, 1, 1, 1, 1},   {16, 16, 16, 3, 3, 1, 1, 1, 1, 1}, {24, 16, 1, 1, 1, 1, 0, 0, 0, 0},
    {24, 24, 24, 3, 3, 2, 0, 1, 1, 0}, {40, 24, 1, 1, 1, 1, 0, 0, 0, 0},  {40, 40, 40, 5, 5, 1, 2, 2, 2, 2},
    {20, 40, 1, 1, 1, 2, 0, 0, 0, 0},
};

ConvParams layer_params(const LayerSpec& l, int64_t n, int64_t h, int64_t w) {
  ConvParams p;
  p.batch = n;
  p.in_channels = l.c;
  p.out_channels = l.m;
  p.group = l.group;
  p.spatial_rank = 2;
  p.in_size[0] = h;
  p.in_size[1] = w;
  p.kernel[0] = l.kh;
  p.kernel[1] = l.kw;
  p.stride[0] = p.stride[1] = l.s;
  p.pad_begin[0] = l.pt;
  p.pad_begin[1] = l.pl;
  p.out_size[0] = conv_output_size(h, l.kh, l.s, 1, l.pt, l.pb);
  p.out_size[1] = conv_output_size(w, l.kw, l.s, 1, l.pl, l.pr);
  return p;
}

struct ChainData {
  std::vector<std::vector<float>> wf, bias, scale;
  std::vector<std::vector<int32_t>> wi, bias_i32;
  std::vector<int32_t> zp;  // Static: activation zero points (kernel values), one per boundary
};

ChainDesc make_desc(ChainKind kind, ChainData& cd, std::mt19937& rng, bool mean) {
  ChainDesc d;
  d.kind = kind;
  d.mean = mean;
  d.mean_scale = 0.02f;
  std::uniform_real_distribution<float> r(-0.5f, 0.5f), sc(0.002f, 0.02f);
  std::uniform_int_distribution<int> w8(-128, 127), z(60, 200), b32(-2000, 2000);
  const size_t nl = sizeof(kChain) / sizeof(kChain[0]);
  cd.zp.clear();
  for (size_t i = 0; i <= nl; ++i) cd.zp.push_back(z(rng));
  for (size_t i = 0; i < nl; ++i) {
    const LayerSpec& s = kChain[i];
    const int64_t count = s.m * (s.c / s.group) * s.kh * s.kw;
    cd.wf.emplace_back();
    cd.wi.emplace_back();
    cd.bias.emplace_back();
    cd.scale.emplace_back();
    cd.bias_i32.emplace_back();
    for (int64_t k = 0; k < count; ++k) {
      cd.wf.back().push_back(r(rng));
      cd.wi.back().push_back(w8(rng));
    }
    for (int64_t k = 0; k < s.m; ++k) {
      cd.bias.back().push_back(r(rng));
      cd.scale.back().push_back(kind == ChainKind::Static ? sc(rng) * 0.05f : sc(rng));
      cd.bias_i32.back().push_back(b32(rng));
    }
    ChainLayerDesc l;
    l.in_channels = s.c;
    l.out_channels = s.m;
    l.group = s.group;
    l.kernel[0] = s.kh;
    l.kernel[1] = s.kw;
    l.stride[0] = l.stride[1] = s.s;
    l.pad_begin[0] = s.pt;
    l.pad_begin[1] = s.pl;
    l.pad_end[0] = s.pb;
    l.pad_end[1] = s.pr;
    l.w_f32 = cd.wf.back().data();
    l.w_int = cd.wi.back().data();
    l.bias = kind == ChainKind::Static ? nullptr : cd.bias.back().data();
    l.bias_i32 = cd.bias_i32.back().data();
    l.scale = cd.scale.back().data();
    l.clamp = true;
    l.lo = kind == ChainKind::F32 ? 0.0f : -0.1f;
    l.hi = 6.0f;
    l.x_zero_point = cd.zp[i];
    l.y_zero_point = cd.zp[i + 1];
    d.layers.push_back(l);
  }
  return d;
}

// The chain computed layer by layer in NCHW with the scalar reference kernels and qmath, as the
// unfused graph does. Returns floats (F32, Dynamic, the means) or kernel-value bytes as floats.
std::vector<float> oracle(const ChainDesc& d, const ChainData& cd, const std::vector<float>& xf,
                          const std::vector<uint8_t>& x8, int64_t n, int64_t h, int64_t w) {
  std::vector<float> cur = xf;
  std::vector<uint8_t> cur8 = x8;  // Static: kernel values (uint8)
  for (size_t i = 0; i < d.layers.size(); ++i) {
    const ChainLayerDesc& l = d.layers[i];
    const ConvParams p = layer_params(kChain[i], n, h, w);
    const int64_t out = n * l.out_channels * p.out_size[0] * p.out_size[1];
    const int64_t plane = p.out_size[0] * p.out_size[1];
    std::vector<float> next(static_cast<size_t>(out));
    if (d.kind == ChainKind::F32) {
      conv_f32_ref(p, cur.data(), cd.wf[i].data(), cd.bias[i].data(), next.data());
      for (float& v : next) v = std::min(std::max(v, l.lo), l.hi);
      cur = next;
    } else {
      std::vector<uint8_t> xq;
      int32_t zx = 0;
      float xs = 1.0f;
      if (d.kind == ChainKind::Dynamic) {
        float lo = std::numeric_limits<float>::infinity(), hi = -lo;
        for (float v : cur) {
          lo = std::min(lo, v);
          hi = std::max(hi, v);
        }
        const qmath::QParams q = qmath::dynamic_qparams_uint8(lo, hi);
        xs = q.scale;
        zx = q.zero_point;
        for (float v : cur) xq.push_back(static_cast<uint8_t>(qmath::quantize(v, q.scale, q.zero_point, 0, 255)));
      } else {
        xq = cur8;
        zx = l.x_zero_point;
      }
      std::vector<int8_t> wq(cd.wi[i].begin(), cd.wi[i].end());
      const int32_t zw = 0;
      std::vector<int32_t> acc(static_cast<size_t>(out));
      std::vector<uint8_t> scratch(static_cast<size_t>(qconv_scratch_size(p)));
      qconv_u8s8_ref(p, xq.data(), zx, wq.data(), &zw, 0, acc.data(), scratch.data());
      std::vector<uint8_t> next8(static_cast<size_t>(out));
      for (int64_t k = 0; k < out; ++k) {
        const int64_t c = (k / plane) % l.out_channels;
        if (d.kind == ChainKind::Dynamic) {
          float v = static_cast<float>(acc[static_cast<size_t>(k)]) * (xs * l.scale[c]);
          v = v + l.bias[c];
          next[static_cast<size_t>(k)] = std::min(std::max(v, l.lo), l.hi);
        } else {
          const int32_t a = static_cast<int32_t>(static_cast<uint32_t>(acc[static_cast<size_t>(k)]) +
                                                 static_cast<uint32_t>(l.bias_i32[c]));
          next8[static_cast<size_t>(k)] =
              static_cast<uint8_t>(qmath::requantize(a, l.scale[c], l.y_zero_point, 0, 255));
        }
      }
      cur = next;
      cur8 = next8;
    }
    h = p.out_size[0];
    w = p.out_size[1];
  }
  const int64_t m = d.layers.back().out_channels, plane = h * w;
  if (!d.mean) {
    if (d.kind != ChainKind::Static) return cur;
    return std::vector<float>(cur8.begin(), cur8.end());
  }
  std::vector<float> mean;
  for (int64_t img = 0; img < n; ++img)
    for (int64_t c = 0; c < m; ++c) {
      double s = 0.0;
      for (int64_t p = 0; p < plane; ++p) {
        const size_t at = static_cast<size_t>((img * m + c) * plane + p);
        s += d.kind == ChainKind::Static
                 ? static_cast<double>(
                       static_cast<float>(static_cast<int32_t>(cur8[at]) - d.layers.back().y_zero_point) * d.mean_scale)
                 : static_cast<double>(cur[at]);
      }
      mean.push_back(static_cast<float>(s / static_cast<double>(plane)));
    }
  return mean;
}

TEST_P(ChainKernels, WholeChainsMatchTheScalarOracle) {
  const Isa isa = GetParam();
  REQUIRE_ISA(isa);
  std::mt19937 rng(5);
  const int64_t n = 2, h = 23, w = 30;
  for (ChainKind kind : {ChainKind::F32, ChainKind::Dynamic, ChainKind::Static}) {
    for (bool mean : {false, true}) {
      ChainData cd;
      const ChainDesc d = make_desc(kind, cd, rng, mean);
      ASSERT_EQ(ConvChain::declines(d), "");
      ConvChain chain(isa, d);
      std::vector<float> xf(static_cast<size_t>(n * 3 * h * w));
      std::vector<uint8_t> x8(xf.size());
      std::uniform_real_distribution<float> r(-1.0f, 2.0f);
      std::uniform_int_distribution<int> b(0, 255);
      for (size_t i = 0; i < xf.size(); ++i) {
        xf[i] = r(rng);
        x8[i] = static_cast<uint8_t>(b(rng));
      }
      const std::vector<float> want = oracle(d, cd, xf, x8, n, h, w);
      int64_t oh = 0, ow = 0;
      ASSERT_TRUE(chain.out_size(h, w, &oh, &ow, nullptr));
      const int64_t m = chain.out_channels();
      const size_t count = static_cast<size_t>(mean ? n * m : n * m * oh * ow);
      ASSERT_EQ(count, want.size());
      for (int threads : {1, 3}) {
        std::vector<float> got(count, NAN);
        std::vector<uint8_t> got8(count, 0);
        const bool bytes = kind == ChainKind::Static && !mean;
        chain.run(kind == ChainKind::Static ? static_cast<const void*>(x8.data()) : xf.data(), n, h, w,
                  bytes ? static_cast<void*>(got8.data()) : got.data(), threads);
        const std::string what = std::string(isa_name(isa)) + " kind " + std::to_string(static_cast<int>(kind)) +
                                 (mean ? " mean" : "") + " threads " + std::to_string(threads);
        for (size_t i = 0; i < count; ++i) {
          const float g = bytes ? static_cast<float>(got8[i]) : got[i];
          if (kind == ChainKind::F32)
            ASSERT_NEAR(want[i], g, 1e-4) << what << " at " << i;
          else
            ASSERT_EQ(want[i], g) << what << " at " << i;
        }
      }
    }
  }
}

// --- c4 integer tiles (QTileC4, the one-group stride-1 convolutions) and the QDQ add --------------

TEST(ChainKernelsC4, TilesMatchReferenceExactly) {
  REQUIRE_ISA(Isa::Avx512Vnni);  // the c4 tiles are a VNNI kernel
#if defined(TINYQ_X86_KERNELS)
  std::mt19937 rng(6);
  const QEpilogueKind kinds[] = {QEpilogueKind::Int32, QEpilogueKind::Dequant, QEpilogueKind::RequantU8,
                                 QEpilogueKind::RequantS8};
  for (int fill = 0; fill < 2; ++fill) {
    for (int64_t m : {1, 3, 4, 7, 16, 21, 32}) {
      for (int64_t n : {1, 3, 4, 5, 15, 16, 17, 33, 50}) {
        for (QEpilogueKind kind : kinds) {
          for (bool res : {false, true}) {
            if (res && kind != QEpilogueKind::Dequant) continue;
            const int64_t ksteps = 1 + (m + n) % 20;
            const int64_t span = (n + 16) * 4 + ksteps * 8;  // the tiles read up to 16 positions past n
            std::uniform_int_distribution<int> a8(0, 255), w8(-128, 127), coin(0, 1);
            Buf<uint8_t> src(static_cast<size_t>(span));
            for (int64_t i = 0; i < span; ++i)
              src[static_cast<size_t>(i)] = static_cast<uint8_t>(fill ? (coin(rng) ? 255 : 0) : a8(rng));
            const int64_t blocks = (m + 15) / 16;
            std::vector<int8_t> w(static_cast<size_t>(blocks * ksteps * 64), 0);
            for (int64_t c = 0; c < m; ++c)
              for (int64_t j = 0; j < ksteps; ++j)
                for (int i = 0; i < 4; ++i)
                  w[c4_weight_index(ksteps, c, j, i)] = static_cast<int8_t>(fill ? (coin(rng) ? 127 : -128) : w8(rng));
            std::vector<int64_t> k_off(static_cast<size_t>(ksteps));
            for (int64_t j = 0; j < ksteps; ++j) k_off[static_cast<size_t>(j)] = j * 8;
            std::vector<float> scale(static_cast<size_t>(m)), bias(static_cast<size_t>(m)),
                r(static_cast<size_t>(m * n));
            std::vector<int32_t> corr(static_cast<size_t>(m));
            std::uniform_real_distribution<float> sd(1e-5f, 1e-3f), bd(-1.0f, 1.0f);
            for (int64_t c = 0; c < m; ++c) {
              scale[static_cast<size_t>(c)] = sd(rng);
              bias[static_cast<size_t>(c)] = bd(rng);
              corr[static_cast<size_t>(c)] = static_cast<int32_t>(rng() % 20001) - 10000;
            }
            for (float& v : r) v = bd(rng);
            std::vector<uint8_t> want(static_cast<size_t>(m * n * 4)), got(want.size());
            // Dequant: the running range the tiles keep of what they store (a following
            // DynamicQuantizeLinear's scan), started from a range of earlier tiles.
            float mm[2][2] = {{-0.5f, 0.5f}, {-0.5f, 0.5f}};
            const bool dq = kind == QEpilogueKind::Dequant;
            for (int pass = 0; pass < 2; ++pass) {
              QTileC4 t;
              t.epi.minmax = dq ? mm[pass] : nullptr;
              t.src = src.data();
              t.k_off = k_off.data();
              t.ksteps = ksteps;
              t.n = n;
              t.w = w.data();
              t.m = m;
              t.epi.kind = kind;
              t.epi.corr = corr.data();
              t.epi.scale = scale.data();
              t.epi.bias = bias.data();
              t.epi.res = res ? r.data() : nullptr;
              t.epi.ld_res = n;
              t.epi.clamp = !dq;  // unclamped Dequant values: extremes the range must find
              t.epi.lo = -3.0f;
              t.epi.hi = 2.5f;
              t.epi.zero_point = kind == QEpilogueKind::RequantS8 ? -9 : 41;
              t.epi.dst = pass == 0 ? want.data() : got.data();
              t.epi.ld_dst = n;
              (pass == 0 ? qtile_c4_u8s8_ref : qtile_c4_u8s8_avx512vnni)(t);
            }
            ASSERT_EQ(want, got) << "c4 m" << m << " n" << n << " ksteps " << ksteps << " kind "
                                 << static_cast<int>(kind) << (res ? " res" : "") << " fill " << fill;
            if (dq) {
              float lo = 0.0f, hi = 0.0f;
              minmax_f32_ref(reinterpret_cast<const float*>(want.data()), m * n, &lo, &hi);
              EXPECT_EQ(mm[0][0], std::min(lo, -0.5f));
              EXPECT_EQ(mm[0][1], std::max(hi, 0.5f));
              EXPECT_EQ(mm[1][0], mm[0][0]) << "c4 m" << m << " n" << n;
              EXPECT_EQ(mm[1][1], mm[0][1]) << "c4 m" << m << " n" << n;
            }
          }
        }
      }
    }
  }
  // The interleave of four channel rows (a missing row gives the fill value).
  for (int64_t n : {1, 15, 16, 17, 100}) {
    std::vector<uint8_t> r0(static_cast<size_t>(n)), r1(r0.size()), r3(r0.size());
    for (auto* v : {&r0, &r1, &r3})
      for (uint8_t& b : *v) b = static_cast<uint8_t>(rng());
    const uint8_t* rows[4] = {r0.data(), r1.data(), nullptr, r3.data()};
    std::vector<uint8_t> want(static_cast<size_t>(4 * n)), got(want.size());
    pack_c4_ref(rows, n, 0x80, 7, want.data());
    pack_c4_avx2(rows, n, 0x80, 7, got.data());
    ASSERT_EQ(want, got) << "pack_c4 n" << n;
    EXPECT_EQ(want[2], 7);
    EXPECT_EQ(want[0], static_cast<uint8_t>(r0[0] ^ 0x80));
  }
#endif
}

// Rounding ties over many binades: scales from 2^-27 to 2^12 (and subnormal, huge and zero
// scales), values a few ulps either side of every tie and of the integers. A kernel that
// multiplied by the reciprocal instead of dividing would differ here.
TEST_P(ChainKernels, QuantizeTiesAcrossScales) {
  const Isa isa = GetParam();
  REQUIRE_ISA(isa);
  const Kernels ks = kernels_for(isa);
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> log_scale(-27.0f, 12.0f);
  std::vector<float> scales = {1e-40f, 3e38f, 0.0f, 1.0f / 255.0f, 6.0f / 255.0f};
  for (int i = 0; i < 200; ++i) scales.push_back(std::exp2(log_scale(rng)));
  std::uniform_int_distribution<int> k(-300, 300), zps(0, 255);
  for (float scale : scales) {
    const int32_t zp = zps(rng);
    std::vector<float> x;
    for (int t = 0; t < 64; ++t) {
      const float base = static_cast<float>(k(rng)) + (t % 2 ? 0.5f : 0.0f);
      float v = base * scale;
      for (int j = 0; j < 4; ++j) v = std::nextafter(v, -1e30f);
      for (int j = 0; j < 9; ++j, v = std::nextafter(v, 1e30f)) x.push_back(v);
    }
    std::vector<uint8_t> want(x.size()), got(x.size());
    chain_quantize_ref(x.data(), static_cast<int64_t>(x.size()), scale, zp, ChainStore::U8, want.data());
    ks.quantize(x.data(), static_cast<int64_t>(x.size()), scale, zp, ChainStore::U8, got.data());
    ASSERT_EQ(want, got) << isa_name(isa) << " scale " << scale << " zp " << zp;
    if (isa == Isa::Avx2 || isa == Isa::Avx512 || isa == Isa::Avx512Vnni) {
      const QuantizeU8Fn quantize_u8_avx2 = TINYQ_X86_KERNEL(quantize_f32_u8_avx2);
      quantize_u8_avx2(x.data(), static_cast<int64_t>(x.size()), scale, zp, got.data());
      ASSERT_EQ(want, got) << "quantize_f32_u8_avx2 scale " << scale << " zp " << zp;
    }
  }
}

// The closing mean: the AVX-512 sums (up to 128 channels in registers at once) give the
// reference's floats bit for bit, for channel counts around 16 and 128 and a static chain's
// dequantising scale.
TEST(ChainKernelsMean, Avx512MatchesReference) {
  REQUIRE_ISA(Isa::Avx512);
  const ChainMeanFn mean_avx512 = TINYQ_X86_KERNEL(chain_mean_avx512);
  std::mt19937 rng(12);
  std::uniform_real_distribution<float> d(-1000.0f, 1000.0f);
  for (int64_t m : {1, 16, 20, 128, 130, 200})
    for (int64_t positions : {1, 7, 196})
      for (float scale : {1.0f, 0.037f}) {
        const int64_t ms = (m + 15) / 16 * 16;
        std::vector<float> src(static_cast<size_t>(positions * ms));
        for (float& v : src) v = d(rng);
        std::vector<float> want(static_cast<size_t>(m)), got(want.size(), -1.0f);
        chain_mean_ref(src.data(), positions, m, ms, scale, want.data());
        mean_avx512(src.data(), positions, m, ms, scale, got.data());
        ASSERT_EQ(0, std::memcmp(want.data(), got.data(), want.size() * sizeof(float)))
            << "m " << m << " positions " << positions << " scale " << scale;
      }
}

TEST_P(ChainKernels, QAddMatchesReferenceExactly) {
  const Isa isa = GetParam();
  REQUIRE_ISA(isa);
  const QAddFn fn = qadd_fn(isa);
  std::mt19937 rng(7);
  for (int64_t n : {1, 15, 16, 17, 100, 1000}) {
    for (int types = 0; types < 8; ++types) {
      std::vector<uint8_t> a(static_cast<size_t>(n)), b(a.size()), want(a.size()), got(a.size());
      for (size_t i = 0; i < a.size(); ++i) {
        a[i] = static_cast<uint8_t>(i % 7 == 0 ? 255 : i % 7 == 1 ? 0 : rng());
        b[i] = static_cast<uint8_t>(i % 5 == 0 ? 128 : rng());
      }
      QAddArgs t;
      t.a = a.data();
      t.a_u8 = types & 1;
      t.sa = 0.02f;
      t.za = t.a_u8 ? 130 : -3;
      t.b = b.data();
      t.b_u8 = types & 2;
      t.sb = 0.037f;
      t.zb = t.b_u8 ? 9 : 100;
      t.y_u8 = types & 4;
      t.sy = 0.041f;
      t.zy = t.y_u8 ? 120 : -5;
      t.n = n;
      t.y = want.data();
      qadd_ref(t);
      t.y = got.data();
      fn(t);
      ASSERT_EQ(want, got) << isa_name(isa) << " qadd n" << n << " types " << types;
    }
  }
}

TEST(ChainKernelsDeclines, ShapesTheKernelsDoNotTake) {
  ChainDesc d;
  EXPECT_NE(ConvChain::declines(d), "");  // no layers
  std::vector<float> w(16 * 8 * 9, 0.1f);
  ChainLayerDesc l;
  l.in_channels = 16;
  l.out_channels = 16;
  l.group = 2;  // grouped, not depthwise
  l.kernel[0] = l.kernel[1] = 3;
  l.w_f32 = w.data();
  d.layers = {l};
  EXPECT_NE(ConvChain::declines(d).find("depthwise"), std::string::npos);
  // Integer weights outside int8 for an integer dense layer.
  std::vector<int32_t> wi(16 * 16, 200);
  std::vector<float> sc(16, 1.0f);
  ChainLayerDesc li;
  li.in_channels = 16;
  li.out_channels = 16;
  li.w_int = wi.data();
  li.scale = sc.data();
  ChainDesc di;
  di.kind = ChainKind::Static;
  di.layers = {li};
  EXPECT_NE(ConvChain::declines(di).find("int8"), std::string::npos);
  // Zero points that do not chain.
  std::vector<int32_t> ok(16 * 16, 1);
  li.w_int = ok.data();
  ChainLayerDesc l2 = li;
  li.y_zero_point = 10;
  l2.x_zero_point = 11;
  di.layers = {li, l2};
  EXPECT_NE(ConvChain::declines(di).find("zero points"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Isas, ChainKernels, ::testing::Values(Isa::Ref, Isa::Avx2, Isa::Avx512, Isa::Avx512Vnni),
                         [](const ::testing::TestParamInfo<Isa>& i) { return std::string(isa_name(i.param)); });

}  // namespace
}  // namespace tinyq::kernels
