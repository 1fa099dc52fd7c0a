// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// QDQ node-group fusion, done when a session is built so that tinyq computes a QDQ graph with
// the integer kernels ONNX Runtime uses for it.
//
// ONNX Runtime rewrites DequantizeLinear -> Conv -> QuantizeLinear into QLinearConv (and
// DQ -> MatMul -> Q into QLinearMatMul) before running a QDQ model, so its answer is the integer
// convolution requantised once, not an fp32 convolution quantised afterwards. The two differ
// only where a sum lands near a rounding boundary, but such a one-step flip inside a network can
// move a quantised final output by a whole step: evaluated unfused, ORT's own per-channel QDQ
// nr_metric_v1 misses ORT's gate outputs by one output step on some samples.
//
// Where ORT fuses, fusing here computes exactly what it computes. ORT 1.30 leaves a group in
// fp32 when a DQ output has another reader too (the stem conv whose input DQ also feeds a Shape,
// a conv whose input DQ also feeds a residual Add); its fp32 convolution is then within a few
// ulps of the exact sum. tinyq fuses those groups as well: the integer accumulation is exact, so
// the result differs from the exact value by the one requantisation rounding only, which keeps
// it closer to ORT's answer than tinyq's reference fp32 convolution (a different summation
// order) followed by QuantizeLinear. On nr_metric_v1's stem that difference decides a value
// 13.50003 steps from zero: exact and ORT give 14, tinyq's fp32 Conv 13.499996.

#include "tinyq/model.h"

namespace tinyq::rt {

/// Rewrites, in place, every node group of these forms whose quantisation parameters are
/// constant per-tensor scalars (weights of a Conv may be per output channel, axis 0; B of a
/// MatMul per column), zero points included, with x and y of the same 8-bit type (int8 x needs
/// int8 weights, as in ONNX Runtime):
///   DQ(x), DQ(w)[, DQ(int32 bias, zero point 0)] -> Conv -> Q   =>   QLinearConv
///   DQ(a), DQ(b) (2-D) -> MatMul -> Q                             =>   QLinearMatMul
/// where the Conv / MatMul output feeds only that Q and is not a graph output (DQ outputs may
/// have other readers; those DQs stay). DQ nodes left without readers are removed. `g` must be topologically sorted; it stays so. Returns the
/// number of groups fused.
int fuse_qdq_groups(Graph& g);

}  // namespace tinyq::rt
