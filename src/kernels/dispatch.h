// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// Run-time kernel choice for the fast kernels (src/kernels/x86, src/kernels/onednn).
//
// Every kernel family keeps a best-first list of candidates; an op chooses once, when it is
// prepared, by walking the list and taking the first candidate whose ISA the CPU has (after the
// TINYQ_MAX_ISA cap, see common/cpu_features.h) and whose `accepts` takes the problem. The
// scalar `_ref` candidate sits last and takes everything, so a choice always exists (as in
// oneDNN's implementation lists). With TINYQ_VERBOSE_DISPATCH=1 each choice is printed to
// stderr with the reason every better candidate declined:
//   tinyq dispatch: conv_f32 [16x16x3x3 s1 on 1x16x224x224] -> conv_f32_avx512
//       (declined: conv_f32_onednn: slower than tinyq's own kernel for this shape)

#include <string>
#include <vector>

namespace tinyq::kernels {

/// Instruction-set levels the fast kernels are written for, lowest first.
enum class Isa { Ref, Avx2, Avx512, Avx512Vnni };

const char* isa_name(Isa isa);

/// Names an x86 kernel for kernel_at: the function itself, or nullptr in builds without the
/// x86 kernels (kernels_x86.cmake compiles them on x86 only).
#if defined(TINYQ_X86_KERNELS)
#define TINYQ_X86_KERNEL(fn) (fn)
#else
#define TINYQ_X86_KERNEL(fn) nullptr
#endif

template <typename T>
struct SameType {
  using type = T;
};

/// One kernel of a family at each ISA level (nullptr: none written for that level), picked for
/// `isa`: the one at that level or the nearest level below that has one; `ref` always exists.
/// The callers have already capped `isa` to what the CPU runs.
template <typename Fn>
Fn kernel_at(Isa isa, Fn ref, typename SameType<Fn>::type avx2, typename SameType<Fn>::type avx512 = nullptr,
             typename SameType<Fn>::type avx512vnni = nullptr) {
  const Fn by_level[] = {ref, avx2, avx512, avx512vnni};
  for (int level = static_cast<int>(isa); level > 0; --level)
    if (by_level[level]) return by_level[level];
  return ref;
}

/// True when the CPU (after the TINYQ_MAX_ISA cap) runs code of `isa`; otherwise false with the
/// missing feature in `why` ("no avx512vnni (TINYQ_MAX_ISA=avx2)").
bool isa_usable(Isa isa, std::string* why = nullptr);

/// The best level this CPU may use.
Isa best_isa();

/// TINYQ_VERBOSE_DISPATCH=1 (read once).
bool dispatch_verbose();

/// TINYQ_PROFILE=1 (read once): the session times every step, and kernels made of several
/// parts (the convolution chains) time those too.
bool profile_enabled();

/// One candidate of a family: its name (ISA in it), the ISA it needs, and a test of the problem
/// that returns "" to accept or the reason it declines.
template <typename Problem, typename Impl>
struct Candidate {
  const char* name;
  Isa isa;
  std::string (*declines)(const Problem&);  ///< nullptr: takes every problem
  Impl impl;
};

/// Prints one dispatch line when verbose (used by choose(); exposed for callers with their own
/// lists, such as the oneDNN adapter).
void report_choice(const std::string& family, const std::string& problem, const std::string& chosen,
                   const std::vector<std::string>& declined);

/// The first candidate that the CPU can run and that accepts `p`. `describe` is the problem in
/// words for the verbose line. The last candidate must accept everything (the `_ref` one).
template <typename Problem, typename Impl>
const Candidate<Problem, Impl>& choose(const char* family, const std::vector<Candidate<Problem, Impl>>& list,
                                       const Problem& p, const std::string& describe) {
  std::vector<std::string> declined;
  for (const auto& c : list) {
    std::string why;
    if (!isa_usable(c.isa, &why)) {
      if (dispatch_verbose()) declined.push_back(std::string(c.name) + ": " + why);
      continue;
    }
    if (c.declines) {
      why = c.declines(p);
      if (!why.empty()) {
        if (dispatch_verbose()) declined.push_back(std::string(c.name) + ": " + why);
        continue;
      }
    }
    if (dispatch_verbose()) report_choice(family, describe, c.name, declined);
    return c;
  }
  if (dispatch_verbose()) report_choice(family, describe, list.back().name, declined);
  return list.back();
}

}  // namespace tinyq::kernels
