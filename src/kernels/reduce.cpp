// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include "kernels/reduce.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "kernels/dispatch.h"

namespace tinyq::kernels {

int64_t finite_minmax_f32_ref(const float* src, int64_t n, float* lo, float* hi) {
  int64_t nonfinite = 0;
  float a = *lo, b = *hi;
  for (int64_t i = 0; i < n; ++i) {
    const float x = src[i];
    if (!std::isfinite(x)) {
      ++nonfinite;
      continue;
    }
    a = std::min(a, x);
    b = std::max(b, x);
  }
  *lo = a;
  *hi = b;
  return nonfinite;
}

namespace {

using MinMaxFn = int64_t (*)(const float*, int64_t, float*, float*);

MinMaxFn choose_finite_minmax() {
#if defined(TINYQ_X86_KERNELS)
  std::string why;
  if (isa_usable(Isa::Avx512, &why)) {
    if (dispatch_verbose()) report_choice("finite_minmax_f32", "calibration observer", "finite_minmax_f32_avx512", {});
    return finite_minmax_f32_avx512;
  }
  if (dispatch_verbose())
    report_choice("finite_minmax_f32", "calibration observer", "finite_minmax_f32_ref",
                  {"finite_minmax_f32_avx512: " + why});
#endif
  return finite_minmax_f32_ref;
}

}  // namespace

int64_t finite_minmax_f32(const float* src, int64_t n, float* lo, float* hi) {
  static const MinMaxFn fn = choose_finite_minmax();
  return fn(src, n, lo, hi);
}

}  // namespace tinyq::kernels
