// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include <string>

#include "runtime/op.h"

namespace tinyq::rt {

// Factories, declared from the same table that lists them.
#define TINYQ_OP(op_type, since, until, factory) std::unique_ptr<Op> factory(const OpContext&);
#include "runtime/ops/op_table.def"
#undef TINYQ_OP

const std::vector<OpDef>& op_table() {
  static const std::vector<OpDef> table = {
#define TINYQ_OP(op_type, since, until, factory) {#op_type, since, until, &factory},
#include "runtime/ops/op_table.def"
#undef TINYQ_OP
  };
  return table;
}

const OpDef* find_op(const std::string& op_type, int64_t opset) {
  for (const auto& def : op_table())
    if (op_type == def.op_type && opset >= def.since && opset <= def.until) return &def;
  return nullptr;
}

}  // namespace tinyq::rt
