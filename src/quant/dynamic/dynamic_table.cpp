// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// The dynamic quantiser table: one row per op type. An op type without a row is copied as is
// and keeps fp32 (ONNX Runtime's IntegerOps registry works the same way).
#include "quant/dynamic/dynamic_rewriter.h"

namespace tinyq::quant {

const std::vector<DynamicOpQuantiser>& dynamic_quantisers() {
  static const std::vector<DynamicOpQuantiser> table = {
      {"MatMul", matmul_why_not, matmul_rewrite},
      {"Gemm", gemm_why_not, gemm_rewrite},
      {"Conv", conv_why_not, conv_rewrite},
  };
  return table;
}

const DynamicOpQuantiser* find_dynamic_quantiser(const std::string& op_type) {
  for (const auto& row : dynamic_quantisers())
    if (op_type == row.op_type) return &row;
  return nullptr;
}

}  // namespace tinyq::quant
