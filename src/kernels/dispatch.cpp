// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include "kernels/dispatch.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "common/cpu_features.h"

namespace tinyq::kernels {

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Ref: return "ref";
    case Isa::Avx2: return "avx2";
    case Isa::Avx512: return "avx512";
    case Isa::Avx512Vnni: return "avx512vnni";
  }
  return "?";
}

namespace {

// The x86 kernels are only compiled on x86 (kernels_x86.cmake defines TINYQ_X86_KERNELS).
#if defined(TINYQ_X86_KERNELS)
constexpr bool kX86Kernels = true;
#else
constexpr bool kX86Kernels = false;
#endif

std::string cap_note() {
  const char* cap = std::getenv("TINYQ_MAX_ISA");
  return cap && *cap ? std::string(" (TINYQ_MAX_ISA=") + cap + ")" : std::string();
}

// The feature a level needs that this CPU (after the cap) lacks, or "".
std::string missing_feature(Isa isa) {
  if (isa == Isa::Ref) return "";
  if (!kX86Kernels) return "not built (no x86 kernels on this architecture)";
  const CpuFeatures& f = cpu_features();
  const CpuFeatures& d = cpu_features_detected();
  auto lacks = [&](bool have, bool detected, const char* name) -> std::string {
    if (have) return "";
    return std::string("no ") + name + (detected ? cap_note() : std::string());
  };
  std::string why = lacks(f.avx2 && f.fma, d.avx2 && d.fma, "avx2+fma");
  if (!why.empty() || isa == Isa::Avx2) return why;
  why = lacks(f.avx512f && f.avx512bw, d.avx512f && d.avx512bw, "avx512f+avx512bw");
  if (!why.empty() || isa == Isa::Avx512) return why;
  return lacks(f.avx512vnni, d.avx512vnni, "avx512vnni");
}

}  // namespace

bool isa_usable(Isa isa, std::string* why) {
  std::string w = missing_feature(isa);
  if (why) *why = w;
  return w.empty();
}

Isa best_isa() {
  for (Isa isa : {Isa::Avx512Vnni, Isa::Avx512, Isa::Avx2})
    if (isa_usable(isa)) return isa;
  return Isa::Ref;
}

bool dispatch_verbose() {
  static const bool on = [] {
    const char* v = std::getenv("TINYQ_VERBOSE_DISPATCH");
    return v && *v && std::strcmp(v, "0") != 0;
  }();
  return on;
}

bool profile_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("TINYQ_PROFILE");
    return v && *v && std::strcmp(v, "0") != 0;
  }();
  return on;
}

void report_choice(const std::string& family, const std::string& problem, const std::string& chosen,
                   const std::vector<std::string>& declined) {
  static std::mutex mu;  // sessions may be built from several threads
  std::lock_guard<std::mutex> lock(mu);
  std::string line = "tinyq dispatch: " + family + " [" + problem + "] -> " + chosen;
  for (size_t i = 0; i < declined.size(); ++i)
    line += (i == 0 ? "\n    declined: " : "\n              ") + declined[i];
  std::fprintf(stderr, "%s\n", line.c_str());
}

}  // namespace tinyq::kernels
