// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// Convolution chains: a run of convolutions where each layer's output feeds only the next
// layer (MobileNet-style bodies: a narrow entry convolution, then depthwise 3x3 / pointwise 1x1
// pairs), run with the activations channels-last between layers, in buffers that carry the next
// layer's padding as a halo (kernels/fast/chain_kernels.h). Only the chain's input is read in
// NCHW and only its output written in NCHW (or reduced to its spatial mean: the global average
// pooling that usually follows), so no layer pays a layout conversion, an output tensor or a
// zero fill. Three kinds, by how the graph computed the layers:
//   F32      Conv (+ bias) (+ Relu / Clip)                                    FusedConv
//   Dynamic  DynamicQuantizeLinear -> ConvInteger -> Cast -> Mul -> Add -> act  DynQConv: each
//            layer's float output is quantised for the next (range over the whole batch, as
//            DynamicQuantizeLinear takes it), exactly as the graph does it
//   Static   QLinearConv chains of 8-bit data (x and y per tensor; w per tensor or channel)
// The integer layers are exact: integer kernels for dense layers with 4+ input channels (VNNI,
// or AVX2 int16 pairs), fp32 accumulation of exact small integers for depthwise and narrow
// layers (every partial sum below 2^24, checked when the chain is built).

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "common/qmath.h"
#include "kernels/dispatch.h"
#include "kernels/fast/chain_kernels.h"
#include "kernels/fast/conv_fast.h"

namespace tinyq::kernels {

enum class ChainKind { F32, Dynamic, Static };

/// One layer as the op hands it over (pointers valid while the ConvChain is built).
struct ChainLayerDesc {
  int64_t in_channels = 0, out_channels = 0, group = 1;
  int64_t kernel[2] = {1, 1}, stride[2] = {1, 1}, dilation[2] = {1, 1};
  int64_t pad_begin[2] = {0, 0}, pad_end[2] = {0, 0};
  const float* w_f32 = nullptr;       ///< F32: [M, C / group, kh, kw]
  const int32_t* w_int = nullptr;     ///< Dynamic / Static: w - w_zero_point, same layout
  const float* bias = nullptr;        ///< F32 / Dynamic: per output channel, or null
  const int32_t* bias_i32 = nullptr;  ///< Static: QLinearConv's B, or null
  const float* scale = nullptr;       ///< Dynamic: w_scale per channel; Static: sx * sw / sy per channel
  bool clamp = false;                 ///< F32 / Dynamic: the activation
  float lo = 0.0f, hi = 0.0f;
  int32_t x_zero_point = 0, y_zero_point = 0;  ///< Static, in kernel values (int8 data: + 128)
};

struct ChainDesc {
  ChainKind kind = ChainKind::F32;
  std::vector<ChainLayerDesc> layers;
  bool data_u8 = true;      ///< Static: uint8 data (else int8) in and out
  bool mean = false;        ///< end in the spatial mean ([N, M] floats) instead of NCHW
  float mean_scale = 1.0f;  ///< Static with a mean: the DequantizeLinear scale before it
  /// Static: the chain starts with QuantizeLinear (float input, this per-tensor scale and zero
  /// point, in kernel values) instead of taking 8-bit input.
  bool quantize_input = false;
  float in_scale = 1.0f;
  int32_t in_zero_point = 0;
};

class ConvChain {
 public:
  /// Why this chain cannot run ("" when it can).
  static std::string declines(const ChainDesc& d);
  /// `isa` picks the kernels (Avx512Vnni, Avx512, Avx2 or Ref; see conv_chain.cpp).
  ConvChain(Isa isa, const ChainDesc& d);

  /// Output spatial size for an input of h x w; false (and a reason) when a layer has no
  /// output position.
  bool out_size(int64_t h, int64_t w, int64_t* oh, int64_t* ow, std::string* why) const;
  int64_t in_channels() const { return layers_.front().c; }
  int64_t out_channels() const { return layers_.back().m; }

  /// x: NCHW [n, C, h, w] (float for F32, Dynamic and quantize_input, else 8-bit). y: the mean as [n, M]
  /// floats, or NCHW [n, M, oh, ow] (float, or 8-bit for Static).
  void run(const void* x, int64_t n, int64_t h, int64_t w, void* y, int threads) const;
  std::string name() const { return name_; }

  /// With TINYQ_PROFILE (kernels/dispatch.h): the time in each layer and, in the dynamic
  /// chains, in each quantisation between layers, summed over runs (ns), labelled
  /// ("layer 2: 1x1 conv, 16 -> 32 channels"). Empty otherwise.
  std::vector<std::pair<std::string, double>> profile() const;

 private:
  enum class Kernel { DenseF32, DenseInt, DwF32 };
  struct Layer {
    Kernel kernel = Kernel::DenseF32;
    bool planar = false;                    // the integer entry layer: input [n][c][hp][wp] (see conv_chain.cpp)
    ChainStore in_store = ChainStore::F32;  // this layer's input buffer
    int64_t c = 0, cs = 0, m = 0, ms = 0;   // channels, input channel stride, out channels, padded
    int64_t kh = 1, kw = 1, sh = 1, sw = 1, dh = 1, dw = 1, pt = 0, pl = 0, pb = 0, pr = 0;
    std::vector<float> wf;           // DenseF32: [ms/16][k][16]; DwF32: [taps][ms]
    std::vector<int8_t> w8;          // DenseInt (U8): [ms/16][ksteps][16][4]
    std::vector<int16_t> w16;        // DenseInt (S16): [ms/16][ksteps][16][2]
    std::vector<float> bias, scale;  // padded to ms
    std::vector<int32_t> wsum;       // per channel: sum of the effective weights (integer kernels)
    std::vector<int32_t> bias_i32;   // Static: the epilogue corr (z * wsum - B), padded
    std::vector<float> corr_f;       // Static, fp32 kernels: the same as floats when exact, or empty
    bool clamp = false;
    float lo = 0.0f, hi = 0.0f;
    int32_t x_zp = 0, y_zp = 0;  // Static, kernel values
  };
  struct Geometry {  // one layer for one input size
    int64_t h, w, oh, ow, hp, wp;
    std::vector<int64_t> k_off;
  };
  struct Plan {
    int64_t n = 0, h = 0, w = 0;
    std::vector<Geometry> g;
    size_t buf_bytes = 0, raw_bytes = 0, out_bytes = 0;
  };

  std::shared_ptr<const Plan> plan_for(int64_t n, int64_t h, int64_t w) const;
  void fill_input(const void* x, int64_t n, int64_t h, int64_t w, const Geometry& g0, const qmath::QParams& q,
                  int32_t zk, uint8_t* buf) const;
  size_t buffer_bytes(size_t layer, const Geometry& g, int64_t n) const;

  ChainKind kind_;
  bool data_u8_, mean_;
  float mean_scale_;
  bool quantize_input_;
  qmath::QParams in_q_;  // quantize_input: QuantizeLinear's parameters, zero point in kernel values
  std::vector<Layer> layers_;
  std::string name_;
  ChainDenseFn dense_f32_, dense_int_;
  ChainDwFn dw_;
  ChainQuantizeFn quantize_;
  ChainMeanFn mean_fn_;
  MinMaxFn minmax_;
  ChainStore int_store_;
  mutable std::mutex plan_mu_;
  mutable std::shared_ptr<const Plan> plan_;
  mutable ScratchCache scratch_;
  // TINYQ_PROFILE: ns per layer (2i) and per quantisation after it (2i + 1); runs may overlap.
  std::unique_ptr<std::atomic<int64_t>[]> part_ns_;
};

/// The chain kernels for the best ISA the CPU allows (TINYQ_MAX_ISA, TINYQ_VERBOSE_DISPATCH
/// as every family), or nullptr when ConvChain::declines the chain.
std::shared_ptr<const ConvChain> select_conv_chain(const ChainDesc& d);

}  // namespace tinyq::kernels
