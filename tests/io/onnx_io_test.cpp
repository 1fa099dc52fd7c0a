// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <filesystem>
#include <random>

#include "common/file_util.h"
#include "graph/graph_edit.h"
#include "model_builder.h"
#include "test_support.h"
#include "tinyq/error.h"
#include "tinyq/model_io.h"

namespace fs = std::filesystem;

namespace tinyq {
namespace {

std::vector<std::string> shared_models() {
  std::vector<std::string> out;
  for (const char* sub : {"/models/real", "/reference/ort-1.30"})
    for (const auto& e : fs::directory_iterator(test::shared_dir() + sub))
      if (e.path().extension() == ".onnx") out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

bool broken_on_purpose(const std::string& path) { return path.find("vmaf_tiny_v1_medium.onnx") != std::string::npos; }

void expect_same_model(const Model& a, const Model& b, const std::string& what) {
  EXPECT_EQ(a.ir_version, b.ir_version) << what;
  EXPECT_EQ(a.opset(), b.opset()) << what;
  ASSERT_EQ(a.graph.nodes.size(), b.graph.nodes.size()) << what;
  for (size_t i = 0; i < a.graph.nodes.size(); ++i) {
    EXPECT_EQ(a.graph.nodes[i].op_type, b.graph.nodes[i].op_type);
    EXPECT_EQ(a.graph.nodes[i].inputs, b.graph.nodes[i].inputs);
    EXPECT_EQ(a.graph.nodes[i].attributes.size(), b.graph.nodes[i].attributes.size());
  }
  ASSERT_EQ(a.graph.initializers.size(), b.graph.initializers.size()) << what;
  for (size_t i = 0; i < a.graph.initializers.size(); ++i) {
    EXPECT_EQ(a.graph.initializers[i].name, b.graph.initializers[i].name);
    EXPECT_TRUE(a.graph.initializers[i].tensor.bit_equal(b.graph.initializers[i].tensor))
        << what << ": " << a.graph.initializers[i].name;
  }
  ASSERT_EQ(a.graph.inputs.size(), b.graph.inputs.size());
  for (size_t i = 0; i < a.graph.inputs.size(); ++i)
    EXPECT_EQ(a.graph.inputs[i].shape_string(), b.graph.inputs[i].shape_string());
}

// Inputs for ORT: symbolic dims become small sizes (batch 2, 64x64 images).
NamedTensors make_feeds(const Model& m) {
  std::mt19937 rng(7);
  NamedTensors feeds;
  for (const ValueInfo* v : m.graph.real_inputs()) {
    Shape shape;
    for (size_t d = 0; d < v->dims.size(); ++d)
      shape.push_back(v->dims[d].known() ? v->dims[d].value : (d == 0 ? 2 : 64));
    Tensor t(v->dtype, shape);
    if (v->dtype == DType::F32)
      for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = static_cast<float>(rng() % 1000) / 1000.0f;
    feeds.emplace_back(v->name, t);
  }
  return feeds;
}

TEST(OnnxIo, RoundTripKeepsEveryTensorBitIdentical) {
  TINYQ_REQUIRE_SHARED();
  std::string dir = test::temp_dir();
  int checked = 0;
  for (const auto& path : shared_models()) {
    if (broken_on_purpose(path)) continue;
    Model a = load_model(path);
    std::string copy = dir + "/" + path_basename(path);
    save_model(a, copy);
    Model b = load_model(copy);
    expect_same_model(a, b, path);
    ++checked;
  }
  EXPECT_GE(checked, 30);
}

TEST(OnnxIo, RoundTripCopiesStillRunInOnnxRuntime) {
  TINYQ_REQUIRE_SHARED();
  TINYQ_REQUIRE_ORT();
  std::string dir = test::temp_dir();
  for (const auto& path : shared_models()) {
    if (broken_on_purpose(path) || path.find("smoke_fp16") != std::string::npos) continue;
    // The reference int8 files duplicate the real models' structure; one of each is enough here.
    if (path.find("ort-1.30") != std::string::npos && path.find("vmaf_tiny_v3") == std::string::npos) continue;
    Model m = load_model(path);
    std::string copy = dir + "/" + path_basename(path);
    save_model(m, copy);
    NamedTensors feeds = make_feeds(m);
    NamedTensors want = test::ort_run(path, feeds);
    NamedTensors got = test::ort_run(copy, feeds);
    ASSERT_EQ(want.size(), got.size()) << path;
    for (size_t i = 0; i < want.size(); ++i) {
      const Tensor* g = find_array(got, want[i].first);
      ASSERT_NE(g, nullptr) << path;
      EXPECT_TRUE(g->bit_equal(want[i].second)) << path << " output " << want[i].first;
    }
  }
}

TEST(OnnxIo, ExternalDataLoadsRelativeToTheModel) {
  TINYQ_REQUIRE_SHARED();
  LoadedModel lm = load_model_file(test::shared_dir() + "/models/real/fr_regressor_v1.onnx");
  ASSERT_FALSE(lm.external_data.empty());
  EXPECT_EQ(lm.external_data[0].location, "fr_regressor_v1.onnx.data");
  try {
    load_model(test::shared_dir() + "/models/real/vmaf_tiny_v1_medium.onnx");
    ADD_FAILURE() << "broken external data accepted";
  } catch (const Error& e) {
    EXPECT_NE(e.message().find("mlp_medium_final.onnx.data"), std::string::npos) << e.message();
    EXPECT_NE(e.message().find("does not exist"), std::string::npos) << e.message();
  }
}

// A one-initializer model written with protobuf directly, so tests can put anything in it.
onnx::ModelProto tiny_proto() {
  onnx::ModelProto mp;
  mp.set_ir_version(8);
  mp.add_opset_import()->set_version(17);
  auto* g = mp.mutable_graph();
  g->set_name("g");
  auto* n = g->add_node();
  n->set_op_type("Identity");
  n->add_input("w");
  n->add_output("y");
  auto* t = g->add_initializer();
  t->set_name("w");
  t->set_data_type(onnx::TensorProto::FLOAT);
  t->add_dims(4);
  t->set_raw_data(std::string(16, '\0'));
  auto* o = g->add_output();
  o->set_name("y");
  o->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
  return mp;
}

void set_external(onnx::TensorProto* t, const std::string& location, const std::string& offset,
                  const std::string& length) {
  t->clear_raw_data();
  t->set_data_location(onnx::TensorProto::EXTERNAL);
  auto add = [&](const char* k, const std::string& v) {
    if (v.empty()) return;
    auto* kv = t->add_external_data();
    kv->set_key(k);
    kv->set_value(v);
  };
  add("location", location);
  add("offset", offset);
  add("length", length);
}

std::string expect_load_error(const std::string& path) {
  try {
    load_model(path);
  } catch (const Error& e) {
    EXPECT_EQ(e.message().rfind(path, 0), 0u) << "error does not name the file: " << e.message();
    return e.message();
  }
  ADD_FAILURE() << path << " loaded";
  return "";
}

TEST(OnnxIo, HostileExternalDataIsRefused) {
  std::string dir = test::temp_dir();
  fs::create_directories(dir + "/m");
  write_file_atomic(dir + "/m/w.bin", std::string(32, '\1'));
  write_file_atomic(dir + "/secret.bin", std::string(16, '\2'));
  struct Case {
    const char* location;
    const char* offset;
    const char* length;
    const char* message;
  } cases[] = {
      {"w.bin", "0", "16", nullptr},
      {"w.bin", "16", "", nullptr},
      {"../secret.bin", "0", "16", "escapes the model's folder"},
      {"/etc/passwd", "0", "16", "absolute or escapes"},
      {"sub/../../secret.bin", "0", "16", "escapes"},
      {"w.bin", "24", "16", "runs past the end"},
      {"w.bin", "0", "12", "disagrees with its shape"},
      {"w.bin", "99999999999999999999999", "16", "not a number"},
      {"nope.bin", "0", "16", "does not exist"},
  };
  for (const auto& c : cases) {
    onnx::ModelProto mp = tiny_proto();
    set_external(mp.mutable_graph()->mutable_initializer(0), c.location, c.offset, c.length);
    std::string path = dir + "/m/model.onnx";
    write_file_atomic(path, mp.SerializeAsString());
    if (!c.message) {
      EXPECT_NO_THROW(load_model(path)) << c.location;
      continue;
    }
    std::string msg = expect_load_error(path);
    EXPECT_NE(msg.find(c.message), std::string::npos) << c.location << ": " << msg;
  }
}

TEST(OnnxIo, HostileTensorSizesAreRefusedBeforeAllocating) {
  std::string dir = test::temp_dir();
  onnx::ModelProto mp = tiny_proto();
  auto* t = mp.mutable_graph()->mutable_initializer(0);
  t->clear_dims();
  t->add_dims(1000000);
  t->add_dims(1000000);
  write_file_atomic(dir + "/huge.onnx", mp.SerializeAsString());
  EXPECT_NE(expect_load_error(dir + "/huge.onnx").find("over the limit"), std::string::npos);

  t->clear_dims();
  t->add_dims(-3);
  write_file_atomic(dir + "/neg.onnx", mp.SerializeAsString());
  EXPECT_NE(expect_load_error(dir + "/neg.onnx").find("negative"), std::string::npos);

  t->clear_dims();
  t->add_dims(5);  // 20 bytes declared, 16 given
  write_file_atomic(dir + "/short.onnx", mp.SerializeAsString());
  EXPECT_NE(expect_load_error(dir + "/short.onnx").find("raw data"), std::string::npos);

  LoadLimits small;
  small.max_total_tensor_bytes = 8;
  write_file_atomic(dir + "/ok.onnx", tiny_proto().SerializeAsString());
  EXPECT_THROW(load_model(dir + "/ok.onnx", small), Error);
  LoadLimits few_nodes;
  few_nodes.max_nodes = 0;
  EXPECT_THROW(load_model(dir + "/ok.onnx", few_nodes), Error);
}

TEST(OnnxIo, GarbageFilesAreNotModels) {
  std::string dir = test::temp_dir();
  std::mt19937 rng(1);
  std::string random(4096, '\0');
  for (char& c : random) c = static_cast<char>(rng());
  write_file_atomic(dir + "/random.onnx", random);
  write_file_atomic(dir + "/empty.onnx", "");
  std::string good = tiny_proto().SerializeAsString();
  write_file_atomic(dir + "/cut.onnx", good.substr(0, good.size() - 7));
  for (const char* f : {"/random.onnx", "/empty.onnx", "/cut.onnx"}) {
    std::string msg = expect_load_error(dir + f);
    EXPECT_NE(msg.find("not a valid ONNX model"), std::string::npos) << f << ": " << msg;
  }
}

TEST(GraphEdit, TopologicalOrderAndValueInfoCleanup) {
  test::ModelBuilder b;
  b.input("x", DType::F32, {1, 2}).output("z");
  b.node("Relu", {"y"}, {"z"}).node("Relu", {"x"}, {"y"});
  b.initializer("w", Tensor(DType::F32, {2}));
  ValueInfo dup;
  dup.name = "w";
  b.model.graph.value_info.push_back(dup);
  Graph& g = b.model.graph;
  graph::sort_topologically(g);
  EXPECT_EQ(g.nodes[0].outputs[0], "y");
  EXPECT_EQ(graph::remove_initializer_value_info(g), 1u);
  EXPECT_EQ(graph::remove_unused_initializers(g), 1u);
  EXPECT_EQ(graph::unique_name(g, "y"), "y_1");
  g.nodes[0].inputs[0] = "z";  // cycle
  EXPECT_THROW(graph::topological_order(g), Error);
}

}  // namespace
}  // namespace tinyq
