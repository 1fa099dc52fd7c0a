# tinyq — int8 quantisation for tiny ONNX models.
# SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
# The accuracy gate: PLCC drop of int8 against fp32, seed-exact inputs, JSON/HTML reports.
tinyq_layer(gate DEPS tinyq_runtime tinyq_registry nlohmann_json::nlohmann_json)
