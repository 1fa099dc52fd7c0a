// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include "kernels/reduce.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

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

int64_t finite_minmax_rows_f32_ref(const RowSet& set, float* lo, float* hi) {
  int64_t nonfinite = 0;
  for (int64_t i = 0; i < set.outer; ++i)
    for (int64_t j = 0; j < set.rows; ++j)
      nonfinite += finite_minmax_f32_ref(set.src + i * set.outer_stride + j * set.stride, set.len, lo, hi);
  return nonfinite;
}

namespace {

using MinMaxFn = int64_t (*)(const float*, int64_t, float*, float*);
using MinMaxRowsFn = int64_t (*)(const RowSet&, float*, float*);

// The level of the AVX-512 pair where usable, else of the scalar references.
Isa observer_isa() {
  std::string why;
  const bool usable = isa_usable(Isa::Avx512, &why);
  if (dispatch_verbose())
    report_choice("finite_minmax_f32", "calibration observer",
                  usable ? "finite_minmax_f32_avx512" : "finite_minmax_f32_ref",
                  usable ? std::vector<std::string>{} : std::vector<std::string>{"finite_minmax_f32_avx512: " + why});
  return usable ? Isa::Avx512 : Isa::Ref;
}

}  // namespace

int64_t finite_minmax_f32(const float* src, int64_t n, float* lo, float* hi) {
  static const MinMaxFn fn =
      kernel_at(observer_isa(), finite_minmax_f32_ref, nullptr, TINYQ_X86_KERNEL(finite_minmax_f32_avx512));
  return fn(src, n, lo, hi);
}

int64_t finite_minmax_rows_f32(const RowSet& set, float* lo, float* hi) {
  static const MinMaxRowsFn fn =
      kernel_at(observer_isa(), finite_minmax_rows_f32_ref, nullptr, TINYQ_X86_KERNEL(finite_minmax_rows_f32_avx512));
  return fn(set, lo, hi);
}

}  // namespace tinyq::kernels
