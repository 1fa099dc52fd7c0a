// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include "common/cpu_features.h"

#include <cstdlib>
#include <fstream>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace tinyq {
namespace {

std::string read_model_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0 || line.rfind("Model", 0) == 0) {
      auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(" \t", colon + 1));
    }
  }
  return "unknown";
}

CpuFeatures detect() {
  CpuFeatures f;
  f.model_name = read_model_name();
#if defined(__x86_64__) || defined(__i386__)
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  bool osxsave = c & (1u << 27);
  bool fma = c & (1u << 12);
  unsigned long long xcr0 = 0;
  if (osxsave) {
    unsigned lo = 0, hi = 0;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    xcr0 = (static_cast<unsigned long long>(hi) << 32) | lo;
  }
  bool ymm = (xcr0 & 0x6) == 0x6;         // SSE + AVX state
  bool zmm = ymm && (xcr0 & 0xe0) == 0xe0;  // opmask + ZMM state
  bool tiles = (xcr0 & 0x60000) == 0x60000;  // AMX tile config + data
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
    f.avx2 = ymm && (b & (1u << 5));
    f.fma = ymm && fma;
    f.avx512f = zmm && (b & (1u << 16));
    f.avx512bw = zmm && (b & (1u << 30));
    f.avx512vnni = zmm && (c & (1u << 11));
    f.amx_int8 = tiles && (d & (1u << 25)) && (d & (1u << 24));
  }
  if (__get_cpuid_count(7, 1, &a, &b, &c, &d)) f.avx_vnni = ymm && (a & (1u << 4));
#elif defined(__aarch64__) && defined(__ARM_FEATURE_DOTPROD)
  f.arm_dotprod = true;
#endif
  return f;
}

// Caps features at a named level so tests can force every kernel path on one machine.
CpuFeatures apply_cap(CpuFeatures f, const std::string& cap) {
  if (cap.empty()) return f;
  auto below = [&](std::initializer_list<const char*> allowed) {
    for (const char* s : allowed)
      if (cap == s) return false;
    return true;
  };
  if (below({"avx512vnni", "amx", "avx512", "avx2vnni"})) f.avx512vnni = f.amx_int8 = false;
  if (below({"amx"})) f.amx_int8 = false;
  if (below({"avx512vnni", "amx", "avx512"})) f.avx512f = f.avx512bw = f.avx512vnni = false;
  if (below({"avx2vnni", "avx512vnni", "amx", "avx512"})) f.avx_vnni = false;
  if (cap == "avx512") f.avx_vnni = false;
  if (cap == "ref") f.avx2 = f.fma = false;
  return f;
}

}  // namespace

std::string CpuFeatures::to_string() const {
  std::string s;
  auto add = [&](bool on, const char* name) {
    if (on) s += (s.empty() ? "" : " ") + std::string(name);
  };
  add(avx2, "avx2");
  add(fma, "fma");
  add(avx512f, "avx512f");
  add(avx512bw, "avx512bw");
  add(avx512vnni, "avx512vnni");
  add(avx_vnni, "avx-vnni");
  add(amx_int8, "amx-int8");
  add(arm_dotprod, "dotprod");
  return s.empty() ? "none" : s;
}

const CpuFeatures& cpu_features_detected() {
  static const CpuFeatures f = detect();
  return f;
}

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = [] {
    const char* cap = std::getenv("TINYQ_MAX_ISA");
    return apply_cap(cpu_features_detected(), cap ? cap : "");
  }();
  return f;
}

}  // namespace tinyq
