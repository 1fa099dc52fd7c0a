// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// Conv and ConvTranspose against ONNX Runtime: tables of geometries (pads, strides, dilations,
// groups, depthwise, auto_pad, 1-D/2-D/3-D, output_padding, output_shape), each table one model.

#include <random>

#include "nn_test_util.h"

namespace tinyq::test {
namespace {

struct ConvCase {
  const char* name;
  Shape x;
  Shape w;
  bool bias;
  std::vector<Attribute> attrs;
};

// One model holding every case as its own node: input x<i>, initializers w<i> (b<i>), output y<i>.
void run_conv_table(const char* op, const std::vector<ConvCase>& cases, int64_t opset = 17,
                    bool weights_as_inputs = false) {
  TINYQ_REQUIRE_ORT();
  std::mt19937 rng(1234);
  ModelBuilder mb(opset);
  NamedTensors feeds;
  std::vector<std::pair<std::string, std::string>> labels;
  for (size_t i = 0; i < cases.size(); ++i) {
    const ConvCase& c = cases[i];
    const std::string s = std::to_string(i);
    mb.input("x" + s, DType::F32, c.x);
    feeds.emplace_back("x" + s, random_tensor(rng, c.x));
    Tensor w = random_tensor(rng, c.w);
    if (weights_as_inputs) {
      mb.input("w" + s, DType::F32, c.w);
      feeds.emplace_back("w" + s, w);
    } else {
      mb.initializer("w" + s, w);
    }
    std::vector<std::string> ins = {"x" + s, "w" + s};
    if (c.bias) {
      // ConvTranspose's output channels are W[1] * group; Conv's are W[0].
      int64_t m = c.w[0];
      if (std::string(op) == "ConvTranspose") {
        int64_t group = 1;
        for (const auto& a : c.attrs)
          if (a.name == "group") group = a.i;
        m = c.w[1] * group;
      }
      mb.initializer("b" + s, random_tensor(rng, {m}));
      ins.push_back("b" + s);
    }
    mb.node(op, ins, {"y" + s}, c.attrs);
    mb.output("y" + s);
    labels.emplace_back("y" + s, c.name);
  }
  expect_matches_ort(mb.model, feeds, labels);
}

TEST(OpsNnConv, Geometries2d) {
  std::vector<ConvCase> cases = {
      {"basic 3x3 + bias", {1, 3, 7, 7}, {4, 3, 3, 3}, true, {}},
      {"asymmetric pads", {2, 2, 6, 5}, {3, 2, 3, 2}, true, {attr_is("pads", {1, 0, 2, 1})}},
      {"strides + pads", {1, 2, 9, 8}, {2, 2, 3, 3}, false, {attr_is("strides", {2, 3}), attr_is("pads", {1, 1, 1, 1})}},
      {"dilations + pads", {1, 2, 10, 9}, {3, 2, 3, 2}, true,
       {attr_is("dilations", {2, 3}), attr_is("pads", {2, 1, 0, 2})}},
      {"group 2", {1, 4, 6, 6}, {6, 2, 3, 3}, true, {attr_i("group", 2)}},
      {"depthwise", {1, 4, 8, 8}, {4, 1, 3, 3}, true, {attr_i("group", 4), attr_is("pads", {1, 1, 1, 1})}},
      {"depthwise x2 multiplier, stride 2", {1, 3, 9, 7}, {6, 1, 3, 3}, false,
       {attr_i("group", 3), attr_is("strides", {2, 2}), attr_is("pads", {1, 1, 1, 1})}},
      {"SAME_UPPER stride 2", {1, 2, 7, 6}, {2, 2, 4, 3}, true,
       {attr_is("strides", {2, 2}), attr_s("auto_pad", "SAME_UPPER")}},
      {"SAME_LOWER stride 2", {1, 2, 7, 6}, {2, 2, 4, 3}, true,
       {attr_is("strides", {2, 2}), attr_s("auto_pad", "SAME_LOWER")}},
      {"SAME_LOWER even kernel", {1, 1, 6, 6}, {1, 1, 2, 2}, false, {attr_s("auto_pad", "SAME_LOWER")}},
      {"VALID stride", {1, 2, 7, 6}, {2, 2, 3, 3}, true, {attr_is("strides", {2, 1}), attr_s("auto_pad", "VALID")}},
      {"explicit kernel_shape", {1, 3, 5, 5}, {2, 3, 3, 3}, false, {attr_is("kernel_shape", {3, 3})}},
      {"1x1", {1, 8, 4, 4}, {5, 8, 1, 1}, true, {}},
      {"pads larger than kernel", {1, 1, 4, 4}, {1, 1, 2, 2}, true, {attr_is("pads", {3, 2, 2, 3})}},
      {"batch 3 grouped strided", {3, 6, 8, 8}, {4, 3, 2, 3}, true,
       {attr_i("group", 2), attr_is("strides", {3, 2}), attr_is("dilations", {1, 2}), attr_is("pads", {0, 1, 1, 0})}},
  };
  run_conv_table("Conv", cases);
}

// ONNX Runtime clamps the SAME padding at zero when the stride exceeds the kernel.
TEST(OpsNnConv, SameWithStrideLargerThanKernel) {
  std::vector<ConvCase> cases = {
      {"SAME_UPPER k1 s4", {1, 1, 7, 7}, {1, 1, 1, 1}, false, {attr_is("strides", {4, 4}), attr_s("auto_pad", "SAME_UPPER")}},
      {"SAME_LOWER k2 s5", {1, 1, 11, 9}, {1, 1, 2, 2}, false, {attr_is("strides", {5, 5}), attr_s("auto_pad", "SAME_LOWER")}},
  };
  run_conv_table("Conv", cases);
}

// ONNX Runtime refuses SAME_* with dilations; tinyq follows the ONNX formula (total padding
// from the dilated extent), checked here against the same convolution with explicit pads.
TEST(OpsNnConv, SameWithDilationEqualsExplicitPads) {
  std::mt19937 rng(7);
  ModelBuilder mb(17);
  mb.input("x", DType::F32, {1, 2, 9, 8});
  mb.initializer("w", random_tensor(rng, {3, 2, 3, 2}));
  // dilated extents 5 and 4, stride 1: totals 4 and 3; SAME_UPPER puts the odd one at the end
  mb.node("Conv", {"x", "w"}, {"same"}, {attr_is("dilations", {2, 3}), attr_s("auto_pad", "SAME_UPPER")});
  mb.node("Conv", {"x", "w"}, {"explicit"}, {attr_is("dilations", {2, 3}), attr_is("pads", {2, 1, 2, 2})});
  mb.output("same");
  mb.output("explicit");
  Session s(mb.model);
  std::vector<Tensor> y = s.run(std::vector<Tensor>{random_tensor(rng, {1, 2, 9, 8})});
  ASSERT_EQ(shape_to_string(y[0].shape()), "[1,3,9,8]");
  EXPECT_TRUE(y[0].bit_equal(y[1]));
}

TEST(OpsNnConv, OneAndThreeSpatialDims) {
  std::vector<ConvCase> cases = {
      {"1-D pads strides", {2, 3, 11}, {4, 3, 3}, true, {attr_is("pads", {1, 2}), attr_is("strides", {2})}},
      {"1-D dilated group", {1, 4, 12}, {4, 2, 3}, false, {attr_i("group", 2), attr_is("dilations", {3})}},
      {"1-D SAME_UPPER", {1, 2, 9}, {3, 2, 4}, true, {attr_s("auto_pad", "SAME_UPPER"), attr_is("strides", {2})}},
      {"3-D", {1, 2, 5, 6, 4}, {3, 2, 3, 2, 2}, true,
       {attr_is("pads", {1, 0, 1, 0, 1, 1}), attr_is("strides", {1, 2, 1})}},
      {"3-D depthwise dilated", {1, 2, 6, 6, 6}, {2, 1, 2, 2, 2}, false,
       {attr_i("group", 2), attr_is("dilations", {2, 1, 2})}},
  };
  run_conv_table("Conv", cases);
}

// Weights fed at run time take the same path as constant ones; opset 11 models too.
TEST(OpsNnConv, WeightsAsInputsAndOldOpset) {
  std::vector<ConvCase> cases = {
      {"runtime weights", {1, 3, 6, 6}, {2, 3, 3, 3}, false, {attr_is("pads", {1, 1, 1, 1})}},
      {"runtime weights grouped", {1, 4, 5, 5}, {4, 2, 2, 2}, false, {attr_i("group", 2)}},
  };
  run_conv_table("Conv", cases, 11, true);
}

TEST(OpsNnConvTranspose, Geometries) {
  std::vector<ConvCase> cases = {
      {"basic + bias", {1, 2, 4, 4}, {2, 3, 3, 3}, true, {}},
      {"stride 2 (U-Net up)", {1, 4, 3, 4}, {4, 2, 2, 2}, false, {attr_is("strides", {2, 2})}},
      {"stride 2 k3", {1, 2, 3, 4}, {2, 2, 3, 3}, true, {attr_is("strides", {2, 2})}},
      {"pads", {1, 2, 4, 3}, {2, 2, 3, 3}, true, {attr_is("strides", {2, 2}), attr_is("pads", {1, 0, 1, 2})}},
      {"output_padding", {1, 2, 3, 3}, {2, 2, 3, 3}, true,
       {attr_is("strides", {2, 3}), attr_is("output_padding", {1, 2})}},
      {"dilations", {1, 1, 4, 4}, {1, 2, 3, 3}, false, {attr_is("dilations", {2, 1})}},
      {"group 2", {1, 4, 3, 3}, {4, 3, 2, 2}, true, {attr_i("group", 2), attr_is("strides", {2, 1})}},
      {"depthwise", {1, 3, 4, 4}, {3, 1, 3, 3}, true, {attr_i("group", 3), attr_is("strides", {2, 2})}},
      {"output_shape larger than natural", {1, 2, 3, 3}, {2, 2, 3, 3}, true,
       {attr_is("strides", {2, 2}), attr_is("output_shape", {8, 8})}},
      {"output_shape smaller (pads derived)", {1, 2, 3, 3}, {2, 2, 3, 3}, true,
       {attr_is("strides", {2, 2}), attr_is("output_shape", {6, 5})}},
      {"output_shape with SAME_UPPER", {1, 1, 3, 3}, {1, 1, 3, 3}, false,
       {attr_is("strides", {2, 2}), attr_is("output_shape", {6, 6}), attr_s("auto_pad", "SAME_UPPER")}},
      {"SAME_UPPER", {1, 1, 3, 4}, {1, 2, 3, 3}, true, {attr_is("strides", {2, 2}), attr_s("auto_pad", "SAME_UPPER")}},
      {"SAME_LOWER", {1, 1, 3, 4}, {1, 2, 3, 3}, true, {attr_is("strides", {2, 2}), attr_s("auto_pad", "SAME_LOWER")}},
      {"VALID", {1, 1, 3, 3}, {1, 1, 2, 3}, false, {attr_is("strides", {2, 1}), attr_s("auto_pad", "VALID")}},
      {"1-D", {1, 2, 5}, {2, 3, 3}, true, {attr_is("strides", {2}), attr_is("pads", {1, 0})}},
      {"1-D output_padding dilated", {2, 1, 4}, {1, 2, 2}, true,
       {attr_is("strides", {3}), attr_is("dilations", {2}), attr_is("output_padding", {1})}},
  };
  run_conv_table("ConvTranspose", cases);
}

TEST(OpsNnConvTranspose, WeightsAsInputs) {
  std::vector<ConvCase> cases = {
      {"runtime weights", {1, 2, 3, 3}, {2, 2, 3, 3}, false, {attr_is("strides", {2, 2}), attr_is("pads", {1, 1, 1, 1})}},
  };
  run_conv_table("ConvTranspose", cases, 13, true);
}

TEST(OpsNnConvTranspose, ThreeSpatialDims) {
  std::vector<ConvCase> cases = {
      {"3-D strided", {1, 2, 3, 3, 2}, {2, 2, 2, 3, 2}, true, {attr_is("strides", {2, 1, 2}), attr_is("pads", {0, 1, 0, 1, 0, 1})}},
  };
  run_conv_table("ConvTranspose", cases);
}

// Malformed nodes fail when the session is built, naming the node.
TEST(OpsNnConv, BuildErrors) {
  auto model = [](std::vector<Attribute> attrs, Shape w_shape = {4, 3, 3, 3}) {
    ModelBuilder mb(17);
    mb.input("x", DType::F32, {1, 3, 8, 8});
    mb.initializer("w", Tensor(DType::F32, w_shape));
    mb.node("Conv", {"x", "w"}, {"y"}, std::move(attrs));
    mb.output("y");
    return mb.model;
  };
  expect_build_error(model({attr_s("auto_pad", "SAME_MIDDLE")}), "auto_pad");
  expect_build_error(model({attr_i("group", 0)}), "group");
  expect_build_error(model({attr_i("group", 3)}), "divisible");
  expect_build_error(model({attr_is("strides", {0, 1})}), "strides");
  expect_build_error(model({attr_is("pads", {1, 1, 1})}), "pads");
  expect_build_error(model({attr_is("kernel_shape", {2, 2})}), "kernel_shape");
  expect_build_error(model({}, {4, 3, 3, 3, 3, 3}), "spatial");

  ModelBuilder mb(17);
  mb.input("x", DType::F32, {1, 3, 8, 8});
  mb.initializer("w", Tensor(DType::F32, {4, 3, 3, 3}));
  mb.initializer("b", Tensor(DType::F32, {5}));
  mb.node("Conv", {"x", "w", "b"}, {"y"});
  mb.output("y");
  expect_build_error(mb.model, "bias");
}

// Shape mismatches that only show at run time are errors that name the node, not crashes.
TEST(OpsNnConv, RunErrors) {
  ModelBuilder mb(17);
  mb.input("x", DType::F32, {1, 2, 8, 8});  // the weights expect 3 channels
  mb.initializer("w", Tensor(DType::F32, {4, 3, 3, 3}));
  mb.node("Conv", {"x", "w"}, {"y"});
  mb.output("y");
  Session s(mb.model);
  try {
    s.run(std::vector<Tensor>{Tensor(DType::F32, {1, 2, 8, 8})});
    ADD_FAILURE() << "expected a channel mismatch error";
  } catch (const Error& e) {
    EXPECT_NE(e.message().find("channels"), std::string::npos) << e.message();
    EXPECT_NE(e.message().find("Conv"), std::string::npos) << e.message();
  }
  ModelBuilder small(17);
  small.input("x", DType::F32, {1, 3, 2, 2});  // smaller than the kernel
  small.initializer("w", Tensor(DType::F32, {4, 3, 3, 3}));
  small.node("Conv", {"x", "w"}, {"y"});
  small.output("y");
  Session s2(small.model);
  EXPECT_THROW(s2.run(std::vector<Tensor>{Tensor(DType::F32, {1, 3, 2, 2})}), Error);
}

}  // namespace
}  // namespace tinyq::test
