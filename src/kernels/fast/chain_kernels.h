// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// Micro-kernels of the convolution chains (kernels/fast/conv_chain.h): convolutions whose
// activations stay channels-last ("NHWC") from one layer to the next, so no layer converts its
// input or output layout. Lanes are channels: a vector holds 16 consecutive channels of one
// position (two 8-lane halves on AVX2). Channel counts are padded to multiples of 16 in every
// buffer the chain writes; padded weights are zero, so padded lanes never reach a real output.
//
// Buffers carry a halo: the producer of a layer's input writes it into the interior of a
// buffer padded by that layer's pads, whose border holds the value of "nothing" (0, or the
// zero point of 8-bit data). A convolution then reads every tap at a fixed offset from its
// output position's window, without bounds tests.
//
// Element formats of a buffer (ChainStore):
//   F32  float: real values (fp32 chains), or for the integer chains the centred integers
//        x - zero_point, exact in float (the depthwise and narrow-input layers accumulate them
//        in fp32, exactly: every partial sum stays below 2^24, which the chain checks);
//   U8   kernel values of 8-bit data: uint8 as it is, int8 as (x ^ 0x80) = x + 128 with the
//        zero point moved by 128 (vpdpbusd multiplies unsigned by signed bytes);
//   S16  the same kernel values zero-extended to int16 (the AVX2 kernel without VNNI pairs
//        int16 values with vpmaddwd, exactly).
//
// Each kernel has a portable `_ref` version (chain_ref.cpp: the fallback and the test oracle)
// and SIMD versions in src/kernels/x86/chain_<isa>.cpp.

#include <cstdint>

namespace tinyq::kernels {

enum class ChainStore : uint8_t { F32, U8, S16 };

/// What happens to a lane's sum (fp32 sum s, or exact int32 sum for the integer kernels; the
/// float-exact integer kernels convert their exact float sum to int32 first):
///   F32:      y = s (+ bias[c]) (clamp lo..hi)                                   -> F32
///   Dequant:  v = s - corr[c];  y = float(v) * scale[c] (+ bias[c]) (clamp)       -> F32
///             (the dynamic-quantisation chains: Cast -> Mul -> Add -> Clip, in that order
///             and with separate roundings, as the graph computes them)
///   Requant:  v = s - corr[c];  q = saturate(round_half_even(float(v) * scale[c]) + zero_point)
///             to [qmin, qmax]  -> U8 / S16 store q, F32 stores float(q - zero_point)
///             (QLinearConv's requantisation, qmath::requantize)
/// The integer subtraction wraps (int32), as the reference accumulators do.
enum class ChainEpi : uint8_t { F32, Dequant, Requant };

struct ChainEpilogue {
  ChainEpi kind = ChainEpi::F32;
  ChainStore store = ChainStore::F32;
  const float* bias = nullptr;    ///< per channel, or null
  const float* scale = nullptr;   ///< per channel (Dequant, Requant)
  const int32_t* corr = nullptr;  ///< per channel (Dequant, Requant), or null for 0
  /// The fp32 kernels' integer modes: corr as floats, given when |corr| plus any partial sum's
  /// magnitude stays below 2^24 (the chain checks the bound), so the kernels may start their
  /// sums at -corr and the sum needs no trip through int32; every partial sum is exact. Or null.
  const float* corr_f = nullptr;
  bool clamp = false;
  float lo = 0.0f, hi = 0.0f;
  int32_t zero_point = 0, qmin = 0, qmax = 255;  ///< Requant
  /// Dequant: running {min, max} of the stored values (NaN skipped), updated in place; or null.
  /// The dynamic chains take the next DynamicQuantizeLinear's range from it.
  float* minmax = nullptr;
};

/// A dense (group 1) convolution over `n` consecutive output positions of one output row:
///     s[p][c] = sum_j  w[j][c] . a(p, j)        for every channel c < m (m a multiple of 16)
/// where a(p, j) is the k-step j of position p, the kg consecutive input elements at
///     src + p * src_step + k_off[j]
/// (kg = 1 for F32 input, 4 for U8 input and 2 for S16 input: for U8 / S16 a k-step is 4 / 2
/// consecutive channels of one tap). Weights are packed per 16-channel block as
/// [block][j][16][kg] (float, int8 and int16 respectively).
struct ChainDense {
  const void* src = nullptr;
  int64_t src_step = 0;
  const int64_t* k_off = nullptr;
  int64_t k = 0;  ///< k-steps
  int64_t n = 0;
  const void* w = nullptr;
  int64_t m = 0;
  ChainEpilogue epi;
  void* dst = nullptr;  ///< position p, channel c at dst + p * dst_step + c (elements of the store)
  int64_t dst_step = 0;
};

/// A depthwise convolution (one input and one output channel per group) over `n` output
/// positions of one row:
///     s[p][c] = sum_t w[t * m + c] * src[p * src_step + tap_off[t] + c]
/// in fp32 (the integer chains' centred values and weights are small integers: the sum is exact
/// and the epilogue takes it as an integer).
struct ChainDw {
  const void* src = nullptr;
  int64_t src_step = 0;
  const int64_t* tap_off = nullptr;
  int taps = 0;  ///< at most kChainDwMaxTaps
  int64_t n = 0;
  const float* w = nullptr;  ///< [taps][m]
  int64_t m = 0;
  ChainEpilogue epi;
  void* dst = nullptr;
  int64_t dst_step = 0;
};
constexpr int kChainDwMaxTaps = 49;

using ChainDenseFn = void (*)(const ChainDense&);
using ChainDwFn = void (*)(const ChainDw&);

void chain_dense_f32_ref(const ChainDense& d);
void chain_dense_u8_ref(const ChainDense& d);
void chain_dense_s16_ref(const ChainDense& d);
void chain_dw_f32_ref(const ChainDw& d);

void chain_dense_f32_avx2(const ChainDense& d);
void chain_dense_s16_avx2(const ChainDense& d);
void chain_dw_f32_avx2(const ChainDw& d);

void chain_dense_f32_avx512(const ChainDense& d);
void chain_dense_u8_avx512vnni(const ChainDense& d);
void chain_dw_f32_avx512(const ChainDw& d);
void chain_quantize_avx512(const float* src, int64_t n, float scale, int32_t zero_point, ChainStore store, void* dst);

/// DynamicQuantizeLinear's quantisation of n floats with a per-tensor scale and uint8 zero
/// point (qmath::quantize: divide, round half to even, saturate to [0, 255]), stored as
///   U8 / S16: q;   F32: float(q - zero_point)  (centred, for the float-exact kernels).
/// The spatial mean that closes a chain (ReduceMean over H and W, as ONNX Runtime computes it):
/// for each channel c < m, the sum over positions p in order of double(src[p * ms + c] * scale)
/// (the product in float: a static chain's DequantizeLinear), in double, divided by the
/// position count and rounded to float. ms (the row stride) is a multiple of 16.
using ChainMeanFn = void (*)(const float* src, int64_t positions, int64_t m, int64_t ms, float scale, float* dst);
void chain_mean_ref(const float* src, int64_t positions, int64_t m, int64_t ms, float scale, float* dst);
void chain_mean_avx512(const float* src, int64_t positions, int64_t m, int64_t ms, float scale, float* dst);

using ChainQuantizeFn = void (*)(const float* src, int64_t n, float scale, int32_t zero_point, ChainStore store,
                                 void* dst);
void chain_quantize_ref(const float* src, int64_t n, float scale, int32_t zero_point, ChainStore store, void* dst);
void chain_quantize_avx2(const float* src, int64_t n, float scale, int32_t zero_point, ChainStore store, void* dst);

}  // namespace tinyq::kernels
