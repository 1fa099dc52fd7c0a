// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// QuantizeLinear (opsets 10 and 13): y = saturate(round_half_even(x / y_scale) + y_zero_point).
// x is float or int32; y takes y_zero_point's type (uint8 when it is omitted). Opset 10 takes
// per-tensor parameters only; from opset 13 a 1-D y_scale quantises along `axis` (default 1).

#include "runtime/ops/quant_support.h"

namespace tinyq::rt {

std::unique_ptr<Op> make_quantize_linear(const OpContext& ctx) {
  const quant::LinearQuantSpec spec = quant::make_linear_quant_spec(ctx, "y", quant::is_8bit, "uint8 or int8");
  return make_lambda_op([spec](const OpInputs& in, std::vector<Tensor>& out) {
    const Tensor& x = *in[0];
    const Tensor* zp = in.size() > 2 ? in[2] : nullptr;
    const DType y_type = zp ? zp->dtype() : DType::U8;
    const quant::LinearQuantParams q = quant::linear_quant_params(spec, x, *in[1], zp, y_type);
    Tensor y(y_type, x.shape());
    dispatch_types<float, int32_t>(x.dtype(), [&](auto xtag) {
      using TX = decltype(xtag);
      dispatch_types<uint8_t, int8_t>(y_type, [&](auto ytag) {
        using TY = decltype(ytag);
        kernels::quantize_ref(x.data<TX>(), q.layout, q.scales.data(), q.zero_points.data(), y.data<TY>());
      });
    });
    out[0] = std::move(y);
  });
}

}  // namespace tinyq::rt
