// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// `tinyq build-calibration-set` as a process: outputs, exit codes, one-line errors, no partial
// files, and recording the set in a registry.

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>

#include "parquet_writer.h"
#include "test_support.h"
#include "tinyq/calibration.h"
#include "tinyq/npz.h"
#include "tinyq/registry.h"

namespace tinyq {
namespace {

namespace fs = std::filesystem;

std::string q(const std::string& s) { return "'" + s + "'"; }

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void expect_one_line_error(const test::CommandResult& r, const std::string& needle) {
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
}

TEST(CliBuildCalibrationSet, ParquetFirstRowsMatchExpected) {
  TINYQ_REQUIRE_SHARED();
  const std::string data = test::shared_dir() + "/data/";
  const std::string out = test::temp_dir() + "/set.npz";
  auto r = test::run_cli("build-calibration-set --out " + q(out) + " --input-name features --parquet " +
                         q(data + "features_snappy.parquet") + " --columns vmaf,motion2,frame --n 20");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("[20,3] from 20 of 3000 rows"), std::string::npos) << r.out;
  NamedTensors set = read_npz(out);
  ASSERT_EQ(set.size(), 1u);
  EXPECT_EQ(set[0].first, "features");
  const Tensor& m = set[0].second;
  ASSERT_EQ(m.shape(), (Shape{20, 3}));
  NamedTensors expected = read_npz(data + "features_expected.npz");
  const float* vmaf = find_array(expected, "vmaf")->data<float>();
  const double* motion2 = find_array(expected, "motion2")->data<double>();
  const int64_t* frame = find_array(expected, "frame")->data<int64_t>();
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(m.data<float>()[i * 3 + 0], vmaf[i]);
    EXPECT_EQ(m.data<float>()[i * 3 + 1], static_cast<float>(motion2[i]));
    EXPECT_EQ(m.data<float>()[i * 3 + 2], static_cast<float>(frame[i]));
  }
}

TEST(CliBuildCalibrationSet, StratifiedByClipIsDeterministic) {
  TINYQ_REQUIRE_SHARED();
  const std::string data = test::shared_dir() + "/data/";
  const std::string dir = test::temp_dir();
  std::string args = " --input-name f --columns adm2,vif_scale0 --n 74 --sample stratified --by clip --seed 9";
  auto a = test::run_cli("build-calibration-set --out " + q(dir + "/a.npz") + " --parquet " +
                         q(data + "features_zstd.parquet") + args);
  auto b = test::run_cli("build-calibration-set --out " + q(dir + "/b.npz") + " --parquet " +
                         q(data + "features_plain.parquet") + args);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  ASSERT_EQ(b.exit_code, 0) << b.err;
  // The same table, whatever the file's layout, gives byte-identical sets.
  EXPECT_EQ(slurp(dir + "/a.npz"), slurp(dir + "/b.npz"));
  // 37 clips of ~81 rows, 74 samples: two per clip.
  FeatureTable t = read_parquet(data + "features_plain.parquet", {"adm2", "clip"});
  const Tensor m = read_npz(dir + "/a.npz")[0].second;
  std::map<std::string, int> per_clip;
  const float* adm2 = t.columns[0].values.data<float>();
  for (int64_t i = 0; i < m.dim(0); ++i)
    for (int64_t r = 0; r < t.rows; ++r)
      if (adm2[r] == m.data<float>()[i * 2]) {
        per_clip[t.columns[1].strings[static_cast<size_t>(r)]]++;
        break;
      }
  EXPECT_EQ(per_clip.size(), 37u);
  for (const auto& [clip, n] : per_clip) EXPECT_EQ(n, 2) << clip;
}

TEST(CliBuildCalibrationSet, CsvAndYuv) {
  const std::string dir = test::temp_dir();
  std::ofstream(dir + "/f.csv") << "x,y\n1,2\n3,4\n,6\n";
  auto r = test::run_cli("build-calibration-set --out " + q(dir + "/c.npz") + " --input-name in --csv " +
                         q(dir + "/f.csv") + " --columns y,x --drop-null");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("(1 rows with nulls dropped)"), std::string::npos) << r.out;
  EXPECT_EQ(read_npz(dir + "/c.npz")[0].second.to_vector<float>(), (std::vector<float>{2, 1, 4, 3}));

  std::string yuv(3 * (16 * 8 * 3 / 2), '\0');
  for (size_t i = 0; i < yuv.size(); ++i) yuv[i] = static_cast<char>(i % 251);
  std::ofstream(dir + "/v.yuv", std::ios::binary) << yuv;
  r = test::run_cli("build-calibration-set --out " + q(dir + "/y.npz") + " --input-name img --yuv " +
                    q(dir + "/v.yuv") + " --size 16x8 --frames 2,0 --crop 8x4 --compress");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Tensor t = read_npz(dir + "/y.npz")[0].second;
  ASSERT_EQ(t.shape(), (Shape{2, 1, 4, 8}));
  // Frame 2, row 2 (crop top), column 4 (crop left).
  const size_t off = 2 * (16 * 8 * 3 / 2) + 2 * 16 + 4;
  EXPECT_EQ(t.data<float>()[0], static_cast<float>(static_cast<uint8_t>(yuv[off])) / 255.0f);
}

TEST(CliBuildCalibrationSet, ErrorsAreOneLineExitTwoAndWriteNothing) {
  const std::string dir = test::temp_dir();
  const std::string out = dir + "/o.npz";
  std::ofstream(dir + "/f.csv") << "x,y\n1,2\n3,\n";
  std::ofstream(dir + "/v.yuv", std::ios::binary) << std::string(96, '\0');
  std::string p = test::write_parquet({test::TestColumn::numbers("a", test::kPFloat, std::vector<float>{1, 2, 3})});
  std::ofstream(dir + "/t.parquet", std::ios::binary) << p;
  std::ofstream(dir + "/trunc.parquet", std::ios::binary) << p.substr(0, p.size() - 20);
  const std::string base = "build-calibration-set --out " + q(out) + " --input-name in ";
  struct Case {
    std::string args, needle;
  } cases[] = {
      {"--columns a", "give exactly one of --parquet FILE, --csv FILE or --yuv FILE"},
      {"--csv " + q(dir + "/f.csv") + " --parquet " + q(dir + "/t.parquet") + " --columns a", "exactly one"},
      {"--parquet " + q(dir + "/nope.parquet") + " --columns a", "nope.parquet: no such file"},
      {"--parquet " + q(dir + "/t.parquet") + " --columns b", "no column 'b' (the file has: a)"},
      {"--parquet " + q(dir + "/t.parquet"), "--columns: name the feature columns"},
      {"--parquet " + q(dir + "/trunc.parquet") + " --columns a", "trunc.parquet: not a complete Parquet file"},
      {"--parquet " + q(dir + "/t.parquet") + " --columns a --n 4", "--n: asks for 4 samples but the source has only 3 rows"},
      {"--parquet " + q(dir + "/t.parquet") + " --columns a --sample best", "'best' is not a sampling mode"},
      {"--parquet " + q(dir + "/t.parquet") + " --columns a --sample stratified", "needs --by COLUMN"},
      {"--parquet " + q(dir + "/t.parquet") + " --columns a --size 4x4", "--size: is only used with --yuv"},
      {"--csv " + q(dir + "/f.csv") + " --columns x,y", "column 'y' has 1 null value (first at row 1)"},
      {"--yuv " + q(dir + "/v.yuv") + " --columns a --size 8x8", "--columns: is only used with --parquet or --csv"},
      {"--yuv " + q(dir + "/v.yuv"), "--size: raw YUV needs the frame size"},
      {"--yuv " + q(dir + "/v.yuv") + " --size 8x8 --format rgb24", "'rgb24' is not a supported pixel format"},
      {"--yuv " + q(dir + "/v.yuv") + " --size 8x8 --crop 4x4 --resize 4x4", "use either --crop or --resize"},
      {"--yuv " + q(dir + "/v.yuv") + " --size 8x8 --frames 0,1", "frame 1 is past the end (the file has 1 frames"},
      {"--yuv " + q(dir + "/v.yuv") + " --size 7x8", "not a whole number of 7x8 yuv420p frames"},
      {"--yuv " + q(dir + "/v.yuv") + " --size 8x8 --n 0", "--n"},
      {"--yuv " + q(dir + "/v.yuv") + " --size 8x8 --registry r.json", "--registry and --model go together"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.args);
    expect_one_line_error(test::run_cli(base + c.args), c.needle);
    EXPECT_FALSE(fs::exists(out));
  }
  // The output may not replace its own source.
  expect_one_line_error(test::run_cli("build-calibration-set --out " + q(dir + "/f.csv") + " --input-name in --csv " +
                                      q(dir + "/f.csv") + " --columns x"),
                        "would overwrite the source file");
  // Nothing but the inputs is left in the folder (no temp files either).
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(dir)) files += e.is_regular_file() ? 1 : 0;
  EXPECT_EQ(files, 4u);
}

TEST(CliBuildCalibrationSet, RecordsTheSetInTheRegistry) {
  TINYQ_REQUIRE_SHARED();
  const std::string models = test::shared_dir() + "/models/real/";
  const std::string root = test::temp_dir();
  const std::string reg_dir = root + "/model/tiny";
  fs::create_directories(reg_dir);
  fs::create_directories(root + "/calib");
  for (const char* f : {"registry.json", "registry.schema.json", "vmaf_tiny_v3.onnx", "vmaf_tiny_v3.int8.onnx"})
    fs::copy_file(models + f, reg_dir + "/" + f);
  std::ofstream(root + "/f.csv") << "a,b,c,d,e,f\n1,2,3,4,5,6\n";
  const std::string reg = reg_dir + "/registry.json";
  const std::string base = "build-calibration-set --input-name features --csv " + q(root + "/f.csv") +
                           " --columns a,b,c,d,e,f --registry " + q(reg) + " --root " + q(root);

  // An fp32 entry and an int8 one (its digest is checked, and kept).
  for (const char* id : {"vmaf_tiny_v2", "vmaf_tiny_v3"}) {
    auto r = test::run_cli(base + " --model " + id + " --out " + q(root + "/calib/" + id + ".npz"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find(std::string(id) + " quant_calibration_set = calib/" + id + ".npz"), std::string::npos) << r.out;
  }
  Registry after = load_registry(reg);
  EXPECT_EQ(after.at("vmaf_tiny_v2").quant_calibration_set, "calib/vmaf_tiny_v2.npz");
  EXPECT_EQ(after.at("vmaf_tiny_v2").quant_mode, QuantMode::Fp32);
  EXPECT_EQ(after.at("vmaf_tiny_v3").quant_calibration_set, "calib/vmaf_tiny_v3.npz");
  EXPECT_EQ(after.at("vmaf_tiny_v3").quant_mode, QuantMode::Dynamic);
  EXPECT_EQ(after.at("vmaf_tiny_v3").int8_sha256, load_registry(models + "registry.json").at("vmaf_tiny_v3").int8_sha256);

  // Refusals leave the registry and the output untouched.
  const std::string before = slurp(reg);
  expect_one_line_error(test::run_cli(base + " --model no_such_model --out " + q(root + "/calib/x.npz")),
                        "no model with id 'no_such_model'");
  expect_one_line_error(test::run_cli(base + " --model vmaf_tiny_v2 --out " + q(test::temp_dir() + "/x.npz")),
                        "is not inside the repo root");
  std::ofstream(reg_dir + "/vmaf_tiny_v3.int8.onnx", std::ios::app) << "tampered";
  expect_one_line_error(test::run_cli(base + " --model vmaf_tiny_v3 --out " + q(root + "/calib/x.npz")),
                        "differs from the registry's int8_sha256");
  EXPECT_FALSE(fs::exists(root + "/calib/x.npz"));
  EXPECT_EQ(slurp(reg), before);
}

}  // namespace
}  // namespace tinyq
