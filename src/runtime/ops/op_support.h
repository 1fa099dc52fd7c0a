// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// Small helpers the op factories share: arity and attribute-name checks (so a malformed node
// fails when the session is built, naming the node) and dispatch from a runtime DType to a C++
// element type.

#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <string>
#include <vector>

#include "runtime/op.h"
#include "tinyq/error.h"
#include "tinyq/tensor.h"

namespace tinyq::rt {

/// Fails unless the node has `min_in`..`max_in` inputs (the first `min_in` present, not
/// omitted) and `min_out`..`max_out` outputs (the first `min_out` named).
inline void check_arity(const OpContext& ctx, size_t min_in, size_t max_in, size_t min_out, size_t max_out) {
  const Node& n = ctx.node;
  if (n.inputs.size() < min_in || n.inputs.size() > max_in) {
    ctx.fail("takes " + (min_in == max_in ? std::to_string(min_in) : std::to_string(min_in) + " to " + std::to_string(max_in)) +
             " inputs, has " + std::to_string(n.inputs.size()));
  }
  for (size_t i = 0; i < min_in; ++i)
    if (!n.has_input(i)) ctx.fail("required input " + std::to_string(i) + " is missing");
  if (n.outputs.size() < min_out || n.outputs.size() > max_out) {
    ctx.fail("takes " + (min_out == max_out ? std::to_string(min_out) : std::to_string(min_out) + " to " + std::to_string(max_out)) +
             " outputs, has " + std::to_string(n.outputs.size()));
  }
  for (size_t i = 0; i < min_out; ++i)
    if (n.outputs[i].empty()) ctx.fail("required output " + std::to_string(i) + " is unnamed");
}

/// Fails on any attribute whose name is not listed (as ONNX Runtime's checker does).
inline void check_attrs(const OpContext& ctx, std::initializer_list<const char*> allowed) {
  for (const Attribute& a : ctx.node.attributes) {
    bool known = false;
    for (const char* name : allowed) known |= a.name == name;
    if (!known) ctx.fail("unknown attribute '" + a.name + "' at opset " + std::to_string(ctx.opset));
  }
}

/// Fails when a required attribute is absent.
inline const Attribute& require_attr(const OpContext& ctx, const char* name) {
  const Attribute* a = ctx.node.find_attr(name);
  if (!a) ctx.fail(std::string("required attribute '") + name + "' is missing");
  return *a;
}

/// Calls fn(T{}) for the C++ type T among Ts whose DType is `dtype`; throws tinyq::Error
/// naming the type when none is. Use with a generic lambda: [&](auto tag) { using T = decltype(tag); }.
template <typename... Ts, typename Fn>
void dispatch_types(DType dtype, Fn&& fn) {
  bool done = ((dtype == DTypeOf<Ts>::value ? (fn(Ts{}), true) : false) || ...);
  if (!done) throw Error(std::string("element type ") + dtype_name(dtype) + " is not supported");
}

/// The float and integer types arithmetic ops take (ONNX Runtime's CPU set for Add and friends).
#define TINYQ_ARITH_TYPES float, double, int32_t, int64_t

/// Fixed-size element of N bytes, for ops that move elements without looking at them.
template <size_t N>
struct RawElem {
  unsigned char bytes[N];
};

/// Calls fn(RawElem<N>{}) for the element size of `dtype` (1, 2, 4 or 8 bytes).
template <typename Fn>
void dispatch_elem_size(DType dtype, Fn&& fn) {
  switch (dtype_size(dtype)) {
    case 1: fn(RawElem<1>{}); break;
    case 2: fn(RawElem<2>{}); break;
    case 4: fn(RawElem<4>{}); break;
    case 8: fn(RawElem<8>{}); break;
    default: throw Error(std::string("element type ") + dtype_name(dtype) + " is not supported");
  }
}

/// The integer values of a shape/axes/indices input (any integer type).
inline std::vector<int64_t> int_values(const Tensor& t, const char* what) {
  if (t.dtype() != DType::I64 && t.dtype() != DType::I32)
    throw Error(std::string(what) + " must be int64 or int32, is " + dtype_name(t.dtype()));
  return tensor_to_int64s(t);
}

}  // namespace tinyq::rt
