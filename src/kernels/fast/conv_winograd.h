// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// Winograd fp32 convolution, F(2x2, 3x3) and F(4x4, 3x3), for 3x3 kernels with stride 1,
// dilation 1, one group and enough channels (learned_filter's 16 -> 16 body convolutions):
// 2.25x (F(2x2)) or 4x (F(4x4)) fewer multiplications than the direct convolution.
//
// Weights are transformed once (u = G g G^T, in double); both tile sizes are kept and a run
// takes the one that fills the vector lanes better (F(4x4) on learned_filter's 224-wide
// planes, F(2x2) on narrow ones). A run walks blocks of consecutive tiles of one tile row (a
// block's transformed input and GEMM output, alpha^2 x (C + M) x tiles floats, are sized to
// stay in L2): input transform -> alpha^2 GEMMs -> output transform with the ConvF32Epilogue
// (bias, residual, clamp), the micro-kernels of winograd_kernels.h. Threads take runs of
// blocks from a shared counter, each with its own scratch.
//
// Measured on Zen 4 (one thread, learned_filter's 16 -> 16 layer at 224x224 with residual):
// direct 2.6 ms, F(2x2) 1.9 ms, F(4x4) 1.3 ms; the three steps cost about the same, as with
// 16 channels the transforms do as many operations per tile as the GEMMs.
//
// Accuracy: each output is a different (exact in real arithmetic) combination of the same
// products; the transforms' coefficients (up to 5 in B, 8 in A for F(4x4)) grow the rounding
// error by a bounded factor. tests/kernels_fast/winograd_test.cpp measures it against the
// exact result in units of 9 C eps sum |w| |x| (the direct convolution's worst case): about
// 0.03 for F(2x2) and 0.4 for F(4x4). On learned_filter_v1 the largest difference from ONNX
// Runtime goes from 6.0e-7 (direct) to 8.3e-7 (F(2x2)) and 1.2e-6 (F(4x4)). Non-finite inputs
// spread further than in a direct convolution: an Inf or NaN reaches (as Inf or NaN) every
// output of the tiles whose windows hold it.
//
// The weights fix only channels and kernel when an op is prepared; a run whose geometry
// Winograd does not take (stride or dilation other than 1) goes to the direct kernel held for
// the purpose.

#include <memory>
#include <string>
#include <vector>

#include "kernels/dispatch.h"
#include "kernels/fast/conv_fast.h"
#include "kernels/fast/winograd_kernels.h"

namespace tinyq::kernels {

class ConvF32Winograd final : public ConvF32Kernel {
 public:
  /// Why weights of this geometry ([M, C, kh, kw], group) do not go to Winograd ("" when they
  /// do): 2-D 3x3, group 1, at least kMinChannels input and output channels.
  static std::string declines(const ConvParams& wg);
  /// True when a run with geometry p takes the Winograd path (stride 1, dilation 1, 3x3).
  static bool takes(const ConvParams& p);
  /// Channels below which the direct kernel measured faster (Zen 4, one thread: at C = M = 4
  /// Winograd lost by ~1.8x, at 8 it tied (224x224) or won by 1.4x (64x64), at 16 it won by
  /// 1.8-1.9x).
  static constexpr int64_t kMinChannels = 8;

  /// weights: [M, C, 3, 3]. `isa`: Ref, Avx2, or Avx512 and up. `tile`: output tile size m
  /// (2 or 4), or 0 to keep both and choose per run (TINYQ_WINOGRAD=2 / 4 forces one).
  ConvF32Winograd(Isa isa, const ConvParams& wg, const float* weights, int tile = 0);
  void run(const ConvParams& p, const float* src, const ConvF32Epilogue& ep, float* dst, int threads) const override;
  std::string name() const override { return name_; }
  /// The tile size of a Winograd run (whole tile rows), else the direct kernel's.
  int64_t row_step(const ConvParams& p) const override;
  void run_rows(const ConvParams& p, const float* src, const ConvF32Epilogue& ep, float* dst, int threads, int64_t row0,
                int64_t row1, RowRings rings = {}) const override;
  /// Rings of whole tile rows: for a Winograd run (not the direct fallback).
  bool takes_rings(const ConvParams& p) const override { return winograd_run(p); }
  /// The tile size a run with geometry p uses (0: the direct kernel).
  int tile_for(const ConvParams& p) const;

 private:
  struct Plan {
    int m = 4, alpha = 6;
    std::vector<float> u;  // [xi][k_block][c][mr]
  };
  struct Blocking {
    int64_t tiles_h = 0, tiles_w = 0, segs = 0, ld = 0;
    int64_t cost = 0;  // vector lanes x positions, what the choice between plans compares
  };
  /// Whether a run with geometry p is a Winograd one (else the direct kernel's): the weights'
  /// channels, and a geometry takes() accepts.
  bool winograd_run(const ConvParams& p) const;
  Plan make_plan(int m, const float* weights) const;
  Blocking blocking(const Plan& pl, const ConvParams& p) const;
  size_t choose(const ConvParams& p) const;

  Isa isa_;
  int mr_;         // output channels per packed weight block
  std::string name_;
  int64_t c_, k_, k_padded_;
  std::vector<Plan> plans_;  // F(2x2) before F(4x4) when both are kept
  WinoInputFn input_fn_;
  WinoGemmFn gemm_fn_;
  WinoOutputFn output_fn_;
  ConvF32Fast direct_;    // geometries Winograd does not take
  mutable ScratchCache scratch_;
};

/// False under TINYQ_WINOGRAD=0 (selection then keeps the direct kernels).
bool winograd_enabled();

}  // namespace tinyq::kernels
