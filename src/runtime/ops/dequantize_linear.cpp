// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// DequantizeLinear (opsets 10 and 13): y = (x - x_zero_point) * x_scale, float output.
// x is uint8, int8 or int32 (a bias quantised at scale_x * scale_w; its zero point, when given,
// must be 0). Opset 10 takes per-tensor parameters only; from opset 13 a 1-D x_scale
// dequantises along `axis` (default 1).

#include "runtime/ops/quant_support.h"

namespace tinyq::rt {

namespace {

bool is_dq_type(DType t) { return quant::is_8bit(t) || t == DType::I32; }

}  // namespace

std::unique_ptr<Op> make_dequantize_linear(const OpContext& ctx) {
  const quant::LinearQuantSpec spec = quant::make_linear_quant_spec(ctx, "x", is_dq_type, "uint8, int8 or int32");
  return make_lambda_op([spec](const OpInputs& in, std::vector<Tensor>& out) {
    const Tensor& x = *in[0];
    const Tensor* zp = in.size() > 2 ? in[2] : nullptr;
    if (!is_dq_type(x.dtype()))
      throw Error(std::string("x must be uint8, int8 or int32, is ") + dtype_name(x.dtype()));
    const quant::LinearQuantParams q = quant::linear_quant_params(spec, x, *in[1], zp, x.dtype());
    if (x.dtype() == DType::I32)
      for (int32_t z : q.zero_points)
        if (z != 0) throw Error("x_zero_point of an int32 input must be 0, has " + std::to_string(z));
    Tensor y(DType::F32, x.shape());
    dispatch_types<uint8_t, int8_t, int32_t>(x.dtype(), [&](auto tag) {
      using TX = decltype(tag);
      kernels::dequantize_ref(x.data<TX>(), q.layout, q.scales.data(), q.zero_points.data(), y.data<float>());
    });
    out[0] = std::move(y);
  });
}

}  // namespace tinyq::rt
