// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include "kernels/fast/select.h"

#include <cstdlib>
#include <cstring>

#include "kernels/fast/conv_winograd.h"
#include "kernels/onednn/onednn_conv.h"
#include "tinyq/tensor.h"

namespace tinyq::kernels {

namespace {

struct ConvProblem {
  const ConvParams* p;
  const QWeights* w;  // integer convolutions only
  bool has_residual;
  bool requant = false;  // integer convolutions with 8-bit output (QLinearConv)
};

int64_t conv_k(const ConvParams& p) {
  int64_t k = p.in_channels / std::max<int64_t>(1, p.group);
  for (int a = 0; a < p.spatial_rank; ++a) k *= p.kernel[a];
  return k;
}

// TINYQ_ONEDNN: "0" never uses oneDNN, "1" uses it wherever it takes the problem, unset
// follows the measured policy below.
int onednn_mode() {
  static const int mode = [] {
    const char* v = std::getenv("TINYQ_ONEDNN");
    if (!v || !*v) return -1;
    return std::strcmp(v, "0") == 0 ? 0 : 1;
  }();
  return mode;
}

std::string onednn_policy(bool wins, const char* why_not) {
  if (onednn_mode() == 0) return "disabled by TINYQ_ONEDNN=0";
  if (onednn_mode() == 1 || wins) return "";
  return why_not;
}

// Where oneDNN won in bench/bench.sh's kernel comparison on AVX-512 VNNI (its own reorders to
// and from NCHW included): fp32 3x3 convolutions with 64 or more input channels (K >= 512,
// ~15% faster); int8 depthwise (~2x) and pointwise/3x3 with 32+ input channels and K >= 64
// (1.3-2x). tinyq's kernels won the rest (learned_filter's 16-channel convolutions, C = 1
// entry convolutions, narrow 1x1s), where the reorders cost more than the convolution.
std::string conv_onednn_declines(const ConvProblem& pr) {
  std::string why = ConvF32OneDnn::declines(*pr.p, pr.has_residual);
  if (!why.empty()) return why;
  const bool depthwise = pr.p->in_channels == pr.p->group && pr.p->out_channels == pr.p->group;
  // 3x3 convolutions Winograd takes: it measured 1.7-4x faster than oneDNN up to 128
  // channels (28x28 to 112x112 planes); at 256+ channels on 14x14 and smaller planes oneDNN won.
  if (ConvF32Winograd::declines(*pr.p).empty() && pr.p->in_channels < 256)
    return onednn_policy(false, "Winograd measured faster below 256 input channels");
  return onednn_policy(!depthwise && conv_k(*pr.p) >= 512, "tinyq's kernels measured faster below K = 512");
}

std::string qconv_onednn_declines(const ConvProblem& pr) {
  std::string why = QConvOneDnn::declines(*pr.p, *pr.w);
  if (!why.empty()) return why;
  // Requantised outputs: the adapter's requantisation is a scalar pass over oneDNN's int32
  // output, which costs more than the convolution saves (nr_metric's QDQ file: 2x slower).
  if (pr.requant && onednn_mode() != 1) return "tinyq's fused requantising epilogue measured faster";
  const int64_t cg = pr.p->in_channels / pr.p->group, mg = pr.p->out_channels / pr.p->group;
  const bool depthwise = cg == 1 && mg == 1;
  return onednn_policy(depthwise || (cg >= 32 && conv_k(*pr.p) >= 64),
                       "tinyq's kernels measured faster unless depthwise or 32+ input channels");
}

std::string conv_declines(const ConvProblem& pr) { return conv_fast_declines(*pr.p); }
std::string winograd_declines(const ConvProblem& pr) { return ConvF32Winograd::declines(*pr.p); }
std::string qconv_declines(const ConvProblem& pr) { return QConvFast::declines(*pr.p, *pr.w); }

struct GemmProblem {
  int64_t k, n;
  const QWeights* b;
  bool trans;
};

std::string qgemm_declines(const GemmProblem& pr) { return QGemmFast::declines(pr.k, pr.n, *pr.b, pr.trans); }

std::string describe_conv(const ConvParams& p) {
  std::string s = "weights [" + std::to_string(p.out_channels) + "," + std::to_string(p.in_channels / p.group);
  for (int a = 0; a < p.spatial_rank; ++a) s += "," + std::to_string(p.kernel[a]);
  return s + "] group " + std::to_string(p.group);
}

// Which implementation a candidate stands for.
enum class Impl { OneDnn, Own, Winograd };
struct Choice {
  Impl impl;
  Isa isa;
};

}  // namespace

ConvParams weight_geometry(const std::vector<int64_t>& w_shape, int64_t group, const std::vector<int64_t>& strides,
                           const std::vector<int64_t>& dilations) {
  ConvParams p;
  p.out_channels = w_shape.size() > 0 ? w_shape[0] : 0;
  p.in_channels = w_shape.size() > 1 ? w_shape[1] * group : 0;
  p.group = group;
  p.spatial_rank = static_cast<int>(w_shape.size()) - 2;
  for (int a = 0; a < p.spatial_rank && a < kMaxSpatialRank; ++a) {
    p.kernel[a] = w_shape[2 + static_cast<size_t>(a)];
    p.in_size[a] = p.out_size[a] = 1;
    if (static_cast<size_t>(a) < strides.size()) p.stride[a] = strides[static_cast<size_t>(a)];
    if (static_cast<size_t>(a) < dilations.size()) p.dilation[a] = dilations[static_cast<size_t>(a)];
  }
  return p;
}

std::shared_ptr<const ConvF32Kernel> select_conv_f32(const ConvParams& wg, const float* weights, bool has_residual,
                                                     bool allow_ref) {
  using C = Candidate<ConvProblem, Choice>;
  static const std::vector<C> list = {
      {"conv_f32_onednn", Isa::Avx2, conv_onednn_declines, {Impl::OneDnn, Isa::Avx2}},
      {"conv_f32_winograd_avx512", Isa::Avx512, winograd_declines, {Impl::Winograd, Isa::Avx512}},
      {"conv_f32_winograd_avx2_fma", Isa::Avx2, winograd_declines, {Impl::Winograd, Isa::Avx2}},
      {"conv_f32_avx512", Isa::Avx512, conv_declines, {Impl::Own, Isa::Avx512}},
      {"conv_f32_avx2_fma", Isa::Avx2, conv_declines, {Impl::Own, Isa::Avx2}},
      {"conv_f32_ref", Isa::Ref, nullptr, {Impl::Own, Isa::Ref}},
  };
  ConvProblem pr{&wg, nullptr, has_residual};
  const C& c = choose("conv_f32", list, pr, describe_conv(wg));
  if (c.impl.impl == Impl::OneDnn) return std::make_shared<ConvF32OneDnn>(wg, weights);
  if (c.impl.impl == Impl::Winograd) return std::make_shared<ConvF32Winograd>(c.impl.isa, wg, weights);
  if (!conv_fast_declines(wg).empty()) return nullptr;  // 3-D: only kernels/ref has it
  if (c.impl.isa == Isa::Ref && !allow_ref) return nullptr;
  return std::make_shared<ConvF32Fast>(c.impl.isa, wg, weights);
}

std::shared_ptr<const QConvKernel> select_qconv(const ConvParams& wg, const QWeights& w, bool allow_ref,
                                                bool requant) {
  using C = Candidate<ConvProblem, Choice>;
  static const std::vector<C> list = {
      {"qconv_u8s8_onednn", Isa::Avx512Vnni, qconv_onednn_declines, {Impl::OneDnn, Isa::Avx512Vnni}},
      {"qconv_u8s8_avx512vnni", Isa::Avx512Vnni, qconv_declines, {Impl::Own, Isa::Avx512Vnni}},
      {"qconv_u8s8_avx2", Isa::Avx2, qconv_declines, {Impl::Own, Isa::Avx2}},
      {"qconv_ref", Isa::Ref, nullptr, {Impl::Own, Isa::Ref}},
  };
  ConvProblem pr{&wg, &w, false, requant};
  const C& c = choose("qconv", list, pr, describe_conv(wg) + (requant ? ", requantised" : ""));
  if (c.impl.impl == Impl::OneDnn) return std::make_shared<QConvOneDnn>(wg, w);
  if (!QConvFast::declines(wg, w).empty()) return nullptr;
  if (c.impl.isa == Isa::Ref && !allow_ref) return nullptr;
  return std::make_shared<QConvFast>(c.impl.isa, wg, w);
}

std::shared_ptr<const QGemmFast> select_qgemm(int64_t k, int64_t n, const QWeights& b, bool b_transposed,
                                              bool allow_ref) {
  using C = Candidate<GemmProblem, Isa>;
  static const std::vector<C> list = {
      {"qgemm_u8s8_avx512vnni", Isa::Avx512Vnni, qgemm_declines, Isa::Avx512Vnni},
      {"qgemm_u8s8_avx2", Isa::Avx2, qgemm_declines, Isa::Avx2},
      {"qgemm_ref", Isa::Ref, nullptr, Isa::Ref},
  };
  GemmProblem pr{k, n, &b, b_transposed};
  const C& c = choose("qgemm", list, pr, "B [" + std::to_string(k) + "," + std::to_string(n) + "]");
  if (!QGemmFast::declines(k, n, b, b_transposed).empty()) return nullptr;
  if (c.impl == Isa::Ref && !allow_ref) return nullptr;
  return std::make_shared<QGemmFast>(c.impl, k, n, b, b_transposed);
}

std::shared_ptr<const GemmF32Fast> select_gemm_f32(int64_t k, int64_t n, const float* b, bool b_transposed,
                                                   bool allow_ref) {
  using C = Candidate<GemmProblem, Isa>;
  static const std::vector<C> list = {
      {"sgemm_avx512", Isa::Avx512, nullptr, Isa::Avx512},
      {"sgemm_avx2_fma", Isa::Avx2, nullptr, Isa::Avx2},
      {"sgemm_ref", Isa::Ref, nullptr, Isa::Ref},
  };
  GemmProblem pr{k, n, nullptr, b_transposed};
  const C& c = choose("sgemm", list, pr, "B [" + std::to_string(k) + "," + std::to_string(n) + "]");
  if (k < 1 || n < 1) return nullptr;
  if (c.impl == Isa::Ref && !allow_ref) return nullptr;
  return std::make_shared<GemmF32Fast>(c.impl, k, n, b, b_transposed);
}

namespace {

// Zero points widened to int32: none (0), one, or `count`; false for any other shape or type.
bool zero_points(const Tensor* w, const Tensor* z, int64_t count, std::vector<int32_t>* out) {
  out->assign(1, 0);
  if (!z) return true;
  if (z->dtype() != w->dtype() || (z->numel() != 1 && z->numel() != count) || z->rank() > 1) return false;
  out->clear();
  for (int64_t i = 0; i < z->numel(); ++i)
    out->push_back(z->dtype() == DType::U8 ? static_cast<const uint8_t*>(z->raw())[i] : static_cast<const int8_t*>(z->raw())[i]);
  return true;
}

bool is_8bit(const Tensor* t) { return t && (t->dtype() == DType::U8 || t->dtype() == DType::I8); }

}  // namespace

std::shared_ptr<const QConvKernel> prepare_qconv(const Tensor* w, const Tensor* w_zero_point, int64_t group,
                                                 bool requant) {
  if (!is_8bit(w) || w->rank() < 3 || w->rank() > 4 || group < 1 || w->dim(0) % group != 0) return nullptr;
  for (int64_t d : w->shape())
    if (d < 1) return nullptr;
  std::vector<int32_t> zp;
  if (!zero_points(w, w_zero_point, w->dim(0), &zp)) return nullptr;
  QWeights qw;
  qw.data = w->raw();
  qw.is_u8 = w->dtype() == DType::U8;
  qw.zero_points = zp.data();
  qw.zp_stride = zp.size() == 1 ? 0 : 1;
  return select_qconv(weight_geometry(w->shape(), group), qw, false, requant);
}

std::shared_ptr<const QGemmFast> prepare_qgemm(const Tensor* b, const Tensor* b_zero_point) {
  if (!is_8bit(b) || b->rank() != 2 || b->dim(0) < 1 || b->dim(1) < 1) return nullptr;
  std::vector<int32_t> zp;
  if (!zero_points(b, b_zero_point, b->dim(1), &zp)) return nullptr;
  QWeights qw;
  qw.data = b->raw();
  qw.is_u8 = b->dtype() == DType::U8;
  qw.zero_points = zp.data();
  qw.zp_stride = zp.size() == 1 ? 0 : 1;
  return select_qgemm(b->dim(0), b->dim(1), qw, false, false);
}

Isa elementwise_isa() {
  static const Isa isa = isa_usable(Isa::Avx2) ? Isa::Avx2 : Isa::Ref;
  return isa;
}

}  // namespace tinyq::kernels
