// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// QDQ group fusion (src/runtime/qdq_fusion.h): DQ -> Conv -> Q and DQ -> MatMul -> Q run as
// QLinearConv / QLinearMatMul, as ONNX Runtime runs them, so tinyq's outputs on QDQ graphs
// equal ORT's bit for bit; groups that ORT would not fuse are left alone.

#include "quant_test_util.h"
#include "runtime/qdq_fusion.h"

namespace tinyq {
namespace {

using test::QuantCases;

Tensor scalar_zp(DType t, int v) {
  return t == DType::U8 ? Tensor::scalar<uint8_t>(static_cast<uint8_t>(v)) : Tensor::scalar<int8_t>(static_cast<int8_t>(v));
}

// x (float) -> Q -> DQ -> Conv(DQ(w), DQ(b)) -> Q -> DQ -> y, the shape ORT's quantiser writes.
void add_qdq_conv(QuantCases& c, std::mt19937& rng, DType act, bool per_channel, bool bias, int64_t group) {
  const std::string p = c.prefix();
  const int64_t cin = 4, cout = 6;
  c.feed(p + "x", test::random_floats(rng, {2, cin, 9, 9}, -1.0f, 1.0f));
  c.constant(p + "sx", Tensor::scalar<float>(0.0079f));
  c.constant(p + "zx", scalar_zp(act, act == DType::U8 ? 127 : -1));
  const Shape ws{cout, cin / group, 3, 3};
  c.constant(p + "w", test::random_ints<int8_t>(rng, ws, -127, 127));
  std::vector<float> sw;
  for (int64_t m = 0; m < (per_channel ? cout : 1); ++m) sw.push_back(0.002f + 0.001f * static_cast<float>(m));
  c.constant(p + "sw", per_channel ? Tensor::from_vector<float>({cout}, sw) : Tensor::scalar<float>(sw[0]));
  c.constant(p + "zw", per_channel ? Tensor::from_vector<int8_t>({cout}, std::vector<int8_t>(cout, 0)) : Tensor::scalar<int8_t>(0));
  c.constant(p + "sy", Tensor::scalar<float>(0.011f));
  c.constant(p + "zy", scalar_zp(act, act == DType::U8 ? 120 : 3));
  c.builder.node("QuantizeLinear", {p + "x", p + "sx", p + "zx"}, {p + "xq"});
  c.builder.node("DequantizeLinear", {p + "xq", p + "sx", p + "zx"}, {p + "xf"});
  c.builder.node("DequantizeLinear", {p + "w", p + "sw", p + "zw"}, {p + "wf"}, {Attribute::make_int("axis", 0)});
  std::vector<std::string> ins{p + "xf", p + "wf"};
  if (bias) {
    std::vector<float> sb;
    for (float s : sw) sb.push_back(0.0079f * s);
    c.constant(p + "b", test::random_ints<int32_t>(rng, {cout}, -3000, 3000));
    c.constant(p + "sb", per_channel ? Tensor::from_vector<float>({cout}, sb) : Tensor::scalar<float>(sb[0]));
    c.constant(p + "zb", per_channel ? Tensor::from_vector<int32_t>({cout}, std::vector<int32_t>(cout, 0)) : Tensor::scalar<int32_t>(0));
    c.builder.node("DequantizeLinear", {p + "b", p + "sb", p + "zb"}, {p + "bf"}, {Attribute::make_int("axis", 0)});
    ins.push_back(p + "bf");
  }
  c.builder.node("Conv", ins, {p + "conv"}, {Attribute::make_ints("pads", {1, 1, 1, 1}), Attribute::make_int("group", group)});
  c.builder.node("QuantizeLinear", {p + "conv", p + "sy", p + "zy"}, {p + "yq"});
  c.builder.node("DequantizeLinear", {p + "yq", p + "sy", p + "zy"}, {p + "y"}).output(p + "y");
}

void add_qdq_matmul(QuantCases& c, std::mt19937& rng, DType act, bool per_column) {
  const std::string p = c.prefix();
  c.feed(p + "a", test::random_floats(rng, {5, 16}, -2.0f, 2.0f));
  c.constant(p + "sa", Tensor::scalar<float>(0.016f));
  c.constant(p + "za", scalar_zp(act, act == DType::U8 ? 128 : 0));
  c.constant(p + "b", test::random_ints<int8_t>(rng, {16, 7}, -127, 127));
  std::vector<float> sb;
  for (int j = 0; j < 7; ++j) sb.push_back(0.003f + 0.0005f * static_cast<float>(j));
  c.constant(p + "sb", per_column ? Tensor::from_vector<float>({7}, sb) : Tensor::scalar<float>(sb[0]));
  c.constant(p + "zb", per_column ? Tensor::from_vector<int8_t>({7}, std::vector<int8_t>(7, 0)) : Tensor::scalar<int8_t>(0));
  c.constant(p + "sy", Tensor::scalar<float>(0.02f));
  c.constant(p + "zy", scalar_zp(act, act == DType::U8 ? 100 : -10));
  c.builder.node("QuantizeLinear", {p + "a", p + "sa", p + "za"}, {p + "aq"});
  c.builder.node("DequantizeLinear", {p + "aq", p + "sa", p + "za"}, {p + "af"});
  c.builder.node("DequantizeLinear", {p + "b", p + "sb", p + "zb"}, {p + "bf"}, {Attribute::make_int("axis", 1)});
  c.builder.node("MatMul", {p + "af", p + "bf"}, {p + "mm"});
  c.builder.node("QuantizeLinear", {p + "mm", p + "sy", p + "zy"}, {p + "yq"});
  c.builder.node("DequantizeLinear", {p + "yq", p + "sy", p + "zy"}, {p + "y"}).output(p + "y");
}

// A group where fusing decides the answer: scales 0.1, 0.1 and 0.02 make the requantisation
// multiplier float(0.1 * 0.1 / 0.02), a hair above 0.5, so every odd accumulator rounds up in
// the integer path, while an fp32 convolution followed by Q lands on either side of k + 0.5.
// (Unfused, about one output in seven differs from ORT's.) The trailing DQ is what quantisers
// write, and what ORT needs to fuse an int8 group.
void add_qdq_tie_group(QuantCases& c, std::mt19937& rng, bool conv) {
  const std::string p = c.prefix();
  const Shape xs = conv ? Shape{2, 4, 8, 8} : Shape{40, 36};
  std::uniform_int_distribution<int> small(-2, 2);
  std::vector<float> x(static_cast<size_t>(shape_numel(xs)));
  for (float& v : x) v = 0.1f * static_cast<float>(small(rng));
  c.feed(p + "x", Tensor::from_vector<float>(xs, x));
  c.constant(p + "s", Tensor::scalar<float>(0.1f));
  c.constant(p + "sy", Tensor::scalar<float>(0.02f));
  c.constant(p + "z", Tensor::scalar<int8_t>(0));
  c.constant(p + "w", test::random_ints<int8_t>(rng, conv ? Shape{8, 4, 3, 3} : Shape{36, 24}, -2, 2));
  c.constant(p + "sw", Tensor::scalar<float>(0.1f));
  c.constant(p + "zw", Tensor::scalar<int8_t>(0));
  c.builder.node("QuantizeLinear", {p + "x", p + "s", p + "z"}, {p + "xq"});
  c.builder.node("DequantizeLinear", {p + "xq", p + "s", p + "z"}, {p + "xf"});
  c.builder.node("DequantizeLinear", {p + "w", p + "sw", p + "zw"}, {p + "wf"});
  if (conv)
    c.builder.node("Conv", {p + "xf", p + "wf"}, {p + "o"}, {Attribute::make_ints("pads", {1, 1, 1, 1})});
  else
    c.builder.node("MatMul", {p + "xf", p + "wf"}, {p + "o"});
  c.builder.node("QuantizeLinear", {p + "o", p + "sy", p + "z"}, {p + "yq"});
  c.builder.node("DequantizeLinear", {p + "yq", p + "sy", p + "z"}, {p + "y"}).output(p + "y");
}

int count_ops(const Graph& g, const std::string& op) {
  int n = 0;
  for (const Node& node : g.nodes) n += node.op_type == op;
  return n;
}

TEST(QdqFusion, ConvAndMatMulGroupsMatchOrtBitForBit) {
  TINYQ_REQUIRE_ORT();
  std::mt19937 rng(31);
  QuantCases cases(13);
  for (DType act : {DType::U8, DType::I8}) {
    add_qdq_conv(cases, rng, act, false, false, 1);
    add_qdq_conv(cases, rng, act, true, true, 1);
    add_qdq_conv(cases, rng, act, true, true, 2);
    add_qdq_matmul(cases, rng, act, false);
    add_qdq_matmul(cases, rng, act, true);
  }
  add_qdq_tie_group(cases, rng, true);
  add_qdq_tie_group(cases, rng, false);
  Graph fused = cases.builder.model.graph;
  EXPECT_EQ(rt::fuse_qdq_groups(fused), 12);
  EXPECT_EQ(count_ops(fused, "QLinearConv"), 7);
  EXPECT_EQ(count_ops(fused, "QLinearMatMul"), 5);
  EXPECT_EQ(count_ops(fused, "Conv") + count_ops(fused, "MatMul"), 0);
  // The weight and bias DQs went with their groups; activations keep Q -> (fused) -> DQ.
  EXPECT_EQ(count_ops(fused, "DequantizeLinear"), 12);
  test::expect_matches_ort(cases, "qdq_fusion");
}

TEST(QdqFusion, GroupsThatCannotFuseAreLeftAlone) {
  std::mt19937 rng(32);
  {
    // The Conv's output is also a graph output: it must still be computed in float.
    QuantCases cases(13);
    add_qdq_conv(cases, rng, DType::U8, false, false, 1);
    cases.builder.output("c0_conv");
    Graph g = cases.builder.model.graph;
    EXPECT_EQ(rt::fuse_qdq_groups(g), 0);
    Session s(cases.builder.model);
    EXPECT_EQ(s.run(cases.feeds).size(), 2u);
  }
  {
    // The activation's DQ also feeds another node: the group is still fused (see qdq_fusion.h)
    // and the DQ stays for its other reader.
    QuantCases cases(13);
    add_qdq_conv(cases, rng, DType::I8, true, true, 1);
    cases.builder.output("c0_xf");
    Graph g = cases.builder.model.graph;
    EXPECT_EQ(rt::fuse_qdq_groups(g), 1);
    EXPECT_EQ(count_ops(g, "DequantizeLinear"), 2);  // the shared one and the output's
    EXPECT_EQ(Session(cases.builder.model).run(cases.feeds).size(), 2u);
  }
  {
    // Per-channel weights along an axis other than the output channels.
    QuantCases cases(13);
    add_qdq_conv(cases, rng, DType::U8, true, false, 1);
    for (Node& n : cases.builder.model.graph.nodes)
      if (n.op_type == "DequantizeLinear" && n.inputs[0] == "c0_w") n.set_attr(Attribute::make_int("axis", 1));
    Graph g = cases.builder.model.graph;
    EXPECT_EQ(rt::fuse_qdq_groups(g), 0);
  }
  {
    // uint8 activations in, int8 out: not a QLinearConv.
    QuantCases cases(13);
    add_qdq_conv(cases, rng, DType::U8, false, false, 1);
    for (Initializer& init : cases.builder.model.graph.initializers)
      if (init.name == "c0_zy") init.tensor = Tensor::scalar<int8_t>(0);
    Graph g = cases.builder.model.graph;
    EXPECT_EQ(rt::fuse_qdq_groups(g), 0);
  }
}

}  // namespace
}  // namespace tinyq
