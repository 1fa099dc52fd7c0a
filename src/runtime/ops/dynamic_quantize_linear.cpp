// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// DynamicQuantizeLinear (opset 11): uint8 quantisation of a float tensor with parameters from
// its own range (qmath::dynamic_qparams_uint8), returning y, y_scale and y_zero_point (scalars).

#include "common/qmath.h"
#include "runtime/ops/quant_support.h"

namespace tinyq::rt {

std::unique_ptr<Op> make_dynamic_quantize_linear(const OpContext& ctx) {
  check_arity(ctx, 1, 1, 3, 3);
  check_attrs(ctx, {});
  return make_lambda_op([](const OpInputs& in, std::vector<Tensor>& out) {
    const Tensor& x = *in[0];
    if (x.dtype() != DType::F32) throw Error(std::string("x must be float, is ") + dtype_name(x.dtype()));
    float lo = 0.0f, hi = 0.0f;
    kernels::minmax_f32_ref(x.data<float>(), x.numel(), &lo, &hi);
    const qmath::QParams q = qmath::dynamic_qparams_uint8(lo, hi);
    Tensor y(DType::U8, x.shape());
    const float scale = q.scale;
    const int32_t zp = q.zero_point;
    kernels::quantize_f32_u8_ref(x.data<float>(), quant::tensor_layout(x.shape()), &scale, &zp, y.data<uint8_t>());
    out[0] = std::move(y);
    out[1] = Tensor::scalar<float>(scale);
    out[2] = Tensor::scalar<uint8_t>(static_cast<uint8_t>(zp));
  });
}

}  // namespace tinyq::rt
