// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// Constant (value, value_float(s), value_int(s); sparse and string values are refused) and
// ConstantOfShape (a tensor of the given shape filled with `value`, default float 0).

#include <cstring>

#include "runtime/ops/op_support.h"

namespace tinyq::rt {

std::unique_ptr<Op> make_constant(const OpContext& ctx) {
  check_attrs(ctx, {"value", "value_float", "value_floats", "value_int", "value_ints", "value_string",
                    "value_strings", "sparse_value"});
  check_arity(ctx, 0, 0, 1, 1);
  if (ctx.node.attributes.size() != 1)
    ctx.fail("needs exactly one value attribute, has " + std::to_string(ctx.node.attributes.size()));
  const Attribute& a = ctx.node.attributes[0];
  Tensor value;
  if (a.name == "value") {
    if (a.kind != Attribute::Kind::Tensor) ctx.fail("attribute 'value' should be a tensor");
    if (a.t.empty()) ctx.fail("attribute 'value' holds no tensor tinyq supports");
    value = a.t;
  } else if (a.name == "value_float") {
    value = Tensor::scalar<float>(ctx.node.attr_float("value_float", 0.0f));
  } else if (a.name == "value_floats") {
    std::vector<float> v = ctx.node.attr_floats("value_floats");
    value = Tensor::from_vector<float>({static_cast<int64_t>(v.size())}, v);
  } else if (a.name == "value_int") {
    value = Tensor::scalar<int64_t>(ctx.node.attr_int("value_int", 0));
  } else if (a.name == "value_ints") {
    std::vector<int64_t> v = ctx.node.attr_ints("value_ints");
    value = Tensor::from_vector<int64_t>({static_cast<int64_t>(v.size())}, v);
  } else {
    ctx.fail("attribute '" + a.name + "' is not supported (tinyq holds no string or sparse tensors)");
  }
  return make_lambda_op([value](const OpInputs&, std::vector<Tensor>& out) { out[0] = value; });
}

std::unique_ptr<Op> make_constant_of_shape(const OpContext& ctx) {
  check_attrs(ctx, {"value"});
  check_arity(ctx, 1, 1, 1, 1);
  Tensor value = Tensor::scalar<float>(0.0f);
  if (const Attribute* a = ctx.node.find_attr("value")) {
    if (a->kind != Attribute::Kind::Tensor) ctx.fail("attribute 'value' should be a tensor");
    if (a->t.empty() || a->t.numel() != 1) ctx.fail("attribute 'value' must hold one element of a numeric type");
    value = a->t;
  }
  if (const Tensor* shape = ctx.constant(0)) {
    if (shape->dtype() != DType::I64) ctx.fail(std::string("shape must be int64, is ") + dtype_name(shape->dtype()));
    if (shape->rank() != 1) ctx.fail("shape must be 1-D, has shape " + shape_to_string(shape->shape()));
  }
  return make_lambda_op([value](const OpInputs& in, std::vector<Tensor>& out) {
    const Tensor& target = *in[0];
    if (target.rank() != 1) throw Error("shape must be 1-D, has shape " + shape_to_string(target.shape()));
    Tensor y(value.dtype(), int_values(target, "shape"));
    const size_t esize = dtype_size(value.dtype());
    auto* dst = static_cast<uint8_t*>(y.raw());
    for (int64_t i = 0; i < y.numel(); ++i) std::memcpy(dst + static_cast<size_t>(i) * esize, value.raw(), esize);
    out[0] = std::move(y);
  });
}

}  // namespace tinyq::rt
