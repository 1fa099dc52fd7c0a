// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// oneDNN (Debian's libdnnl 2.x, op-descriptor API) as one more candidate of the convolution
// kernel lists: fp32 Conv and int8 (u8 input x s8 weights, exact zero points, per-channel
// scales) Conv. Weights are reordered into oneDNN's preferred layout once per input shape;
// primitives are created once per input shape and cached. Inputs and outputs stay tinyq's
// NCHW: the adapter reorders them around the primitive (oneDNN's fast implementations want
// blocked or NHWC layouts), which is what makes it lose to tinyq's own kernels on small layers
// (bench/bench.sh measures both; kernels/fast/select.cpp picks by those measurements).
//
// Built only with TINYQ_WITH_ONEDNN and libdnnl-dev (onednn.cmake); otherwise available() is
// false and the constructors are never called.

#include <memory>
#include <string>

#include "kernels/fast/conv_fast.h"

namespace tinyq::kernels {

/// True when tinyq was built with oneDNN and its CPU engine starts.
bool onednn_available();
/// "oneDNN 2.6.3 (OpenMP)" or "not built".
std::string onednn_version();

class ConvF32OneDnn final : public ConvF32Kernel {
 public:
  /// "" when oneDNN takes the convolution (2-D, no residual), else why not.
  static std::string declines(const ConvParams& wg, bool has_residual);
  ConvF32OneDnn(const ConvParams& wg, const float* weights);
  ~ConvF32OneDnn() override;
  /// dst = clamp(conv(src) + bias) (ep.residual must be null).
  void run(const ConvParams& p, const float* src, const ConvF32Epilogue& ep, float* dst, int threads) const override;
  std::string name() const override { return "conv_f32_onednn"; }
  /// Name of the implementation oneDNN picked for the last shape run ("brgconv:avx512_core").
  std::string impl_name() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class QConvOneDnn final : public QConvKernel {
 public:
  /// "" when oneDNN takes it: 2-D, int8 weights with zero points 0.
  static std::string declines(const ConvParams& wg, const QWeights& w);
  QConvOneDnn(const ConvParams& wg, const QWeights& w);
  ~QConvOneDnn() override;
  /// As QConvFast::run.
  void run(const ConvParams& p, const QInput& x, const QOutput& y, int threads) const override;
  std::string name() const override { return "qconv_u8s8_onednn"; }
  std::string impl_name() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tinyq::kernels
