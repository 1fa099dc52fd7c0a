// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// The interfaces between the ISA-neutral drivers (src/kernels/fast/*.cpp: geometry, packing,
// threading) and the micro-kernels, which exist once per ISA: a portable `_ref` version in
// src/kernels/fast/micro_ref.cpp (always built: the fallback and the oracle of the kernel
// tests) and SIMD versions in src/kernels/x86/<family>_<isa>.cpp, compiled with per-file ISA
// flags. The structs hold pointers, sizes and strides only.

#include <cstdint>

namespace tinyq::kernels {

// ---------------------------------------------------------------------------------------------
// fp32 convolution rows (also fp32 GEMM rows): "lanes = output positions".
//
// For one output row of one group, every output channel c of the row and position p:
//     acc[c][p] = sum_k w[c][k] * src[k_off[k] + p]
// i.e. the input vector of tap k for consecutive output positions is contiguous in memory
// (the drivers make it so: stride 1 convolutions read padded input rows directly, other
// strides read phase-split planes, a GEMM reads B's rows). Weights are packed per block of
// `mr` channels as [k][mr] so a block's taps sit together; the last block is zero-padded.
// Epilogue, in this order and with separate roundings (no FMA contraction, so an int8 path
// that accumulates exactly in fp32 can reproduce Cast -> Mul -> Add bit for bit):
//     v = acc;  v = v * scale[c] (if scale);  v = v + bias[c] (if bias);
//     v = v + res[c][p] (if res);  v = min(max(v, lo), hi) (if clamp)
struct ConvF32Row {
  const float* src = nullptr;    ///< base: tap k of position p reads src[k_off[k] + p]
  const int64_t* k_off = nullptr;
  int64_t k = 0;
  int64_t n = 0;                 ///< output positions in the row
  const float* w = nullptr;      ///< packed blocks; block b at w + b * k * mr
  int mr = 1;                    ///< channels per packed block
  /// Unpacked weights instead (one block, GEMM rows read in place): channel i, tap k at
  /// w[k * w_kstride + min(i, w_rows - 1) * w_istride]. w_kstride 0 means packed.
  int64_t w_kstride = 0, w_istride = 0, w_rows = 0;
  int64_t m = 0;                 ///< output channels (valid rows over all blocks)
  const float* scale = nullptr;  ///< per channel, or null
  const float* bias = nullptr;   ///< per channel, or null
  float* dst = nullptr;          ///< channel c, position p at dst[c * ld_dst + p]
  int64_t ld_dst = 0;
  const float* res = nullptr;    ///< residual added before the clamp, same layout, or null
  int64_t ld_res = 0;
  bool clamp = false;
  float lo = 0.0f, hi = 0.0f;
};

using ConvF32RowFn = void (*)(const ConvF32Row&);

void conv_f32_row_ref(const ConvF32Row& r);
void conv_f32_row_avx2(const ConvF32Row& r);
void conv_f32_row_avx512(const ConvF32Row& r);

/// Channel-block sizes each ISA's row kernel is written for, largest first.
int conv_f32_block_rows(int isa_level, int64_t channels);

/// Depthwise planes: one channel of a convolution with one input and one output channel per
/// group, whole output plane per call. Output (oh, ow) of tap t reads
/// src[tap_off[t] + oh * src_pitch + ow]; weights stay in registers for the plane. Same
/// epilogue as ConvF32Row (scale, bias, residual, clamp; one channel).
struct DwF32Plane {
  const float* src = nullptr;
  const int64_t* tap_off = nullptr;
  int taps = 0;                   ///< at most kDwMaxTaps
  int64_t src_pitch = 0;
  int64_t rows = 0, cols = 0;     ///< output plane
  const float* w = nullptr;       ///< taps weights
  float scale = 1.0f;
  bool has_scale = false;
  float bias = 0.0f;
  bool has_bias = false;
  float* dst = nullptr;           ///< row pitch `cols`
  const float* res = nullptr;     ///< residual plane or null
  bool clamp = false;
  float lo = 0.0f, hi = 0.0f;
};
constexpr int kDwMaxTaps = 25;
using DwF32PlaneFn = void (*)(const DwF32Plane&);
void dw_f32_plane_ref(const DwF32Plane& d);
void dw_f32_plane_avx2(const DwF32Plane& d);
void dw_f32_plane_avx512(const DwF32Plane& d);

/// Splits a row into `stride` phase rows: out[r][j] = src[j * stride + r] for the j with
/// j * stride + r < n (2 and other strides; the AVX2 version vectorises stride 2).
void deinterleave_f32_ref(const float* src, int64_t n, int64_t stride, float* const* out);
void deinterleave_f32_avx2(const float* src, int64_t n, int64_t stride, float* const* out);

// ---------------------------------------------------------------------------------------------
// Integer (u8 x s8 -> s32) tiles: "lanes = output channels".
//
// Activations are 8-bit values in position-major layout (NHWC for a convolution, row-major A
// for a GEMM): position p's k-step j is the group of `kg` consecutive elements at
//     src + p * step + k_off[j]
// (kg = 4 bytes for VNNI and the portable kernel, 2 int16 values for the AVX2 kernel, whose
// activations are widened to int16 by the driver). Weights are packed per block of `nb`
// channels as [ksteps][nb][kg] (int8; int16 for AVX2), zero-padded. For every channel c and
// position p < n:
//     acc[p][c] = sum_j sum_i w[j][c][i] * a[p][j][i]        (exact int32, wrapping)
// then the epilogue writes, with corr[c] the per-channel int32 correction
// (x zero point x column sums of the weights, less an int32 bias):
//     Int32:   dst_i32 = acc - corr
//     Dequant: v = float(acc - corr) * scale[c]; v = v + bias[c]; v = v + res; clamp   (fp32)
//     Requant: dst_8 = saturate(round_half_even(float(acc - corr) * scale[c]) + zero_point)
// into channel-major planes (NCHW: dst + c * ld_dst + p) or position-major rows
// (dst + p * ld_dst + c).
enum class QEpilogueKind { Int32, Dequant, RequantU8, RequantS8 };

struct QTileRows {
  const void* src = nullptr;      ///< uint8 (VNNI, ref) or int16 (AVX2) activations
  int64_t step = 0;               ///< elements between consecutive positions
  const int64_t* k_off = nullptr; ///< element offset of each k-step
  int64_t ksteps = 0;
  int64_t n = 0;                  ///< positions
  const void* w = nullptr;        ///< packed weights, all channel blocks
  int64_t m = 0;                  ///< output channels
  // epilogue
  QEpilogueKind kind = QEpilogueKind::Int32;
  const int32_t* corr = nullptr;  ///< per channel, or null for 0
  const float* scale = nullptr;   ///< per channel (Dequant, Requant)
  const float* bias = nullptr;    ///< per channel or null (Dequant)
  const float* res = nullptr;     ///< residual (Dequant), same layout as dst, or null
  int64_t ld_res = 0;
  bool clamp = false;
  float lo = 0.0f, hi = 0.0f;
  int32_t zero_point = 0;         ///< Requant
  void* dst = nullptr;
  int64_t ld_dst = 0;
  bool channel_major = true;      ///< NCHW planes (true) or position-major rows (false)
  /// Dequant, or null: the running {min, max} of the stored values, NaN skipped (the range a
  /// following DynamicQuantizeLinear scans), updated in place. Taken by the c4 tiles and the
  /// reference epilogue only.
  float* minmax = nullptr;
};

using QTileRowsFn = void (*)(const QTileRows&);

/// Per-ISA shape of the packed weights and activations.
struct QKernelLayout {
  int nb;          ///< channels per block
  int kg;          ///< activation elements per k-step
  int act_bytes;   ///< 1: uint8 activations, 2: int16 (zero-extended uint8)
  int w_bytes;     ///< 1: int8 weights, 2: int16
  /// Channels a tile computes at the least: a block's last channels cost this many lanes, not
  /// nb (the AVX2 kernel runs a last block of <= 8 channels on one ymm half).
  int lane_block;
};

void qtile_rows_u8s8_ref(const QTileRows& t);
void qtile_rows_u8s8_avx2(const QTileRows& t);
void qtile_rows_u8s8_avx512vnni(const QTileRows& t);

/// Integer convolution tiles on "c4" planes (stride 1): the input holds groups of 4 input
/// channels interleaved per position, [group][row][col][4] bytes (uint8 kernel values), so 16
/// consecutive positions of a row are 64 consecutive bytes. A vector's lanes are those 16
/// positions: one load per k-step feeds one vpdpbusd per output channel, with the channel's 4
/// weights broadcast, and accumulator c ends as channel c's 16 positions, stored into its plane
/// as a whole. For positions p < n (consecutive, 4 bytes apart from src) and channels c < m:
///     acc[p][c] = sum_j sum_i w[j][c][i] * src[p * 4 + k_off[j] + i]        (exact int32)
/// then the QTileRows epilogue (corr, scale, bias, residual, clamp, zero point) into
/// channel-major planes (dst + c * ld_dst + p). Weights are packed per 16-channel block as
/// [block][j][channel c % 16][4 bytes] (c4_weight_index); channels past m are zero. The tiles
/// read up to 64 bytes (16 positions) past src + n * 4 + k_off[j].
struct QTileC4 {
  const uint8_t* src = nullptr;
  const int64_t* k_off = nullptr;  ///< byte offset of each k-step from position 0's window
  int64_t ksteps = 0;
  int64_t n = 0;
  const int8_t* w = nullptr;
  int64_t m = 0;
  QTileRows epi;                   ///< kind, corr, scale, bias, res, ld_res, clamp, lo, hi, zero_point, dst, ld_dst
};
using QTileC4Fn = void (*)(const QTileC4&);
/// Where byte i (input channel 4 q + i of k-step j's group q) of output channel c's weights goes
/// in QTileC4::w, for `ksteps` k-steps; the array holds ceil(m / 16) * ksteps * 64 bytes.
inline size_t c4_weight_index(int64_t ksteps, int64_t c, int64_t j, int64_t i) {
  return static_cast<size_t>(((c / 16 * ksteps + j) * 16 + c % 16) * 4 + i);
}
void qtile_c4_u8s8_ref(const QTileC4& t);
void qtile_c4_u8s8_avx512vnni(const QTileC4& t);

/// dst[4 * i + k] = rows[k][i] ^ flip for i < n and k < 4 (a null row gives `fill`): four
/// channel rows interleaved into the c4 planes' dwords.
using PackC4Fn = void (*)(const uint8_t* const* rows, int64_t n, uint8_t flip, uint8_t fill, uint8_t* dst);
void pack_c4_ref(const uint8_t* const* rows, int64_t n, uint8_t flip, uint8_t fill, uint8_t* dst);
void pack_c4_avx2(const uint8_t* const* rows, int64_t n, uint8_t flip, uint8_t fill, uint8_t* dst);

constexpr QKernelLayout kQLayoutRef{16, 4, 1, 1, 16};
constexpr QKernelLayout kQLayoutAvx2{16, 2, 2, 2, 8};
constexpr QKernelLayout kQLayoutVnni{16, 4, 1, 1, 16};

// ---------------------------------------------------------------------------------------------
// Element-wise helpers of the dynamic-quantisation paths.

/// Smallest and largest of n floats, NaNs skipped; both 0 when none (as minmax_f32_ref).
using MinMaxFn = void (*)(const float* src, int64_t n, float* lo, float* hi);
void minmax_f32_avx2(const float* src, int64_t n, float* lo, float* hi);

/// dst[i] = saturate(round_half_even(src[i] / scale) + zero_point) to [0, 255] (QuantizeLinear
/// to uint8, with its NaN and saturation rules), n values.
using QuantizeU8Fn = void (*)(const float* src, int64_t n, float scale, int32_t zero_point, uint8_t* dst);
void quantize_f32_u8_avx2(const float* src, int64_t n, float scale, int32_t zero_point, uint8_t* dst);
void quantize_f32_u8_row_ref(const float* src, int64_t n, float scale, int32_t zero_point, uint8_t* dst);

/// QuantizeLinear to int8 (range [-128, 127]), otherwise as the uint8 version.
using QuantizeS8Fn = void (*)(const float* src, int64_t n, float scale, int32_t zero_point, int8_t* dst);
void quantize_f32_s8_avx2(const float* src, int64_t n, float scale, int32_t zero_point, int8_t* dst);
void quantize_f32_s8_row_ref(const float* src, int64_t n, float scale, int32_t zero_point, int8_t* dst);

/// DequantizeLinear of n 8-bit values: dst = float(q - zero_point) * scale.
using DequantizeFn = void (*)(const void* src, bool is_u8, int64_t n, float scale, int32_t zero_point, float* dst);
void dequantize_8_f32_avx2(const void* src, bool is_u8, int64_t n, float scale, int32_t zero_point, float* dst);
void dequantize_8_f32_row_ref(const void* src, bool is_u8, int64_t n, float scale, int32_t zero_point, float* dst);

/// The QDQ residual add, as the float graph computes it: dequantise both operands, add in
/// fp32, quantise the sum (each step rounded as its op rounds it):
///     y = saturate(round_half_even(((a - za) * sa + (b - zb) * sb) / sy) + zy)
/// a, b and y are 8-bit, each uint8 or int8 as flagged.
struct QAddArgs {
  const void* a = nullptr;
  bool a_u8 = false;
  float sa = 1.0f;
  int32_t za = 0;
  const void* b = nullptr;
  bool b_u8 = false;
  float sb = 1.0f;
  int32_t zb = 0;
  void* y = nullptr;
  bool y_u8 = false;
  float sy = 1.0f;
  int32_t zy = 0;
  int64_t n = 0;
};
using QAddFn = void (*)(const QAddArgs&);
void qadd_avx2(const QAddArgs& args);
void qadd_avx512(const QAddArgs& args);
void qadd_ref(const QAddArgs& args);

/// Requantisation of exact integer sums held in fp32 (the exact-fp32 integer path):
/// dst = saturate(round_half_even(float(int(acc) + bias) * mult) + zero_point), 8-bit.
using RequantF32AccFn = void (*)(const float* acc, int64_t n, int32_t bias, float mult, int32_t zero_point, bool u8,
                                 void* dst);
void requant_f32acc_ref(const float* acc, int64_t n, int32_t bias, float mult, int32_t zero_point, bool u8, void* dst);
void requant_f32acc_avx2(const float* acc, int64_t n, int32_t bias, float mult, int32_t zero_point, bool u8, void* dst);

/// Position-major ("NHWC") packing of `channels` rows of n uint8 values (row c at
/// src + c * ld_src): dst[p * step + c] = src[c * ld_src + p] ^ flip, for c < channels; the
/// lanes [channels, pad_to) of every position are set to 0. flip = 0x80 turns int8 data into
/// uint8 data offset by 128. The int16 version zero-extends (the AVX2 integer kernel's input).
using PackNhwcU8Fn = void (*)(const uint8_t* src, int64_t ld_src, int64_t channels, int64_t pad_to, int64_t n,
                              uint8_t flip, uint8_t* dst, int64_t step);
using PackNhwcS16Fn = void (*)(const uint8_t* src, int64_t ld_src, int64_t channels, int64_t pad_to, int64_t n,
                               uint8_t flip, int16_t* dst, int64_t step);
void pack_nhwc_u8_ref(const uint8_t* src, int64_t ld_src, int64_t channels, int64_t pad_to, int64_t n, uint8_t flip,
                      uint8_t* dst, int64_t step);
void pack_nhwc_s16_ref(const uint8_t* src, int64_t ld_src, int64_t channels, int64_t pad_to, int64_t n, uint8_t flip,
                       int16_t* dst, int64_t step);
void pack_nhwc_u8_avx2(const uint8_t* src, int64_t ld_src, int64_t channels, int64_t pad_to, int64_t n, uint8_t flip,
                       uint8_t* dst, int64_t step);
void pack_nhwc_s16_avx2(const uint8_t* src, int64_t ld_src, int64_t channels, int64_t pad_to, int64_t n, uint8_t flip,
                        int16_t* dst, int64_t step);

}  // namespace tinyq::kernels
