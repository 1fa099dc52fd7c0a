// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// Gating a registry entry: the registry says where the two files are and what the budget is.

#include "tinyq/gate.h"
#include "tinyq/registry.h"

namespace tinyq {

std::vector<GateRow> gate_registry_entry(const Registry& registry, const RegistryEntry& entry,
                                         const GateOptions& options) {
  return gate_model_pair(entry.id, quant_mode_name(entry.quant_mode), registry.fp32_path(entry),
                         registry.int8_path(entry), entry.quant_accuracy_budget_plcc, options);
}

}  // namespace tinyq
