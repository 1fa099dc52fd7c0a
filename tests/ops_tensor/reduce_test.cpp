// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// Reductions against ONNX Runtime in each of their opset forms: axes as an attribute (opset 11;
// 13 for all but ReduceSum), axes as an input (ReduceSum from 13, the rest from 18) with
// noop_with_empty_axes, keepdims both ways, negative axes, integer data.

#include "op_batch.h"

namespace tinyq::test {
namespace {

using A = Attribute;

const char* const kReduceOps[] = {"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd"};

// Axis lists tried on a [2, 3, 4] input; empty means "no axes given".
const std::vector<std::vector<int64_t>> kAxes = {{1}, {-1}, {0, 2}, {-3, 1}, {0, 1, 2}, {}};

bool axes_as_input(const std::string& op, int64_t opset) { return op == "ReduceSum" ? opset >= 13 : opset >= 18; }

void add_reduce_cases(OpBatch& b, int64_t opset) {
  for (const char* op : kReduceOps) {
    for (const auto& axes : kAxes) {
      for (int64_t keepdims : {0, 1}) {
        // ReduceProd over many values over/underflows: keep it near 1.
        Tensor x = std::string(op) == "ReduceProd" ? rand_f32({2, 3, 4}, 0.5f, 1.5f) : rand_f32({2, 3, 4});
        std::vector<A> attrs{A::make_int("keepdims", keepdims)};
        std::vector<std::string> inputs{b.feed(x)};
        if (axes_as_input(op, opset)) {
          if (!axes.empty()) inputs.push_back(b.constant(i64s(axes)));
        } else if (!axes.empty()) {
          attrs.push_back(A::make_ints("axes", axes));
        }
        b.op(op, inputs, attrs);
      }
    }
  }
}

TEST(OpsReduce, AxesAttributeOpset11) {
  OpBatch b(11);
  add_reduce_cases(b, 11);
  b.check();
}

TEST(OpsReduce, ReduceSumAxesInputOpset13) {
  OpBatch b(13);
  add_reduce_cases(b, 13);
  // Axes fed at run time rather than constant.
  b.op("ReduceSum", {b.feed(rand_f32({2, 3, 4})), b.feed(i64s({-2}))}, {A::make_int("keepdims", 0)});
  // An empty axes tensor: reduce everything, or nothing with noop_with_empty_axes.
  b.op("ReduceSum", {b.feed(rand_f32({2, 3})), b.constant(i64s({}))});
  b.op("ReduceSum", {b.feed(rand_f32({2, 3})), b.constant(i64s({}))}, {A::make_int("noop_with_empty_axes", 1)});
  b.op("ReduceSum", {b.feed(rand_f32({2, 3}))}, {A::make_int("noop_with_empty_axes", 1)});
  b.check();
}

TEST(OpsReduce, AxesInputOpset18) {
  OpBatch b(18);
  add_reduce_cases(b, 18);
  for (const char* op : {"ReduceMean", "ReduceMax"}) {
    b.op(op, {b.feed(rand_f32({2, 3})), b.constant(i64s({}))}, {A::make_int("noop_with_empty_axes", 1)});
    b.op(op, {b.feed(rand_f32({4, 3, 2})), b.feed(i64s({0, -1}))});
  }
  b.check();
}

TEST(OpsReduce, IntegersAndScalars) {
  OpBatch b(13);
  for (const char* op : {"ReduceSum", "ReduceMax", "ReduceMin", "ReduceMean"}) {
    std::vector<std::string> axes_in;
    std::vector<A> attrs{A::make_int("keepdims", 0)};
    if (axes_as_input(op, 13)) axes_in.push_back(b.constant(i64s({1})));
    else attrs.push_back(A::make_ints("axes", {1}));
    std::vector<std::string> in32{b.feed(rand_int<int32_t>({3, 5}, -100, 100))};
    std::vector<std::string> in64{b.feed(rand_int<int64_t>({3, 5}, -100, 100))};
    in32.insert(in32.end(), axes_in.begin(), axes_in.end());
    in64.insert(in64.end(), axes_in.begin(), axes_in.end());
    b.op(op, in32, attrs);
    b.op(op, in64, attrs);
    b.op(op, {b.feed(rand_f32({}))});  // a scalar reduces to itself
  }
  b.check();
}

TEST(OpsReduce, EmptyReductions) {
  // Over nothing: Sum 0, Prod 1, Max -inf, Min +inf, Mean 0 (ONNX Runtime's choice).
  OpBatch b(18);
  for (const char* op : kReduceOps) b.op(op, {b.feed(rand_f32({0, 3})), b.constant(i64s({0}))});
  b.check();
}

TEST(OpsReduce, AxisOutOfRangeIsAnError) {
  ModelBuilder mb(13);
  mb.input("x", DType::F32, {2, 3}).output("y");
  mb.node("ReduceMean", {"x"}, {"y"}, {A::make_ints("axes", {2})});
  Session s(mb.model);
  try {
    s.run(NamedTensors{{"x", rand_f32({2, 3})}});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(e.message().find("ReduceMean_0"), std::string::npos) << e.message();
    EXPECT_NE(e.message().find("out of range"), std::string::npos) << e.message();
  }
  // axes is an input from opset 18: the attribute is refused when the session is built.
  ModelBuilder mb18(18);
  mb18.input("x", DType::F32, {2, 3}).output("y");
  mb18.node("ReduceMean", {"x"}, {"y"}, {A::make_ints("axes", {1})});
  expect_build_error(mb18.model, "ReduceMean_0", "unknown attribute 'axes'");
}

}  // namespace
}  // namespace tinyq::test
