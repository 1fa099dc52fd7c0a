// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// Every ISA path of the fast kernels is tested on every machine that can run it; a path this
// CPU (or the TINYQ_MAX_ISA cap) lacks is skipped, saying why.

#include <gtest/gtest.h>

#include <string>

#include "kernels/dispatch.h"

#define REQUIRE_ISA(isa)                                                                                      \
  do {                                                                                                        \
    std::string why_;                                                                                         \
    if (!::tinyq::kernels::isa_usable(isa, &why_))                                                            \
      GTEST_SKIP() << ::tinyq::kernels::isa_name(isa) << " path skipped: " << why_;                           \
  } while (0)
