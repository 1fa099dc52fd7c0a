// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// Live peer: every model in ../shared/models/real and every ORT-made file in
// ../shared/reference/ort-1.30, run in tinyq and in ONNX Runtime (onnxruntime-node) on the same
// fixed-seed inputs in [0, 1). Symbolic dims get small sizes: the batch (first) dim 2, image
// height and width 64; fixed dims are kept. Bars as in conformance_util.h (QDQ bars for graphs
// with QuantizeLinear / DequantizeLinear). vmaf_tiny_v1_medium.onnx names an external-data file
// that is not where it says: tinyq must refuse it with a tinyq::Error naming that file.

#include <filesystem>
#include <random>

#include "conformance_util.h"
#include "tinyq/error.h"
#include "tinyq/model_io.h"

namespace fs = std::filesystem;

namespace tinyq {
namespace {

// Models ORT cannot be asked about through the test bridge, and why.
const char* unsupported_by_bridge(const std::string& file) {
  if (file == "smoke_fp16_v0.onnx") return "its input is float16, which tests/ort/run_ort.js and tinyq's .npy reader do not carry";
  return nullptr;
}

std::vector<std::string> peer_models() {
  std::vector<std::string> out;
  const std::string shared = test::shared_dir();
  if (shared.empty()) return out;
  for (const char* sub : {"/models/real", "/reference/ort-1.30"})
    for (const auto& e : fs::directory_iterator(shared + sub))
      if (e.path().extension() == ".onnx") out.push_back(fs::path(sub).filename().string() + "/" + e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

// Fixed-seed inputs in [0, 1); the seed depends only on the input's position.
NamedTensors make_feeds(const Session& session) {
  NamedTensors feeds;
  std::mt19937 rng(0);
  std::uniform_real_distribution<float> dist(0.0f, 1.0f);
  for (const ValueInfo& v : session.inputs()) {
    Shape shape;
    for (size_t d = 0; d < v.dims.size(); ++d) {
      if (v.dims[d].known()) shape.push_back(v.dims[d].value);
      else shape.push_back(d == 0 ? 2 : (v.dims.size() == 4 && d >= 2) ? 64 : 2);
    }
    if (v.dtype != DType::F32) throw Error(v.name, std::string("input type ") + dtype_name(v.dtype) + " is not generated");
    std::vector<float> values(static_cast<size_t>(shape_numel(shape)));
    for (float& x : values) x = dist(rng);
    feeds.emplace_back(v.name, Tensor::from_vector<float>(shape, values));
  }
  return feeds;
}

class LivePeer : public ::testing::TestWithParam<std::string> {};

TEST_P(LivePeer, MatchesOnnxRuntime) {
  TINYQ_REQUIRE_SHARED();
  TINYQ_REQUIRE_ORT();
  const std::string rel = GetParam();
  const std::string path = test::shared_dir() + "/" + (rel.rfind("real/", 0) == 0 ? "models/" : "reference/") + rel;
  const std::string file = fs::path(rel).filename().string();

  if (file == "vmaf_tiny_v1_medium.onnx") {
    try {
      Session::from_file(path);
      FAIL() << "tinyq loaded " << file << ", whose external data path is broken";
    } catch (const Error& e) {
      // The message must name the external-data file, and that file must indeed be missing.
      const std::string msg = e.message();
      const size_t end = msg.find(".data'");
      ASSERT_NE(end, std::string::npos) << "the error should name the missing .data file: " << msg;
      const size_t begin = msg.rfind('\'', end);
      const std::string named = msg.substr(begin + 1, end + 5 - begin - 1);
      EXPECT_FALSE(fs::exists(named)) << "named " << named << ", which exists: " << msg;
      std::cout << "[ refused ] " << msg << "\n";
    }
    return;
  }
  if (const char* why = unsupported_by_bridge(file)) {
    // Still required to load and run in tinyq.
    Session s = Session::from_file(path);
    std::cout << "[ not compared ] " << file << ": " << why << "\n";
    return;
  }

  Session session = Session::from_file(path);
  const NamedTensors feeds = make_feeds(session);
  const NamedTensors ours = session.run(feeds);
  const NamedTensors theirs = test::ort_run(path, feeds);
  const test::Bar bar = test::bar_for(session.model());
  ASSERT_EQ(ours.size(), theirs.size());
  for (const auto& [name, got] : ours) {
    const Tensor* want = find_array(theirs, name);
    ASSERT_NE(want, nullptr) << "ORT gave no output " << name;
    const test::Comparison c = test::compare({got}, {*want});
    test::expect_within_bar(c, bar, file + " output " + name);
    std::cout << "[ peer ] " << file << " " << name << " " << shape_to_string(got.shape()) << " (" << test::bar_name(bar)
              << "): max |diff| " << c.max_diff << ", max |ORT| " << c.max_ref << "\n";
  }
}

std::string param_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string s = info.param;
  for (char& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return s;
}

INSTANTIATE_TEST_SUITE_P(Models, LivePeer, ::testing::ValuesIn(peer_models()), param_name);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(LivePeer);

}  // namespace
}  // namespace tinyq
