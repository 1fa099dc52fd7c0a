// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include "kernels/fast/select.h"

#include "tinyq/tensor.h"

namespace tinyq::kernels {

namespace {

struct ConvProblem {
  const ConvParams* p;
  const QWeights* w;  // integer convolutions only
};

std::string conv_declines(const ConvProblem& pr) { return conv_fast_declines(*pr.p); }
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

}  // namespace

ConvParams weight_geometry(const std::vector<int64_t>& w_shape, int64_t group) {
  ConvParams p;
  p.out_channels = w_shape.size() > 0 ? w_shape[0] : 0;
  p.in_channels = w_shape.size() > 1 ? w_shape[1] * group : 0;
  p.group = group;
  p.spatial_rank = static_cast<int>(w_shape.size()) - 2;
  for (int a = 0; a < p.spatial_rank && a < kMaxSpatialRank; ++a) {
    p.kernel[a] = w_shape[2 + static_cast<size_t>(a)];
    p.in_size[a] = p.out_size[a] = 1;
  }
  return p;
}

std::shared_ptr<const ConvF32Fast> select_conv_f32(const ConvParams& wg, const float* weights, bool allow_ref) {
  using C = Candidate<ConvProblem, Isa>;
  static const std::vector<C> list = {
      {"conv_f32_avx512", Isa::Avx512, conv_declines, Isa::Avx512},
      {"conv_f32_avx2_fma", Isa::Avx2, conv_declines, Isa::Avx2},
      {"conv_f32_ref", Isa::Ref, nullptr, Isa::Ref},
  };
  ConvProblem pr{&wg, nullptr};
  const C& c = choose("conv_f32", list, pr, describe_conv(wg));
  if (!conv_fast_declines(wg).empty()) return nullptr;  // 3-D: only kernels/ref has it
  if (c.impl == Isa::Ref && !allow_ref) return nullptr;
  return std::make_shared<ConvF32Fast>(c.impl, wg, weights);
}

std::shared_ptr<const QConvFast> select_qconv(const ConvParams& wg, const QWeights& w, bool allow_ref) {
  using C = Candidate<ConvProblem, Isa>;
  static const std::vector<C> list = {
      {"qconv_u8s8_avx512vnni", Isa::Avx512Vnni, qconv_declines, Isa::Avx512Vnni},
      {"qconv_u8s8_avx2", Isa::Avx2, qconv_declines, Isa::Avx2},
      {"qconv_ref", Isa::Ref, nullptr, Isa::Ref},
  };
  ConvProblem pr{&wg, &w};
  const C& c = choose("qconv", list, pr, describe_conv(wg));
  if (!QConvFast::declines(wg, w).empty()) return nullptr;
  if (c.impl == Isa::Ref && !allow_ref) return nullptr;
  return std::make_shared<QConvFast>(c.impl, wg, w);
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

Isa elementwise_isa() {
  static const Isa isa = isa_usable(Isa::Avx2) ? Isa::Avx2 : Isa::Ref;
  return isa;
}

}  // namespace tinyq::kernels
