// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// Conformance against stored ONNX Runtime 1.30 outputs (../shared/reference/ort-1.30, made by
// ORT on the seed gate's 16 inputs): for each model, the fp32 graph, ORT's own dynamic, QDQ and
// per-channel QDQ quantisations, and the fork's shipped <model>.int8.onnx where it is the very
// file ORT's dynamic quantisation produced (otherwise live_peer_test.cpp compares it with ORT).
// Bars and the gate's drop: conformance_util.h. All 16 samples are used, as the gate does.

#include <filesystem>

#include "common/sha256.h"
#include "conformance_util.h"
#include "tinyq/error.h"
#include "tinyq/model_io.h"
#include "tinyq/npz.h"

namespace fs = std::filesystem;

namespace tinyq {
namespace {

constexpr int kSamples = 16;

std::string ref_dir() { return test::shared_dir() + "/reference/ort-1.30/"; }
std::string real_dir() { return test::shared_dir() + "/models/real/"; }

// The first output of `model_path` on each of the 16 gate inputs.
std::vector<Tensor> run_gate(const std::string& model_path, const NamedTensors& inputs) {
  Session session = Session::from_file(model_path);
  std::vector<Tensor> firsts;
  for (int i = 0; i < kSamples; ++i) {
    NamedTensors feeds;
    for (const ValueInfo& in : session.inputs()) {
      const std::string key = in.name + "__" + std::to_string(i);
      const Tensor* t = find_array(inputs, key);
      if (!t) throw Error(model_path, "gate inputs lack " + key);
      feeds.emplace_back(in.name, *t);
    }
    firsts.push_back(session.run(feeds).front().second);
  }
  return firsts;
}

std::vector<Tensor> stored_outputs(const std::string& path) {
  const NamedTensors npz = read_npz(path);
  std::vector<Tensor> out;
  for (int i = 0; i < kSamples; ++i) {
    const Tensor* t = find_array(npz, "arr_" + std::to_string(i));
    if (!t) throw Error(path, "lacks arr_" + std::to_string(i));
    out.push_back(*t);
  }
  return out;
}

class StoredReference : public ::testing::TestWithParam<std::string> {};

TEST_P(StoredReference, Fp32AndInt8GraphsMatchOrt) {
  TINYQ_REQUIRE_SHARED();
  const std::string m = GetParam();
  const NamedTensors inputs = read_npz(ref_dir() + m + ".gate_inputs.npz");

  const std::vector<Tensor> ort_fp32 = stored_outputs(ref_dir() + m + ".gate_fp32_out.npz");
  std::vector<Tensor> our_fp32;
  ASSERT_NO_THROW(our_fp32 = run_gate(real_dir() + m + ".onnx", inputs)) << m << ".onnx";
  const test::Comparison fp32_cmp = test::compare(our_fp32, ort_fp32);
  test::expect_within_bar(fp32_cmp, test::Bar::Exactish, m + " fp32");
  std::cout << "[ diff ] " << m << " fp32: max |ours - ORT| " << fp32_cmp.max_diff << " (max |ORT| " << fp32_cmp.max_ref
            << ")\n";

  struct Graph {
    std::string tag, path, ref;
  };
  std::vector<Graph> graphs;
  for (const char* tag : {"dyn", "qdq", "qdqpc"})
    graphs.push_back({tag, ref_dir() + m + ".ort_" + tag + ".int8.onnx", tag});
  // The fork's shipped sidecar shares ORT's dynamic reference only when it is the same file.
  const std::string shipped = real_dir() + m + ".int8.onnx";
  if (fs::exists(shipped) && sha256_file(shipped) == sha256_file(ref_dir() + m + ".ort_dyn.int8.onnx"))
    graphs.push_back({"shipped int8", shipped, "dyn"});
  else
    std::cout << "[ note ] " << m << ".int8.onnx differs from ORT's dynamic quantisation; compared live instead\n";

  for (const Graph& g : graphs) {
    SCOPED_TRACE(m + " " + g.tag);
    const std::vector<Tensor> ort_q = stored_outputs(ref_dir() + m + ".gate_" + g.ref + "_out.npz");
    std::vector<Tensor> our_q;
    ASSERT_NO_THROW(our_q = run_gate(g.path, inputs)) << g.path;
    const test::Bar bar = test::bar_for(load_model(g.path));
    const test::Comparison cmp = test::compare(our_q, ort_q);
    test::expect_within_bar(cmp, bar, m + " " + g.tag);
    const double ours = test::gate_drop(our_fp32, our_q), theirs = test::gate_drop(ort_fp32, ort_q);
    EXPECT_NEAR(ours, theirs, test::drop_tolerance(bar))
        << m << " " << g.tag << ": the gate's PLCC drop from tinyq's outputs vs ORT's (" << test::bar_name(bar) << ")";
    std::cout << "[ diff ] " << m << " " << g.tag << " (" << test::bar_name(bar) << "): max |ours - ORT| " << cmp.max_diff
              << " (max |ORT| " << cmp.max_ref << ", range " << cmp.range_ref << "), PLCC " << cmp.plcc << "; drop tinyq "
              << ours << ", ORT " << theirs << "\n";
  }
}

INSTANTIATE_TEST_SUITE_P(Models, StoredReference,
                         ::testing::Values("vmaf_tiny_v3", "vmaf_tiny_v4", "nr_metric_v1", "learned_filter_v1"));

}  // namespace
}  // namespace tinyq
