// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// Resize against ONNX Runtime. The cases are a declarative table: every mode (nearest, linear,
// cubic) crossed with every coordinate_transformation_mode, every nearest_mode and several scale
// sets (integer and fractional, up and down), plus sizes, tf_crop_and_resize with extrapolation,
// cubic_coeff_a / exclude_outside, other ranks, opset 11's forms and opset 18's axes,
// keep_aspect_ratio_policy and antialias. One model per opset holds all of its cases.

#include <random>

#include "nn_test_util.h"

namespace tinyq::test {
namespace {

struct ResizeCase {
  std::string name;
  std::string x;  ///< which shared input
  std::vector<Attribute> attrs;
  std::vector<float> scales;   ///< empty: use sizes
  std::vector<int64_t> sizes;  ///< empty: use scales
  std::vector<float> roi;      ///< tf_crop_and_resize only
};

struct ResizeInput {
  std::string name;
  Shape shape;
};

// Builds one model over the shared inputs with one Resize node per case and checks it against
// ORT. Opset 11 passes roi and scales as (possibly empty) tensors, as its schema requires; later
// opsets omit what a case does not use.
void run_resize_table(int64_t opset, const std::vector<ResizeInput>& inputs, const std::vector<ResizeCase>& cases,
                      bool scales_as_inputs = false) {
  TINYQ_REQUIRE_ORT();
  std::mt19937 rng(77);
  ModelBuilder mb(opset);
  NamedTensors feeds;
  for (const auto& in : inputs) {
    mb.input(in.name, DType::F32, in.shape);
    feeds.emplace_back(in.name, random_tensor(rng, in.shape, -2.0f, 2.0f));
  }
  std::vector<std::pair<std::string, std::string>> labels;
  for (size_t i = 0; i < cases.size(); ++i) {
    const ResizeCase& c = cases[i];
    const std::string s = std::to_string(i);
    std::string roi, scales, sizes;
    if (!c.roi.empty()) {
      roi = "roi" + s;
      mb.initializer(roi, Tensor::from_vector<float>({static_cast<int64_t>(c.roi.size())}, c.roi));
    } else if (opset < 13) {
      roi = "roi" + s;
      mb.initializer(roi, Tensor(DType::F32, {0}));
    }
    if (!c.scales.empty()) {
      scales = "scales" + s;
      Tensor t = Tensor::from_vector<float>({static_cast<int64_t>(c.scales.size())}, c.scales);
      if (scales_as_inputs) {
        mb.input(scales, DType::F32, t.shape());
        feeds.emplace_back(scales, t);
      } else {
        mb.initializer(scales, t);
      }
    } else if (opset < 13) {
      scales = "scales" + s;
      mb.initializer(scales, Tensor(DType::F32, {0}));
    }
    if (!c.sizes.empty()) {
      sizes = "sizes" + s;
      mb.initializer(sizes, Tensor::from_vector<int64_t>({static_cast<int64_t>(c.sizes.size())}, c.sizes));
    }
    std::vector<std::string> ins = {c.x, roi, scales};
    if (!sizes.empty()) ins.push_back(sizes);
    while (!ins.empty() && ins.back().empty()) ins.pop_back();
    mb.node("Resize", ins, {"y" + s}, c.attrs);
    mb.output("y" + s);
    labels.emplace_back("y" + s, c.name);
  }
  expect_matches_ort(mb.model, feeds, labels);
}

const char* const kCoordModes[] = {"half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric"};
const char* const kNearestModes[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
// NCHW scale sets: integer up, fractional up, down, mixed.
const std::vector<std::vector<float>> kScaleSets = {
    {1, 1, 2, 3}, {1, 1, 1.5f, 1.7f}, {1, 1, 0.5f, 0.6f}, {1, 1, 0.75f, 2.5f}};

std::string scales_text(const std::vector<float>& s) {
  std::string t;
  for (float v : s) t += (t.empty() ? "" : ",") + std::to_string(v).substr(0, 4);
  return "scales " + t;
}

Attribute mode(const char* m) { return attr_s("mode", m); }
Attribute coord(const char* c) { return attr_s("coordinate_transformation_mode", c); }

TEST(OpsNnResize, NearestEveryCoordinateAndRoundingMode) {
  std::vector<ResizeCase> cases;
  for (const char* c : kCoordModes)
    for (const char* n : kNearestModes)
      for (const auto& s : kScaleSets)
        cases.push_back({std::string("nearest ") + c + " " + n + " " + scales_text(s), "x",
                         {mode("nearest"), coord(c), attr_s("nearest_mode", n)}, s, {}, {}});
  run_resize_table(13, {{"x", {1, 2, 6, 5}}}, cases);
}

TEST(OpsNnResize, LinearAndCubicEveryCoordinateMode) {
  std::vector<ResizeCase> cases;
  for (const char* c : kCoordModes)
    for (const auto& s : kScaleSets) {
      cases.push_back({std::string("linear ") + c + " " + scales_text(s), "x", {mode("linear"), coord(c)}, s, {}, {}});
      cases.push_back({std::string("cubic ") + c + " " + scales_text(s), "x", {mode("cubic"), coord(c)}, s, {}, {}});
      cases.push_back({std::string("cubic exclude_outside a=-0.5 ") + c + " " + scales_text(s), "x",
                       {mode("cubic"), coord(c), attr_i("exclude_outside", 1), attr_f("cubic_coeff_a", -0.5f)}, s,
                       {}, {}});
    }
  run_resize_table(13, {{"x", {1, 2, 6, 5}}}, cases);
}

TEST(OpsNnResize, SizesCropAndOtherRanks) {
  const std::vector<float> roi = {0, 0, 0.2f, -0.1f, 1, 1, 0.9f, 1.2f};  // partly outside the image
  std::vector<ResizeCase> cases = {
      {"nearest sizes", "x", {mode("nearest")}, {}, {1, 2, 9, 3}, {}},
      {"linear sizes", "x", {mode("linear")}, {}, {1, 2, 3, 8}, {}},
      {"cubic sizes", "x", {mode("cubic")}, {}, {1, 2, 11, 4}, {}},
      {"linear align_corners sizes to 1", "x", {mode("linear"), coord("align_corners")}, {}, {1, 2, 1, 7}, {}},
      {"linear pytorch_half_pixel sizes to 1", "x", {mode("linear"), coord("pytorch_half_pixel")}, {}, {1, 2, 1, 7}, {}},
      {"nearest tf_crop_and_resize", "x",
       {mode("nearest"), coord("tf_crop_and_resize"), attr_f("extrapolation_value", 7.5f)}, {1, 1, 1.5f, 2}, {}, roi},
      {"linear tf_crop_and_resize", "x",
       {mode("linear"), coord("tf_crop_and_resize"), attr_f("extrapolation_value", -3.0f)}, {1, 1, 1.5f, 2}, {}, roi},
      {"cubic tf_crop_and_resize", "x", {mode("cubic"), coord("tf_crop_and_resize")}, {}, {1, 2, 7, 9}, roi},
      {"linear tf_crop_and_resize to 1", "x", {mode("linear"), coord("tf_crop_and_resize")}, {}, {1, 2, 1, 4}, roi},
      {"nearest resizing N and C", "x", {mode("nearest")}, {2, 0.5f, 1, 1.4f}, {}, {}},
      {"linear NHWC (outer and inner scale 1)", "nhwc", {mode("linear")}, {1, 2, 1.5f, 1}, {}, {}},
      {"nearest 1-D", "v", {mode("nearest"), coord("asymmetric")}, {2.5f}, {}, {}},
      {"linear 2-D", "m", {mode("linear")}, {1.5f, 0.7f}, {}, {}},
      {"cubic 2-D", "m", {mode("cubic"), coord("align_corners")}, {2, 1.3f}, {}, {}},
      {"linear 3-D (trilinear)", "t", {mode("linear")}, {2, 0.5f, 1.5f}, {}, {}},
      {"linear 5-D (trilinear, outer 1)", "f", {mode("linear"), coord("align_corners")}, {1, 1, 1.5f, 2, 0.6f}, {}, {}},
      {"nearest 5-D", "f", {mode("nearest"), attr_s("nearest_mode", "floor")}, {1, 2, 2, 0.5f, 1.5f}, {}, {}},
      {"same size copies", "x", {mode("cubic")}, {}, {1, 2, 6, 5}, {}},
  };
  run_resize_table(13,
                   {{"x", {1, 2, 6, 5}},
                    {"nhwc", {1, 4, 5, 3}},
                    {"v", {7}},
                    {"m", {6, 5}},
                    {"t", {3, 4, 5}},
                    {"f", {1, 2, 3, 4, 5}}},
                   cases);
}

// Scales computed at run time take the same path as constant ones.
TEST(OpsNnResize, ScalesAsInputs) {
  std::vector<ResizeCase> cases = {
      {"nearest fed scales", "x", {mode("nearest")}, {1, 1, 2, 0.5f}, {}, {}},
      {"linear fed scales", "x", {mode("linear")}, {1, 1, 1.25f, 1.5f}, {}, {}},
  };
  run_resize_table(13, {{"x", {1, 2, 6, 5}}}, cases, true);
}

TEST(OpsNnResize, Opset11) {
  std::vector<ResizeCase> cases = {
      {"nearest tf_half_pixel_for_nn", "x", {mode("nearest"), coord("tf_half_pixel_for_nn")}, {1, 1, 1.5f, 2.5f}, {}, {}},
      {"nearest tf_half_pixel_for_nn down", "x", {mode("nearest"), coord("tf_half_pixel_for_nn")}, {1, 1, 0.5f, 0.6f}, {}, {}},
      {"linear empty roi", "x", {mode("linear")}, {1, 1, 2, 1.5f}, {}, {}},
      {"cubic sizes with empty scales", "x", {mode("cubic"), coord("asymmetric")}, {}, {1, 2, 4, 9}, {}},
      {"nearest default attributes", "x", {}, {1, 1, 3, 2}, {}, {}},
  };
  run_resize_table(11, {{"x", {1, 2, 6, 5}}}, cases);
}

TEST(OpsNnResize, Opset18AxesAspectRatioAntialias) {
  auto axes = [](std::vector<int64_t> a) { return attr_is("axes", std::move(a)); };
  auto policy = [](const char* p) { return attr_s("keep_aspect_ratio_policy", p); };
  const Attribute aa = attr_i("antialias", 1);
  std::vector<ResizeCase> cases = {
      {"nearest axes [2,3] scales", "x", {mode("nearest"), axes({2, 3})}, {2, 0.6f}, {}, {}},
      {"linear axes [3,2] sizes", "x", {mode("linear"), axes({3, 2})}, {}, {9, 4}, {}},
      {"cubic negative axes", "x", {mode("cubic"), axes({-1})}, {1.6f}, {}, {}},
      {"not_larger", "x", {mode("linear"), axes({2, 3}), policy("not_larger")}, {}, {9, 9}, {}},
      {"not_smaller", "x", {mode("nearest"), axes({2, 3}), policy("not_smaller")}, {}, {9, 9}, {}},
      {"not_smaller downsizing", "x", {mode("cubic"), axes({2, 3}), policy("not_smaller")}, {}, {3, 2}, {}},
      {"antialias linear down", "x", {mode("linear"), aa}, {1, 1, 0.5f, 0.4f}, {}, {}},
      {"antialias linear down, exclude_outside", "x", {mode("linear"), aa, attr_i("exclude_outside", 1)},
       {1, 1, 0.6f, 0.5f}, {}, {}},
      {"antialias cubic down", "x", {mode("cubic"), aa}, {1, 1, 0.5f, 0.7f}, {}, {}},
      {"antialias cubic down, exclude_outside", "x", {mode("cubic"), aa, attr_i("exclude_outside", 1)},
       {1, 1, 0.4f, 0.6f}, {}, {}},
      {"antialias linear up", "x", {mode("linear"), aa}, {1, 1, 2, 1.5f}, {}, {}},
      {"antialias cubic mixed, align_corners", "x", {mode("cubic"), aa, coord("align_corners")}, {1, 1, 1.5f, 0.5f}, {}, {}},
      {"antialias linear sizes, asymmetric", "x", {mode("linear"), aa, coord("asymmetric")}, {}, {1, 2, 3, 2}, {}},
      {"antialias ignored for nearest", "x", {mode("nearest")}, {1, 1, 0.5f, 0.5f}, {}, {}},
      {"antialias linear 2-D", "m", {mode("linear"), aa}, {0.5f, 0.4f}, {}, {}},
      {"antialias cubic 2-D", "m", {mode("cubic"), aa, coord("pytorch_half_pixel")}, {0.3f, 0.6f}, {}, {}},
      {"antialias trilinear 5-D", "f", {mode("linear"), aa}, {1, 1, 0.5f, 0.5f, 0.6f}, {}, {}},
      {"antialias linear tf_crop_and_resize", "x", {mode("linear"), aa, coord("tf_crop_and_resize"), attr_f("extrapolation_value", 5.0f)}, {1, 1, 0.5f, 0.6f}, {}, {0, 0, 0.2f, -0.1f, 1, 1, 0.9f, 1.2f}},
      {"antialias cubic tf_crop_and_resize up", "x", {mode("cubic"), aa, coord("tf_crop_and_resize"), attr_f("extrapolation_value", 5.0f)}, {1, 1, 1.5f, 2.0f}, {}, {0, 0, 0.2f, -0.1f, 1, 1, 0.9f, 1.2f}},
  };
  run_resize_table(18, {{"x", {1, 2, 6, 5}}, {"m", {9, 7}}, {"f", {1, 1, 4, 6, 5}}}, cases);
}

TEST(OpsNnResize, BuildErrors) {
  auto model = [](int64_t opset, std::vector<Attribute> attrs, std::vector<float> scales = {1, 1, 2, 2}) {
    ModelBuilder mb(opset);
    mb.input("x", DType::F32, {1, 1, 4, 4});
    mb.initializer("scales", Tensor::from_vector<float>({static_cast<int64_t>(scales.size())}, scales));
    mb.node("Resize", {"x", "", "scales"}, {"y"}, std::move(attrs));
    mb.output("y");
    return mb.model;
  };
  expect_build_error(model(13, {mode("bilinear")}), "mode");
  expect_build_error(model(13, {coord("half_pixel_symmetric")}), "coordinate_transformation_mode");
  expect_build_error(model(13, {attr_s("nearest_mode", "nearest")}), "nearest_mode");
  expect_build_error(model(13, {attr_i("antialias", 1)}), "opset 18");
  expect_build_error(model(18, {attr_s("keep_aspect_ratio_policy", "fit")}), "keep_aspect_ratio_policy");
  expect_build_error(model(13, {}, {1, 1, 0, 2}), "scales");
  expect_build_error(model(18, {attr_is("axes", {2, 3})}), "axes");
}

TEST(OpsNnResize, RunErrors) {
  ModelBuilder mb(13);
  mb.input("x", DType::F32, {1, 1, 4, 4});
  mb.initializer("scales", Tensor::from_vector<float>({3}, {1, 2, 2}));  // rank 3 for a rank-4 input
  mb.node("Resize", {"x", "", "scales"}, {"y"});
  mb.output("y");
  Session s(mb.model);
  try {
    s.run(std::vector<Tensor>{Tensor(DType::F32, {1, 1, 4, 4})});
    ADD_FAILURE() << "expected a scales length error";
  } catch (const Error& e) {
    EXPECT_NE(e.message().find("scales has 3 values"), std::string::npos) << e.message();
  }
  ModelBuilder none(13);
  none.input("x", DType::F32, {1, 1, 4, 4});
  none.node("Resize", {"x"}, {"y"});
  none.output("y");
  Session s2(none.model);
  EXPECT_THROW(s2.run(std::vector<Tensor>{Tensor(DType::F32, {1, 1, 4, 4})}), Error);
}

}  // namespace
}  // namespace tinyq::test
