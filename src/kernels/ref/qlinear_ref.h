// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// Scalar reference kernels for the element-wise quantisation steps: QuantizeLinear,
// DequantizeLinear, DynamicQuantizeLinear's range scan, and the requantisation that turns int32
// accumulators into 8-bit outputs (QLinearMatMul, QLinearConv). The arithmetic of one value is
// qmath's (src/common/qmath.h); these loops only walk the layouts.

#include <cstdint>

namespace tinyq::kernels {

/// A tensor seen as [outer, channels, inner] around its quantisation axis: element
/// (o, c, i) is at (o * channels + c) * inner + i and uses scales[c] and zero_points[c].
/// Per-tensor quantisation is channels = 1 (outer = 1, inner = numel). A null zero_points
/// means 0.
struct QAxisLayout {
  int64_t outer = 1;
  int64_t channels = 1;
  int64_t inner = 0;
};

/// dst = saturate(round_half_even(src / scale) + zero_point).
void quantize_f32_u8_ref(const float* src, const QAxisLayout& layout, const float* scales,
                         const int32_t* zero_points, uint8_t* dst);
void quantize_f32_s8_ref(const float* src, const QAxisLayout& layout, const float* scales,
                         const int32_t* zero_points, int8_t* dst);
/// Same for int32 inputs (division in double, see qmath::quantize_int32).
void quantize_s32_u8_ref(const int32_t* src, const QAxisLayout& layout, const float* scales,
                         const int32_t* zero_points, uint8_t* dst);
void quantize_s32_s8_ref(const int32_t* src, const QAxisLayout& layout, const float* scales,
                         const int32_t* zero_points, int8_t* dst);

/// dst = (src - zero_point) * scale.
void dequantize_u8_f32_ref(const uint8_t* src, const QAxisLayout& layout, const float* scales,
                           const int32_t* zero_points, float* dst);
void dequantize_s8_f32_ref(const int8_t* src, const QAxisLayout& layout, const float* scales,
                           const int32_t* zero_points, float* dst);
void dequantize_s32_f32_ref(const int32_t* src, const QAxisLayout& layout, const float* scales,
                            const int32_t* zero_points, float* dst);

/// Smallest and largest of n floats, NaNs skipped (as ONNX Runtime's DynamicQuantizeLinear
/// does); both 0 when n is 0 or every value is NaN.
void minmax_f32_ref(const float* src, int64_t n, float* min_out, float* max_out);

/// Requantisation of a rows x cols int32 block (row stride ld_acc) into an 8-bit block (row
/// stride ld_dst): dst[r][c] = saturate(round_half_even(float(acc[r][c] + bias[r]) *
/// multiplier[r][c]) + zero_point). The multiplier of (r, c) is
/// multipliers[r * mult_row_stride + c * mult_col_stride] (strides 0 broadcast); bias is per row
/// or null. See qmath::requantize.
struct RequantArgs {
  int64_t rows = 0, cols = 0;
  const int32_t* acc = nullptr;
  int64_t ld_acc = 0;
  const int32_t* bias = nullptr;
  const float* multipliers = nullptr;
  int64_t mult_row_stride = 0, mult_col_stride = 0;
  int32_t zero_point = 0;
  int64_t ld_dst = 0;
};
void requantize_s32_u8_ref(const RequantArgs& args, uint8_t* dst);
void requantize_s32_s8_ref(const RequantArgs& args, int8_t* dst);

/// Overloads of the named kernels for callers templated on the element types.
inline void quantize_ref(const float* s, const QAxisLayout& l, const float* sc, const int32_t* z, uint8_t* d) {
  quantize_f32_u8_ref(s, l, sc, z, d);
}
inline void quantize_ref(const float* s, const QAxisLayout& l, const float* sc, const int32_t* z, int8_t* d) {
  quantize_f32_s8_ref(s, l, sc, z, d);
}
inline void quantize_ref(const int32_t* s, const QAxisLayout& l, const float* sc, const int32_t* z, uint8_t* d) {
  quantize_s32_u8_ref(s, l, sc, z, d);
}
inline void quantize_ref(const int32_t* s, const QAxisLayout& l, const float* sc, const int32_t* z, int8_t* d) {
  quantize_s32_s8_ref(s, l, sc, z, d);
}
inline void dequantize_ref(const uint8_t* s, const QAxisLayout& l, const float* sc, const int32_t* z, float* d) {
  dequantize_u8_f32_ref(s, l, sc, z, d);
}
inline void dequantize_ref(const int8_t* s, const QAxisLayout& l, const float* sc, const int32_t* z, float* d) {
  dequantize_s8_f32_ref(s, l, sc, z, d);
}
inline void dequantize_ref(const int32_t* s, const QAxisLayout& l, const float* sc, const int32_t* z, float* d) {
  dequantize_s32_f32_ref(s, l, sc, z, d);
}
inline void requantize_ref(const RequantArgs& args, uint8_t* dst) { requantize_s32_u8_ref(args, dst); }
inline void requantize_ref(const RequantArgs& args, int8_t* dst) { requantize_s32_s8_ref(args, dst); }

}  // namespace tinyq::kernels
