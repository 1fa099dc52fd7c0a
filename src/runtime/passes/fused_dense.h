// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// Dense layers on raw row-major buffers, shared by the FusedGemm / DynQMatMul ops and the Mlp
// op that chains them: y[rows, N] = act(x[rows, K] W + b), fp32 or with dynamic int8
// quantisation of x (DynamicQuantizeLinear's parameters over the whole x). A run allocates
// nothing (the kernels' scratch is cached), which is what a batch-1 MLP's latency is made of.

#include <cstdint>
#include <memory>

#include "runtime/op.h"

namespace tinyq::rt::passes {

class DenseLayer {
 public:
  virtual ~DenseLayer() = default;
  int64_t k() const { return k_; }
  int64_t n() const { return n_; }
  /// Gemm's kind: A must be a matrix (MatMul's takes [..., K]).
  bool needs_matrix() const { return gemm_; }
  /// Shapes of the per-column constants (scale, bias) the output broadcasts with.
  const std::vector<Shape>& param_shapes() const { return param_shapes_; }
  /// y = layer(x); x is [rows, K], y [rows, N], both row-major and dense.
  virtual void run(int64_t rows, const float* x, float* y, int threads) const = 0;

 protected:
  int64_t k_ = 0, n_ = 0;
  bool gemm_ = false;
  std::vector<Shape> param_shapes_;
};

/// The layer of a FusedGemm or DynQMatMul node (its constants from ctx). Throws like the op.
std::unique_ptr<DenseLayer> make_dense_layer(const OpContext& ctx);

}  // namespace tinyq::rt::passes
