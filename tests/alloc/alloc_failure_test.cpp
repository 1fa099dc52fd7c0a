// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// Out of memory, at every allocation: each test first counts the allocations an operation
// makes, then runs it again once per allocation with that one failing (failing_new.h). Each
// failure must come out of the operation as std::bad_alloc or a tinyq::Error (the C API: a
// status), on the calling thread (a worker thread's failure included), never as a crash or a
// hang; and afterwards the same objects and a fresh run give the right answer again: no cache,
// plan or arena left half-built, no partial file written.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <new>
#include <string>
#include <vector>

#include "failing_new.h"
#include "test_support.h"
#include "common/file_util.h"
#include "tinyq/calibrate.h"
#include "tinyq/calibration.h"
#include "tinyq/error.h"
#include "tinyq/model_io.h"
#include "tinyq/quantize.h"
#include "tinyq/session.h"
#include "tinyq/tinyq.h"

namespace tinyq {
namespace {

namespace alloc = test::alloc;

std::string example(const std::string& name) { return test::source_dir() + "/examples/" + name; }

// Deterministic inputs for the bundled examples.
Tensor ramp(const Shape& shape, float scale) {
  Tensor t(DType::F32, shape);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = scale * static_cast<float>((i * 37) % 101) / 101.0f;
  return t;
}
NamedTensors mlp_feeds() { return {{"features", ramp({4, 6}, 2.0f)}}; }
NamedTensors filter_feeds() { return {{"degraded", ramp({1, 1, 48, 40}, 1.0f)}}; }

struct SweepResult {
  int64_t allocations = 0, failed = 0;  // allocations the operation makes; tries where one failed
};

// How many failures the current test has recorded so far.
int failures_so_far() {
  const ::testing::TestResult* r = ::testing::UnitTest::GetInstance()->current_test_info()->result();
  int n = 0;
  for (int i = 0; i < r->total_part_count(); ++i) n += r->GetTestPartResult(i).failed();
  return n;
}

// Runs `op` once per allocation it makes, with that allocation failing; `op` returns normally
// (it may have absorbed the failure itself, as a status) or throws std::bad_alloc or a
// tinyq::Error. Anything else fails the test. `check` runs disarmed after the counting run and
// after each try; the sweep stops at the first try that fails.
SweepResult sweep_failures(const std::function<void()>& op, const std::function<void()>& check) {
  SweepResult r;
  alloc::count();
  op();
  r.allocations = alloc::disarm();
  EXPECT_GT(r.allocations, 0);
  check();
  const int before = failures_so_far();
  for (int64_t n = 1; n <= r.allocations; ++n) {
    std::string escaped;
    alloc::fail_nth(n);
    try {
      op();
    } catch (const std::bad_alloc&) {
    } catch (const Error&) {
    } catch (const std::exception& e) {
      escaped = std::string("std::exception: ") + e.what();
    } catch (...) {
      escaped = "a non-standard exception";
    }
    const bool failed = alloc::failed();
    alloc::disarm();
    r.failed += failed;
    EXPECT_TRUE(escaped.empty()) << "allocation " << n << " of " << r.allocations << ": " << escaped;
    if (!escaped.empty()) break;
    check();
    if (failures_so_far() > before) {
      ADD_FAILURE() << "after failing allocation " << n << " of " << r.allocations;
      break;
    }
  }
  return r;
}

void expect_same(const NamedTensors& a, const NamedTensors& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].second.shape(), b[i].second.shape()) << a[i].first;
    EXPECT_EQ(test::max_abs_diff(a[i].second, b[i].second), 0.0) << a[i].first;
  }
}

struct Case {
  const char* file;
  bool dynamic_int8;
  int threads;
};

// Load, optimise, build and run a session: fp32 and dynamic int8, one and two threads.
TEST(AllocationFailure, LoadBuildAndRunFailCleanly) {
  const Case cases[] = {{"mlp_regressor.onnx", false, 1}, {"mlp_regressor.onnx", true, 1},
                        {"residual_filter.onnx", false, 1}, {"residual_filter.onnx", false, 2},
                        {"residual_filter.onnx", true, 2}};
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.file) + (c.dynamic_int8 ? " int8" : " fp32") + ", threads " +
                 std::to_string(c.threads));
    const NamedTensors feeds = std::string(c.file).rfind("mlp", 0) == 0 ? mlp_feeds() : filter_feeds();
    auto load = [&] {
      Model m = load_model(example(c.file));
      return c.dynamic_int8 ? quantize_dynamic(m).model : m;
    };
    SessionOptions options;
    options.threads = c.threads;
    const NamedTensors want = Session(load(), options).run(feeds);
    NamedTensors got;
    const SweepResult r = sweep_failures(
        [&] {
          got.clear();
          Session s(load(), options);
          got = s.run(feeds);
          got = s.run(feeds);  // the second run reuses plans, arenas and scratch
        },
        [&] {
          if (!got.empty()) expect_same(got, want);
          expect_same(Session(load(), options).run(feeds), want);
        });
    EXPECT_GT(r.failed, 0);
  }
}

// A session whose run failed part-way runs again, with the same answer.
TEST(AllocationFailure, SessionRunsAgainAfterAFailedRun) {
  for (int threads : {1, 2}) {
    SessionOptions options;
    options.threads = threads;
    Session s(quantize_dynamic(load_model(example("residual_filter.onnx"))).model, options);
    const NamedTensors feeds = filter_feeds();
    const NamedTensors want = s.run(feeds);
    const SweepResult r = sweep_failures([&] { s.run(feeds); }, [&] { expect_same(s.run(feeds), want); });
    EXPECT_GT(r.failed, 0) << "threads " << threads;
  }
}

// The files `tinyq ptq-static` and `tinyq ptq-dynamic` write, as they write them (static:
// calibration on two worker threads, the QDQ rewrite, the atomic write): a failed run leaves
// no output and no temporary file behind, and reports an error only when it wrote nothing.
void expect_all_or_nothing(const std::string& dir, const std::string& out, const std::function<void()>& write,
                           const std::vector<std::string>& other_files) {
  const NamedTensors feeds = filter_feeds();
  write();
  const NamedTensors want = Session(load_model(out)).run(feeds);
  std::filesystem::remove(out);
  auto files = [&] {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(dir)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  };
  bool wrote = false;
  const SweepResult r = sweep_failures(
      [&] {
        wrote = false;
        write();
        wrote = true;
      },
      [&] {
        if (wrote) {
          expect_same(Session(load_model(out)).run(feeds), want);
          std::filesystem::remove(out);
        }
        EXPECT_EQ(files(), other_files) << "a failed run left files behind";
      });
  EXPECT_GT(r.failed, 0);
}

TEST(AllocationFailure, StaticQuantisationWritesAllOrNothing) {
  const std::string dir = test::temp_dir();
  const std::string cal = dir + "/cal.npz", out = dir + "/filter.int8.onnx";
  write_npz(cal, {{"degraded", ramp({4, 1, 32, 32}, 1.0f)}});
  StaticQuantFileOptions options;
  options.calibration.threads = 2;
  expect_all_or_nothing(
      dir, out, [&] { quantize_static_file(example("residual_filter.onnx"), out, cal, options); }, {"cal.npz"});
}

// The histogram methods keep more state per tensor (two passes, histograms per worker).
TEST(AllocationFailure, HistogramCalibrationWritesAllOrNothing) {
  for (CalibrationMethod method : {CalibrationMethod::Percentile, CalibrationMethod::Entropy}) {
    SCOPED_TRACE(calibration_method_name(method));
    const std::string dir = test::temp_dir();
    const std::string cal = dir + "/cal.npz", out = dir + "/filter.int8.onnx";
    write_npz(cal, {{"degraded", ramp({3, 1, 24, 24}, 1.5f)}});
    StaticQuantFileOptions options;
    options.calibration.threads = 2;
    options.calibration.method = method;
    options.calibration.histogram_bins = 256;
    expect_all_or_nothing(
        dir, out, [&] { quantize_static_file(example("residual_filter.onnx"), out, cal, options); }, {"cal.npz"});
  }
}

TEST(AllocationFailure, DynamicQuantisationWritesAllOrNothing) {
  const std::string dir = test::temp_dir();
  const std::string out = dir + "/filter.int8.onnx";
  DynamicQuantOptions options;
  options.per_channel = true;
  expect_all_or_nothing(
      dir, out, [&] { quantize_dynamic_file(example("residual_filter.onnx"), out, options); }, {});
}

// One run through the C API: a session from `create`, run on x, output 0 copied to *result
// (when given), the session freed.
tinyq_status c_api_run(const std::function<tinyq_status(tinyq_session**)>& create, const Tensor& x,
                       std::vector<float>* result) {
  const float* data[] = {x.data<float>()};
  const int64_t* shapes[] = {x.shape().data()};
  const size_t ranks[] = {x.rank()};
  tinyq_session* s = nullptr;
  tinyq_status st = create(&s);
  if (st == TINYQ_OK) st = tinyq_session_run(s, 1, data, shapes, ranks);
  const float* out = nullptr;
  size_t count = 0;
  if (st == TINYQ_OK) st = tinyq_session_output(s, 0, &out, nullptr, nullptr, &count);
  if (st == TINYQ_OK && result) result->assign(out, out + count);
  tinyq_session_free(s);
  return st;
}

// c_api_run under the sweep: every failure comes back as a status with a message, and the
// run after it gives the answer again. Returns the statuses seen.
std::vector<tinyq_status> sweep_c_api(const std::function<tinyq_status(tinyq_session**)>& create, const Tensor& x) {
  std::vector<float> want;
  EXPECT_EQ(c_api_run(create, x, &want), TINYQ_OK) << tinyq_last_error();
  std::vector<tinyq_status> seen;
  const SweepResult r = sweep_failures(
      [&] {
        const tinyq_status st = c_api_run(create, x, nullptr);
        seen.push_back(st);
        if (st != TINYQ_OK && std::string(tinyq_last_error()).empty()) ADD_FAILURE() << "a failure without a message";
      },
      [&] {
        std::vector<float> again;
        ASSERT_EQ(c_api_run(create, x, &again), TINYQ_OK) << tinyq_last_error();
        EXPECT_EQ(again, want);
      });
  EXPECT_GT(r.failed, 0);
  return seen;
}

// The C API turns every failure into a status and a message; the handles stay usable.
TEST(AllocationFailure, CApiReportsOutOfMemoryAsAStatus) {
  const std::string path = example("residual_filter.onnx");
  const tinyq_session_options two_threads{2};
  const std::vector<tinyq_status> seen = sweep_c_api(
      [&](tinyq_session** s) { return tinyq_session_create_by_path(path.c_str(), &two_threads, s); },
      filter_feeds()[0].second);
  EXPECT_NE(std::find(seen.begin(), seen.end(), TINYQ_ERROR_OUT_OF_MEMORY), seen.end());
}

// `tinyq build-calibration-set`'s readers: Parquet (snappy and zstd pages, as pyarrow wrote
// them), CSV and raw YUV, with stratified and random sampling.
TEST(AllocationFailure, CalibrationSetBuildersFailCleanly) {
  const std::string dir = test::temp_dir();
  write_file_atomic(dir + "/f.csv", "clip,x,y\na,0.5,1\nb,1.5,\na,2.5,3\nc,3.5,4\nb,4.5,5\n");
  std::string yuv;
  for (int i = 0; i < 3 * (32 * 24 * 3 / 2); ++i) yuv.push_back(static_cast<char>((i * 7) % 251));
  write_file_atomic(dir + "/v.yuv", yuv);
  std::vector<CalibrationSetSpec> specs;
  CalibrationSetSpec csv;
  csv.source = CalibrationSetSpec::Source::Csv;
  csv.path = dir + "/f.csv";
  csv.columns = {"y", "x"};
  csv.drop_null = true;
  csv.by_column = "clip";
  csv.sample.mode = SampleMode::Stratified;
  csv.sample.n = 3;
  csv.input_name = "features";
  specs.push_back(csv);
  CalibrationSetSpec video;
  video.source = CalibrationSetSpec::Source::Yuv;
  video.path = dir + "/v.yuv";
  video.yuv = {32, 24, YuvFormat::Yuv420p};
  video.frames = {0, 2};
  video.geometry = {LumaGeometry::Mode::Resize, 16, 12};
  video.input_name = "degraded";
  specs.push_back(video);
  if (!test::shared_dir().empty())
    for (const char* file : {"features_snappy.parquet", "features_zstd.parquet"}) {
      CalibrationSetSpec parquet;
      parquet.path = test::shared_dir() + "/data/" + file;
      parquet.columns = {"adm2", "vif_scale0", "motion2"};
      parquet.sample.mode = SampleMode::Random;
      parquet.sample.n = 40;
      parquet.input_name = "features";
      specs.push_back(parquet);
    }
  if (specs.back().source == CalibrationSetSpec::Source::Parquet) {  // and stratified on its string column
    CalibrationSetSpec stratified = specs.back();
    stratified.by_column = "clip";
    stratified.sample.mode = SampleMode::Stratified;
    specs.push_back(stratified);
  }
  for (const CalibrationSetSpec& spec : specs) {
    SCOPED_TRACE(spec.path + " " + spec.by_column);
    const CalibrationSet want = build_calibration_set(spec);
    CalibrationSet got;
    const SweepResult r = sweep_failures(
        [&] {
          got = CalibrationSet();
          got = build_calibration_set(spec);
        },
        [&] {
          if (!got.arrays.empty()) expect_same(got.arrays, want.arrays);
          expect_same(build_calibration_set(spec).arrays, want.arrays);
        });
    EXPECT_GT(r.failed, 0);
  }
}

// A model opened and run by registry id through the C API (path safety, sha256 of the model
// bytes, the op allowlist), and an .npz written and read back. Opening the registry itself is
// left out of the sweep: valijson's default allocator is nothrow new, whose null its containers
// then write through (a crash in valijson's own code, not tinyq's), so the registry is opened
// once, with memory to spare.
TEST(AllocationFailure, RegistryModelAndNpzFailCleanly) {
  tinyq_registry* reg = nullptr;
  ASSERT_EQ(tinyq_registry_open(example("registry.json").c_str(), test::source_dir().c_str(), &reg), TINYQ_OK)
      << tinyq_last_error();
  sweep_c_api(
      [&](tinyq_session** s) {
        const char* path = nullptr;
        const tinyq_status st = tinyq_registry_resolve(reg, "example_mlp", &path, nullptr);
        return st == TINYQ_OK ? tinyq_session_create_by_id(reg, "example_mlp", nullptr, s) : st;
      },
      mlp_feeds()[0].second);

  const std::string dir = test::temp_dir();
  const NamedTensors arrays = {{"a", ramp({3, 5}, 1.0f)}, {"b", ramp({7}, 2.0f)}};
  const SweepResult r = sweep_failures(
      [&] {
        write_npz(dir + "/x.npz", arrays, true);
        read_npz(dir + "/x.npz");
      },
      [&] {
        for (const auto& e : std::filesystem::directory_iterator(dir))
          EXPECT_EQ(e.path().filename().string(), "x.npz") << "a temporary file was left behind";
        if (std::filesystem::exists(dir + "/x.npz")) {  // written whole, or not at all
          const NamedTensors back = read_npz(dir + "/x.npz");
          expect_same(back, arrays);
          std::filesystem::remove(dir + "/x.npz");
        }
      });
  EXPECT_GT(r.failed, 0);
  tinyq_registry_free(reg);
}

}  // namespace
}  // namespace tinyq
