// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// Quantisation arithmetic, written once and shared by the quantisers and the runtime.
//
// Affine quantisation maps a real value r to an integer q with a scale s > 0 and a zero point z:
//     q = saturate(round_half_even(r / s) + z),     r ≈ (q - z) * s
// This is ONNX's QuantizeLinear/DequantizeLinear definition; rounding is half to even (the FPU's
// default mode, std::nearbyint) and saturation clamps to the integer type's range.

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace tinyq::qmath {

/// Round half to even under the default FE_TONEAREST mode (never changed by tinyq).
inline float round_half_even(float x) { return std::nearbyint(x); }

inline int32_t clamp_int(int64_t v, int32_t lo, int32_t hi) {
  return static_cast<int32_t>(std::min<int64_t>(std::max<int64_t>(v, lo), hi));
}

/// Saturates an already rounded real r to [qmin - zero_point, qmax - zero_point], then adds the
/// zero point. Clamping in floating point first keeps a huge or infinite r from overflowing the
/// integer cast; NaN maps to qmin, as ONNX Runtime's x86 kernels give (their float-to-int
/// conversion yields INT_MIN, which then saturates low).
template <typename Real>
inline int32_t saturate_add_zero_point(Real r, int32_t zero_point, int32_t qmin, int32_t qmax) {
  if (std::isnan(r)) return qmin;
  r = std::min(std::max(r, static_cast<Real>(qmin) - static_cast<Real>(zero_point)),
               static_cast<Real>(qmax) - static_cast<Real>(zero_point));
  return clamp_int(static_cast<int64_t>(r) + zero_point, qmin, qmax);
}

/// ONNX QuantizeLinear for one value: divide (not multiply by the reciprocal, to match ONNX
/// Runtime bit for bit), round half to even, add the zero point, saturate to [qmin, qmax].
inline int32_t quantize(float x, float scale, int32_t zero_point, int32_t qmin, int32_t qmax) {
  return saturate_add_zero_point(round_half_even(x / scale), zero_point, qmin, qmax);
}

/// QuantizeLinear of an int32 input (ONNX allows it, e.g. for biases): the division is done in
/// double, as ONNX's reference implementation does (int32 / float32 promotes to float64 there),
/// so values beyond 2^24 are not rounded to float before being scaled.
inline int32_t quantize_int32(int32_t x, float scale, int32_t zero_point, int32_t qmin, int32_t qmax) {
  double r = std::nearbyint(static_cast<double>(x) / static_cast<double>(scale));
  return saturate_add_zero_point(r, zero_point, qmin, qmax);
}

/// ONNX DequantizeLinear for one value: the integer difference is exact (int32 inputs carry zero
/// point 0), then converted to float and scaled, in float, as ONNX Runtime does.
inline float dequantize(int32_t q, float scale, int32_t zero_point) {
  return static_cast<float>(q - zero_point) * scale;
}

/// Requantisation of an int32 accumulator (QLinearMatMul, QLinearConv). With
///   acc = sum (a - za)(b - zb) [+ bias quantised at scale sa*sb, zero point 0]
/// the real product is acc * sa * sb, so the output integer is
///   y = saturate(round_half_even(acc * multiplier) + zy),   multiplier = sa * sb / sy.
/// The multiplier is computed in float as (sa * sb) / sy and applied as float(acc) * multiplier,
/// in float, the order ONNX Runtime uses (ComputeOutputScale + MlasRequantizeOutput), so outputs
/// agree bit for bit; float(acc) rounds accumulators beyond 2^24 just as it does there.
inline float requant_multiplier(float scale_a, float scale_b, float scale_y) {
  return scale_a * scale_b / scale_y;
}
inline int32_t requantize(int32_t acc, float multiplier, int32_t zero_point, int32_t qmin, int32_t qmax) {
  return saturate_add_zero_point(round_half_even(static_cast<float>(acc) * multiplier), zero_point, qmin, qmax);
}

/// Integer range of a quantised type. `symmetric` int8 uses [-127, 127] (ONNX Runtime's
/// quantiser does, so that -absmax and absmax both map exactly); `reduce_range` uses 7 bits.
struct QRange {
  int32_t qmin;
  int32_t qmax;
};
inline QRange qrange_int8(bool symmetric, bool reduce_range = false) {
  if (reduce_range) return {-64, 64};
  return symmetric ? QRange{-127, 127} : QRange{-128, 127};
}
inline QRange qrange_uint8(bool reduce_range = false) {
  return reduce_range ? QRange{0, 127} : QRange{0, 255};
}

struct QParams {
  float scale = 1.0f;
  int32_t zero_point = 0;
};

/// Scale and zero point for the real range [rmin, rmax], as ONNX Runtime's quantiser computes
/// them (quant_utils.compute_scale_zp):
///   the range is widened to include 0, so 0 is exactly representable;
///   symmetric: rmin = -absmax, rmax = absmax with absmax = max(|rmin|, |rmax|);
///   scale = (rmax - rmin) / (qmax - qmin), in double, then stored as float;
///   zero_point = round((qmin + qmax) / 2) when symmetric, else round(qmin - rmin / scale);
///   a (near) zero range gives scale 1 and zero point 0.
/// The quantiser's callers verify this against ONNX Runtime's own files in tests.
inline QParams choose_qparams(float rmin, float rmax, QRange range, bool symmetric) {
  rmin = std::min(rmin, 0.0f);
  rmax = std::max(rmax, 0.0f);
  if (symmetric) {
    float absmax = std::max(std::fabs(rmin), std::fabs(rmax));
    rmin = -absmax;
    rmax = absmax;
  }
  QParams p;
  double scale = (static_cast<double>(rmax) - static_cast<double>(rmin)) /
                 (static_cast<double>(range.qmax) - static_cast<double>(range.qmin));
  if (!(scale >= 1.1754943508222875e-38) || !std::isfinite(scale)) return p;  // float's tiny
  double zp = symmetric ? std::nearbyint((range.qmin + range.qmax) / 2.0)
                        : std::nearbyint(range.qmin - static_cast<double>(rmin) / scale);
  p.scale = static_cast<float>(scale);
  p.zero_point = clamp_int(static_cast<int64_t>(zp), range.qmin, range.qmax);
  return p;
}

/// DynamicQuantizeLinear's parameters (ONNX spec): uint8, range widened to include 0,
///   scale = (max(0, xmax) - min(0, xmin)) / 255,     (in float)
///   zero_point = saturate(round(0 - min(0, xmin) / scale)).
/// An all-zero input would give scale 0 (and 0/0 when quantising); ONNX Runtime returns scale 1
/// and zero point 0 there, and so does tinyq, so the quantised values are all 0.
inline QParams dynamic_qparams_uint8(float xmin, float xmax) {
  xmin = std::min(xmin, 0.0f);
  xmax = std::max(xmax, 0.0f);
  QParams p;
  if (xmax == xmin) {
    p.scale = 1.0f;
    p.zero_point = 0;
    return p;
  }
  p.scale = (xmax - xmin) / 255.0f;
  // Saturate before the integer cast (a denormal range can make scale 0 and this ratio inf/NaN).
  p.zero_point = saturate_add_zero_point(round_half_even(0.0f - xmin / p.scale), 0, 0, 255);
  return p;
}

}  // namespace tinyq::qmath
