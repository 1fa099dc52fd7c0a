// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

#include <string>

namespace tinyq {

/// The CPU's int8-relevant features, read once with cpuid and checked against what the OS
/// enabled (xgetbv). TINYQ_MAX_ISA (e.g. "avx2", "ref") caps what kernels may use.
struct CpuFeatures {
  std::string model_name;  ///< from /proc/cpuinfo, or the cpuid brand string
  bool avx2 = false;
  bool fma = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512vnni = false;
  bool avx_vnni = false;
  bool amx_int8 = false;
  bool arm_dotprod = false;

  /// True when the CPU has an int8 dot-product instruction (VNNI, AVX-VNNI, AMX, Arm dotprod).
  bool has_int8_dot() const { return avx512vnni || avx_vnni || amx_int8 || arm_dotprod; }
  /// "avx2 fma avx512f avx512vnni".
  std::string to_string() const;
};

/// Features as detected, before any cap.
const CpuFeatures& cpu_features_detected();
/// Features after the TINYQ_MAX_ISA cap: what kernels may use.
const CpuFeatures& cpu_features();

}  // namespace tinyq
