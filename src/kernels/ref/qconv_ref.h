// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// Scalar reference integer convolution (ConvInteger, QLinearConv): im2col, then the integer
// GEMM of qgemm_ref.h per image and group. Geometry is conv_ref.h's ConvParams (1-D to 3-D,
// NCHW); the attribute resolution (auto_pad, pads, kernel_shape) is shared with the fp32 Conv
// through conv_geometry.h.
//
// Zero-point algebra: with x' = x - zx and w' = w - zw[m],
//     y[m][p] = sum_{c,k} w'[m][c,k] * x'[c, p*stride + k*dilation - pad]
// and a padded position must contribute 0 to x', so im2col fills padding with zx itself. The
// GEMM then takes A = weights ([M/group, C/group * taps], per-row zero points zw) and
// B = columns ([C/group * taps, out positions], one zero point zx), writing C straight into the
// NC(D)HW output.

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/conv_geometry.h"
#include "kernels/ref/conv_ref.h"

namespace tinyq::kernels {

/// A convolution's attributes as ONNX gives them (empty vectors = absent), before the input
/// shape is known.
struct QConvAttrs {
  std::vector<int64_t> kernel_shape, strides, dilations, pads;
  AutoPad auto_pad = AutoPad::NotSet;
  int64_t group = 1;
};

/// Checks the attributes against the input [N, C, spatial...] and weight
/// [M, C/group, kernel...] shapes and fills `params` (output sizes, begin pads); on failure
/// returns false and sets `error` to a sentence naming what is wrong.
bool qconv_resolve(const QConvAttrs& attrs, const std::vector<int64_t>& x_shape,
                   const std::vector<int64_t>& w_shape, ConvParams* params, std::string* error);

/// Elements of the im2col scratch buffer one call of qconv_*_ref needs.
int64_t qconv_scratch_size(const ConvParams& p);

/// dst[n][m][out...] = sum over the group's channels and taps of (w - zw[m]) * (x - zx), int32,
/// wrapping modulo 2^32. w_zero_points: one (stride 0) or one per output channel (stride 1),
/// null for 0. scratch holds qconv_scratch_size(p) elements. Names carry x's type then w's.
void qconv_u8s8_ref(const ConvParams& p, const uint8_t* src, int32_t src_zero_point, const int8_t* weights,
                    const int32_t* w_zero_points, int64_t w_zp_stride, int32_t* dst, uint8_t* scratch);
void qconv_u8u8_ref(const ConvParams& p, const uint8_t* src, int32_t src_zero_point, const uint8_t* weights,
                    const int32_t* w_zero_points, int64_t w_zp_stride, int32_t* dst, uint8_t* scratch);
void qconv_s8s8_ref(const ConvParams& p, const int8_t* src, int32_t src_zero_point, const int8_t* weights,
                    const int32_t* w_zero_points, int64_t w_zp_stride, int32_t* dst, int8_t* scratch);
void qconv_s8u8_ref(const ConvParams& p, const int8_t* src, int32_t src_zero_point, const uint8_t* weights,
                    const int32_t* w_zero_points, int64_t w_zp_stride, int32_t* dst, int8_t* scratch);

/// Overloads of the named kernels for callers templated on the element types.
inline void qconv_ref(const ConvParams& p, const uint8_t* s, int32_t zs, const int8_t* w, const int32_t* zw,
                      int64_t zw_stride, int32_t* d, uint8_t* scratch) {
  qconv_u8s8_ref(p, s, zs, w, zw, zw_stride, d, scratch);
}
inline void qconv_ref(const ConvParams& p, const uint8_t* s, int32_t zs, const uint8_t* w, const int32_t* zw,
                      int64_t zw_stride, int32_t* d, uint8_t* scratch) {
  qconv_u8u8_ref(p, s, zs, w, zw, zw_stride, d, scratch);
}
inline void qconv_ref(const ConvParams& p, const int8_t* s, int32_t zs, const int8_t* w, const int32_t* zw,
                      int64_t zw_stride, int32_t* d, int8_t* scratch) {
  qconv_s8s8_ref(p, s, zs, w, zw, zw_stride, d, scratch);
}
inline void qconv_ref(const ConvParams& p, const int8_t* s, int32_t zs, const uint8_t* w, const int32_t* zw,
                      int64_t zw_stride, int32_t* d, int8_t* scratch) {
  qconv_s8u8_ref(p, s, zs, w, zw, zw_stride, d, scratch);
}

}  // namespace tinyq::kernels
