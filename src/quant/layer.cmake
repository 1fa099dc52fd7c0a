# tinyq — int8 quantisation for tiny ONNX models.
# SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
# Quantisers: weight quantisation, the dynamic-PTQ rewriter and its per-op quantisers.
tinyq_layer(quant DEPS tinyq_runtime nlohmann_json::nlohmann_json)
