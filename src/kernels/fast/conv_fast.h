// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// Fast fp32 and integer convolutions and integer GEMMs: weights packed once (when an op is
// prepared), the ISA's micro-kernel chosen once, input re-laid out per run, work split over
// threads by output rows. The ISA-specific code is in the micro-kernels
// (kernels/fast/micro_kernels.h); this layer is geometry, packing and loops.
//
// Input layout. A convolution tap reads input position o * stride + t * dilation - pad_begin
// for output position o. Splitting the (padded) input into `stride` phase planes per axis,
// plane r holding the positions j * stride + r - pad_begin, turns every tap into a contiguous
// run: tap t reads plane (t * dilation) % stride from element o + (t * dilation) / stride.
// Padding positions are written into the planes (0 for fp32, the zero point for integers), so
// the kernels never test bounds. Stride-1 convolutions without padding read their input in
// place (the "direct" layout).
//
// fp32 planes are channel-major ([C][planes][J_h][J_w]: the kernels' lanes are output
// positions). Integer planes are position-major ([group][planes][J_h][J_w][C_group padded]:
// the kernels' lanes are output channels and each position's input channels are contiguous,
// as vpdpbusd wants 4 consecutive k values per lane).

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "kernels/dispatch.h"
#include "kernels/fast/chain_kernels.h"
#include "kernels/fast/micro_kernels.h"
#include "kernels/reduce.h"
#include "kernels/ref/conv_ref.h"

namespace tinyq::kernels {

/// A reusable scratch buffer: one run at a time reuses it, a concurrent run gets its own.
class ScratchCache {
 public:
  class Lease {
   public:
    Lease(ScratchCache& cache, size_t bytes);
    template <typename T>
    T* as() const {
      return reinterpret_cast<T*>(ptr_);
    }

   private:
    std::unique_lock<std::mutex> lock_;
    std::unique_ptr<uint8_t[]> own_;
    uint8_t* ptr_ = nullptr;
  };

 private:
  std::mutex mu_;
  std::unique_ptr<uint8_t[]> buf_;
  size_t size_ = 0;
};

/// Per-axis phase-plane geometry (see the file comment). Axis 0 is H, axis 1 W; a 1-D
/// convolution has a trivial H axis.
struct ConvLayout {
  int64_t in[2] = {1, 1}, out[2] = {1, 1}, stride[2] = {1, 1}, pad[2] = {0, 0};
  int64_t J[2] = {1, 1};              ///< plane extent per axis
  int64_t kernel[2] = {1, 1};
  std::vector<int64_t> tap_plane[2];  ///< per tap: its phase along the axis
  std::vector<int64_t> tap_q[2];      ///< per tap: its offset inside the plane
  bool direct = false;                ///< the input itself serves as the (single) plane

  int64_t planes() const { return stride[0] * stride[1]; }
  int64_t plane_size() const { return J[0] * J[1]; }
  /// Offset of tap (kh, kw) for output (0, 0), in plane elements (before a channel stride).
  int64_t tap_offset(int64_t kh, int64_t kw) const {
    return (tap_plane[0][kh] * stride[1] + tap_plane[1][kw]) * plane_size() + tap_q[0][kh] * J[1] + tap_q[1][kw];
  }
};

/// Why the fast convolutions cannot take this geometry ("" when they can): 1-D and 2-D only.
std::string conv_fast_declines(const ConvParams& p);
ConvLayout conv_layout(const ConvParams& p, bool allow_direct);

/// Epilogue of an fp32 convolution: y = clamp(acc + bias + residual) (per channel bias; the
/// residual has the output's shape).
struct ConvF32Epilogue {
  const float* bias = nullptr;
  const float* residual = nullptr;
  bool clamp = false;
  float lo = 0.0f, hi = 0.0f;
  /// Or null: the finite range of everything written to dst is folded in, block by block while
  /// the block is still in cache, or (Winograd) in registers as it is stored (calibration's
  /// observers then need no pass over the output).
  FiniteRange* range = nullptr;
  /// With a residual, the convolution's own output conv + bias (before the residual and the
  /// clamp), for a graph that still wants it (calibration watching both it and the residual
  /// sum): written to `pre` (NCHW, dst's layout) when set, its range folded into pre_range when
  /// set. With pre null the kernels keep it no longer than a block, in cache.
  float* pre = nullptr;
  FiniteRange* pre_range = nullptr;
  bool also_pre() const { return residual && (pre || pre_range); }
};

/// Output rows of a block, as element offsets into an NCHW output: row (i, j) holds `len`
/// values at offset + i * outer_stride + j * stride.
struct BlockRows {
  int64_t offset = 0, outer = 1, outer_stride = 0, rows = 1, stride = 0, len = 0;
  RowSet at(const float* base) const { return RowSet{base + offset, outer, outer_stride, rows, stride, len}; }
};

/// The epilogue a kernel runs for ep: ep itself, or when ep.also_pre() conv + bias alone (no
/// residual, no clamp), which the driver has it write to a compact block; finish_block then
/// does the rest.
ConvF32Epilogue kernel_epilogue(const ConvF32Epilogue& ep);
/// A driver's step once its kernel wrote block b (offsets into dst's layout), while the block
/// is in cache. When ep.also_pre(), the kernel wrote conv + bias to the rows `kpre` (a compact
/// block): its range, a copy into ep.pre when set, and dst = clamp(pre + residual) (the graph's
/// Add, then its activation). Then dst's range when ep wants it. Ranges go to the caller's
/// running `mine` (dst) and `mine_pre`.
void finish_block(const ConvF32Epilogue& ep, float* dst, const BlockRows& b, const RowSet& kpre, FiniteRange* mine,
                  FiniteRange* mine_pre);

/// Where a run's workers merge their running ranges into the epilogue's, once each at the end.
class RangeSink {
 public:
  explicit RangeSink(const ConvF32Epilogue& ep) : ep_(ep) {}
  void merge(const FiniteRange& dst, const FiniteRange& pre) {
    if (!ep_.range && !ep_.pre_range) return;  // nothing measured
    std::lock_guard<std::mutex> lock(mu_);
    if (ep_.range) ep_.range->merge(dst);
    if (ep_.pre_range) ep_.pre_range->merge(pre);
  }

 private:
  const ConvF32Epilogue& ep_;
  std::mutex mu_;
};

/// Where a run over a band of rows (ConvF32Kernel::run_rows) keeps a tensor: whole planes (0),
/// or a ring of `rows` rows per channel and image, row r at r % rows (a value two layers run
/// depth-first pass between them, runtime/passes/op_conv_stack.cpp).
struct RowRings {
  int64_t src = 0, dst = 0;  ///< the input's ring rows; the output's (and its residual's and pre's)
};

/// What the ops hold: an fp32 convolution prepared for constant weights (tinyq's kernels or
/// the oneDNN adapter).
class ConvF32Kernel {
 public:
  virtual ~ConvF32Kernel() = default;
  /// dst = epilogue(conv(src)) for the geometry p (same weights as prepared).
  virtual void run(const ConvParams& p, const float* src, const ConvF32Epilogue& ep, float* dst, int threads) const = 0;
  virtual std::string name() const = 0;
  /// For a run in bands of output rows (layers run depth-first, runtime/passes/op_conv_stack.cpp):
  /// the multiple of rows a band must start on for geometry p (Winograd: its tile size), or 0
  /// when this kernel cannot run part of its rows.
  virtual int64_t row_step(const ConvParams& p) const {
    (void)p;
    return 0;
  }
  /// Output rows [row0, row1) of every image, as run() writes them (row0 a multiple of
  /// row_step(p), row1 too unless it is the last row: whole steps are written). src, ep and
  /// dst are the whole tensors as for run(), or rings where `rings` says so. Its input rows
  /// [row0 - pad, row1 - pad + kernel extent) must be ready.
  virtual void run_rows(const ConvParams& p, const float* src, const ConvF32Epilogue& ep, float* dst, int threads,
                        int64_t row0, int64_t row1, RowRings rings = {}) const;
  /// Whether run_rows takes rings for geometry p.
  virtual bool takes_rings(const ConvParams& p) const {
    (void)p;
    return false;
  }
};

/// An fp32 convolution with packed weights.
class ConvF32Fast final : public ConvF32Kernel {
 public:
  /// weights: [M, C/group, kernel...] as ONNX lays them out. `isa` picks the row kernel
  /// (Ref, Avx2 or Avx512 and up).
  ConvF32Fast(Isa isa, const ConvParams& p, const float* weights);
  /// dst = epilogue(conv(src)); p must match the construction's channels, group and kernel.
  /// `scale` (per output channel, or null) multiplies the sum before the bias (the exact
  /// integer path uses it).
  void run(const ConvParams& p, const float* src, const ConvF32Epilogue& ep, float* dst, int threads,
           const float* scale) const;
  void run(const ConvParams& p, const float* src, const ConvF32Epilogue& ep, float* dst, int threads) const override {
    run(p, src, ep, dst, threads, nullptr);
  }
  /// 1 for stride-1 padded 2-D layers other than depthwise ones (built band by band anyway).
  int64_t row_step(const ConvParams& p) const override;
  void run_rows(const ConvParams& p, const float* src, const ConvF32Epilogue& ep, float* dst, int threads, int64_t row0,
                int64_t row1, RowRings rings = {}) const override;
  /// Same, for an input already laid out as `layout` planes by the caller (the integer path
  /// writes them while quantising). src holds [C][planes][J_h][J_w] per image, image stride
  /// `image_stride` elements. `out_plane`: the output's channel stride (0: out_h x out_w; a band
  /// of rows of a taller output gives the whole plane's).
  void run_planes(const ConvParams& p, const ConvLayout& layout, const float* planes, int64_t image_stride,
                  const ConvF32Epilogue& ep, float* dst, int threads, const float* scale,
                  int64_t out_plane = 0) const;
  std::string name() const override { return name_; }

 private:
  bool banded(const ConvLayout& l) const { return l.planes() == 1 && !l.direct && !dw_fn_ && l.J[1] != l.out[1]; }
  void run_banded(const ConvParams& p, const ConvLayout& l, const float* src, const ConvF32Epilogue& ep, float* dst,
                  int threads, const float* scale, int64_t row0, int64_t row1) const;
  Isa isa_;
  const char* name_;
  ConvF32RowFn fn_;
  DwF32PlaneFn dw_fn_ = nullptr;  // depthwise: one input and one output channel per group
  using DeinterleaveFn = void (*)(const float*, int64_t, int64_t, float* const*);
  DeinterleaveFn deinterleave_ = nullptr;
  int mr_;
  int64_t m_, cg_, mg_, group_, kernel_[2];
  std::vector<float> packed_;  // [group][block][k][mr]
  mutable ScratchCache scratch_;
};

/// Where an integer convolution's or GEMM's input comes from.
enum class QInputKind { F32, U8, S8 };
struct QInput {
  QInputKind kind = QInputKind::U8;
  const void* data = nullptr;
  float scale = 1.0f;       ///< F32: quantise with this scale ...
  int32_t zero_point = 0;   ///< ... and zero point (uint8); U8 / S8: the input's zero point
};

/// What an integer convolution or GEMM writes (see QEpilogueKind).
struct QOutput {
  QEpilogueKind kind = QEpilogueKind::Int32;
  void* dst = nullptr;
  const float* scale = nullptr;      ///< per output channel: Dequant scale or Requant multiplier
  const float* bias = nullptr;       ///< Dequant: float bias per channel, or null
  const float* residual = nullptr;   ///< Dequant: added before the clamp, or null
  bool clamp = false;
  float lo = 0.0f, hi = 0.0f;
  const int32_t* bias_i32 = nullptr; ///< Requant: int32 bias per channel, or null
  int32_t zero_point = 0;            ///< Requant
  /// Dequant, or null: set to {min, max} of everything written, NaN skipped, {0, 0} when no
  /// value is a number (minmax_f32's answer; what a following DynamicQuantizeLinear scans). The
  /// c4 tiles take it while they write; the other paths make a pass at the end.
  float* minmax = nullptr;
};

/// Integer weights with their zero points, as an op has them.
struct QWeights {
  const void* data = nullptr;
  bool is_u8 = false;
  const int32_t* zero_points = nullptr;  ///< null: 0
  int64_t zp_stride = 0;                 ///< 0: one for all, 1: per output channel / column
};

/// What the ops hold: an integer convolution prepared for constant weights (tinyq's kernels
/// or the oneDNN adapter): sum (w - zw)(x - zx), exact, then the epilogue.
class QConvKernel {
 public:
  virtual ~QConvKernel() = default;
  virtual void run(const ConvParams& p, const QInput& x, const QOutput& y, int threads) const = 0;
  virtual std::string name() const = 0;
};

/// An integer convolution (ConvInteger, QLinearConv, the fused dynamic-quantisation conv):
/// sum (w - zw)(x - zx), exact, then the epilogue. Weights with w - zw outside int8 go to
/// the scalar reference (QConvFast::declines says so).
class QConvFast final : public QConvKernel {
 public:
  static std::string declines(const ConvParams& p, const QWeights& w);
  QConvFast(Isa isa, const ConvParams& p, const QWeights& w);
  void run(const ConvParams& p, const QInput& x, const QOutput& y, int threads) const override;
  std::string name() const override { return name_; }
  /// True when this convolution accumulates exactly in fp32 (thin shapes, see conv_fast.cpp).
  bool via_f32() const { return via_f32_; }

 private:
  void run_tiles(const ConvParams& p, const QInput& x, const QOutput& y, int threads) const;
  void run_c4(const ConvParams& p, const QInput& x, const QOutput& y, int threads) const;
  // One plane row of a taps-packed c4 layer (one input channel) into d.
  void pack_taps_row(const QInput& x, int64_t n, int64_t channels, int64_t ih, int64_t H, int64_t W, int64_t pl,
                     int64_t wp, int64_t KW, uint8_t zk, QuantizeU8Fn quantize, uint8_t* tmp, uint8_t* d) const;
  void run_via_f32(const ConvParams& p, const QInput& x, const QOutput& y, int threads) const;

  Isa isa_;
  const char* name_;
  bool via_f32_ = false;  // exact fp32 accumulation (depthwise-like shapes; see conv_fast.cpp)
  QTileRowsFn tile_fn_ = nullptr;
  RequantF32AccFn requant_ = nullptr;
  QKernelLayout layout_{};
  int64_t m_, cg_, mg_, group_, kernel_[2], cgp_, ksteps_;
  std::vector<uint8_t> packed_;     // tile weights, [group][block][kstep][nb][kg]
  std::vector<int32_t> wsum_;       // per output channel: sum of (w - zw)
  std::unique_ptr<ConvF32Fast> f32_;
  // c4 tiles (micro_kernels.h, QTileC4) for undilated stride-1 2-D convolutions of one group:
  // a layer with few output channels (learned_filter's 16) runs on them instead.
  QTileC4Fn c4_fn_ = nullptr;
  PackC4Fn pack_c4_ = nullptr;
  std::vector<int8_t> packed_c4_;  // [block of 16][kstep][channel][4] (c4_weight_index)
  int64_t c4_groups_ = 0;          // input channel groups of 4
  bool taps_packed_ = false;       // one input channel: a k-step holds a kernel row's taps
  mutable ScratchCache scratch_, scratch2_;
};

/// An integer GEMM with constant B [K, N] (MatMulInteger, the fused dynamic-quantisation
/// MatMul / Gemm): rows of A are the tile kernels' positions, columns of B their channels.
class QGemmFast {
 public:
  static std::string declines(int64_t k, int64_t n, const QWeights& b, bool b_transposed = false);
  /// b: [K, N] row-major, or [N, K] when `b_transposed` (Gemm's transB).
  QGemmFast(Isa isa, int64_t k, int64_t n, const QWeights& b, bool b_transposed = false);
  /// A: [rows, K] row-major (ld = K). F32 inputs are quantised with x.scale / x.zero_point.
  void run(int64_t rows, const QInput& a, const QOutput& y, int64_t ld_y, int threads) const;
  int64_t k() const { return k_; }
  int64_t n() const { return n_; }
  std::string name() const { return name_; }

 private:
  Isa isa_;
  const char* name_;
  QTileRowsFn tile_fn_;
  QKernelLayout layout_;
  int64_t k_, n_, kp_, ksteps_;
  std::vector<uint8_t> packed_;
  std::vector<int32_t> wsum_;
  std::vector<int64_t> k_off_;
  mutable ScratchCache scratch_;
};

/// An fp32 GEMM y = act(A * B + bias) with constant B, packed once.
class GemmF32Fast {
 public:
  /// b: [K, N] row-major, or [N, K] when `b_transposed`.
  GemmF32Fast(Isa isa, int64_t k, int64_t n, const float* b, bool b_transposed);
  /// A: [rows, K] with row stride lda; y: [rows, N] with row stride ld_y.
  void run(int64_t rows, const float* a, int64_t lda, const float* bias, bool clamp, float lo, float hi, float* y,
           int64_t ld_y, int threads) const;
  std::string name() const { return name_; }

 private:
  Isa isa_;
  const char* name_;
  ConvF32RowFn fn_;
  int mr_;
  int64_t k_, n_;
  std::vector<float> packed_;  // [block of mr columns][k][mr]
  std::vector<int64_t> k_off_;
  mutable ScratchCache scratch_;
};

/// The row kernels and element-wise helpers for an ISA level.
ConvF32RowFn conv_f32_row_fn(Isa isa);
const char* conv_f32_row_name(Isa isa);
MinMaxFn minmax_fn(Isa isa);
QuantizeU8Fn quantize_u8_fn(Isa isa);
QuantizeS8Fn quantize_s8_fn(Isa isa);
DequantizeFn dequantize_fn(Isa isa);
QAddFn qadd_fn(Isa isa);
/// DynamicQuantizeLinear's quantisation into a chain store (chain_kernels.h); with
/// ChainStore::F32, q - zero_point as floats (the exact-fp32 integer paths' input).
ChainQuantizeFn chain_quantize_fn(Isa isa);

}  // namespace tinyq::kernels
