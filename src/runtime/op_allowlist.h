// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// The op allowlist: the one list of ONNX op types a trusted tiny model may contain. The registry's
// loader refuses any other op (and any node outside the default ONNX domain) before a session is
// built; the runtime's op table (runtime/ops/op_table.def) should implement exactly these ops, so
// tests compare the two.

#include <string>
#include <vector>

#include "tinyq/model.h"

namespace tinyq::rt {

/// The allowed op types of the default ONNX domain, in the order they are listed in
/// op_allowlist.cpp: the fork's fp32 list, then the quantised ops the three quant modes emit.
const std::vector<std::string>& op_allowlist();

/// True when op_type (of the default domain) is on the allowlist. Case-sensitive, as ONNX is.
bool op_allowed(const std::string& op_type);

/// The default-domain test, from the IR (include/tinyq/model.h).
using ::tinyq::is_default_domain;

}  // namespace tinyq::rt
