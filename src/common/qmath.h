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

/// ONNX QuantizeLinear for one value: divide (not multiply by the reciprocal, to match ONNX
/// Runtime bit for bit), round half to even, add the zero point, saturate to [qmin, qmax].
inline int32_t quantize(float x, float scale, int32_t zero_point, int32_t qmin, int32_t qmax) {
  float r = round_half_even(x / scale);
  // Saturate in float first: r may be far outside int32.
  r = std::min(std::max(r, static_cast<float>(qmin) - static_cast<float>(zero_point)),
               static_cast<float>(qmax) - static_cast<float>(zero_point));
  return clamp_int(static_cast<int64_t>(r) + zero_point, qmin, qmax);
}

inline float dequantize(int32_t q, float scale, int32_t zero_point) {
  return static_cast<float>(q - zero_point) * scale;
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
///   scale = (max(0, xmax) - min(0, xmin)) / 255,
///   zero_point = saturate(round(0 - min(0, xmin) / scale)).
/// An all-zero input gives scale 0 in the spec; the quantised values are then all 0.
inline QParams dynamic_qparams_uint8(float xmin, float xmax) {
  xmin = std::min(xmin, 0.0f);
  xmax = std::max(xmax, 0.0f);
  QParams p;
  p.scale = (xmax - xmin) / 255.0f;
  if (p.scale == 0.0f) {
    p.zero_point = 0;
    return p;
  }
  float zp = round_half_even(0.0f - xmin / p.scale);
  p.zero_point = clamp_int(static_cast<int64_t>(zp), 0, 255);
  return p;
}

}  // namespace tinyq::qmath
