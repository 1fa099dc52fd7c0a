// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// CSV and raw YUV sources, the luma crop/resize, frame lists, row sampling, and the builder
// that ties them together. Every input file is generated here.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <fstream>
#include <map>
#include <set>

#include "parquet_writer.h"
#include "test_support.h"
#include "tinyq/calibration.h"
#include "tinyq/error.h"

namespace tinyq {
namespace {

std::string write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary).write(text.data(), static_cast<std::streamsize>(text.size()));
  return path;
}

std::string error_text(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.message();
  }
  return "";
}

#define EXPECT_ERROR_HAS(expr, needle)                                          \
  do {                                                                         \
    std::string m_ = error_text([&] { expr; });                                \
    EXPECT_NE(m_.find(needle), std::string::npos) << "message: '" << m_ << "'"; \
  } while (0)

// ----- CSV ------------------------------------------------------------------------------------

TEST(CsvSource, ReadsColumnsInRequestedOrder) {
  std::string p = write_text(test::temp_dir() + "/f.csv",
                             "\xEF\xBB\xBF" "a, b ,c\r\n1,0.1,x\r\n+2.5, -3e2 ,\"y,z\"\r\n\r\n4,nan,\"q\"\"q\"\n\n");
  FeatureTable t = read_csv(p, {"b", "a"});
  ASSERT_EQ(t.rows, 3);
  ASSERT_EQ(t.columns.size(), 2u);
  EXPECT_EQ(t.columns[0].name, "b");
  auto b = t.columns[0].values.to_vector<float>();
  EXPECT_EQ(b[0], 0.1f);  // parsed straight to float: one correct rounding
  EXPECT_EQ(b[1], -300.0f);
  EXPECT_TRUE(std::isnan(b[2]));
  EXPECT_EQ(t.columns[1].values.to_vector<float>(), (std::vector<float>{1, 2.5f, 4}));
  // The quoted column holds commas and escaped quotes; read as strata it is text.
  FeatureTable s = read_csv(p, {"a"}, "c");
  ASSERT_EQ(s.columns.size(), 2u);
  EXPECT_TRUE(s.columns[1].is_string());
  EXPECT_EQ(s.columns[1].strings, (std::vector<std::string>{"x", "y,z", "q\"q"}));
  // A numeric strata column is read as float64.
  FeatureTable n = read_csv(p, {"b"}, "a");
  EXPECT_EQ(n.columns[1].values.dtype(), DType::F64);
  EXPECT_EQ(n.columns[1].values.to_vector<double>(), (std::vector<double>{1, 2.5, 4}));
}

TEST(CsvSource, EmptyCellsAreNulls) {
  std::string p = write_text(test::temp_dir() + "/f.csv", "a,b\n1,2\n,3\n4,\n5,6\n");
  FeatureTable t = read_csv(p, {"a", "b"});
  EXPECT_EQ(t.columns[0].null_count(), 1);
  EXPECT_EQ(t.columns[1].null_count(), 1);
  EXPECT_ERROR_HAS(require_no_nulls(t, p), "column 'a' has 1 null value (first at row 1)");
  FeatureTable kept = drop_null_rows(t);
  EXPECT_EQ(kept.rows, 2);
  EXPECT_EQ(kept.columns[1].values.to_vector<float>(), (std::vector<float>{2, 6}));
}

TEST(CsvSource, MalformedFilesNameTheLine) {
  std::string dir = test::temp_dir();
  EXPECT_ERROR_HAS(read_csv(write_text(dir + "/1.csv", "a,b\n1,2\n3,abc\n"), {"a", "b"}),
                   "1.csv: line 3, column 'b': 'abc' is not a number");
  EXPECT_ERROR_HAS(read_csv(write_text(dir + "/2.csv", "a,b\n1,2\n3\n"), {"a"}), "line 3 has 1 fields but the header has 2");
  EXPECT_ERROR_HAS(read_csv(write_text(dir + "/3.csv", "a,b\n1,2\n"), {"c"}), "no column 'c' in the CSV header (it has: a, b)");
  EXPECT_ERROR_HAS(read_csv(write_text(dir + "/4.csv", "a,a\n1,2\n"), {"a"}), "names column 'a' twice");
  EXPECT_ERROR_HAS(read_csv(write_text(dir + "/5.csv", "a\n\"1\n"), {"a"}), "line 2: unterminated quoted field");
  EXPECT_ERROR_HAS(read_csv(write_text(dir + "/6.csv", ""), {"a"}), "CSV file is empty");
  EXPECT_ERROR_HAS(read_csv(write_text(dir + "/7.csv", "a\n\"1\"x\n"), {"a"}), "text after a closing quote");
  EXPECT_ERROR_HAS(read_csv(write_text(dir + "/8.csv", "a\n1.5.2\n"), {"a"}), "'1.5.2' is not a number");
  // A quoted field spanning lines keeps later line numbers right.
  EXPECT_ERROR_HAS(read_csv(write_text(dir + "/9.csv", "a,b\n1,\"x\ny\"\nz,2\n"), {"a"}), "line 4, column 'a'");
  EXPECT_ERROR_HAS(read_csv(dir + "/missing.csv", {"a"}), "missing.csv: no such file");
}

// ----- YUV ------------------------------------------------------------------------------------

/// Luma sample of the generated test video.
uint32_t luma_at(int64_t f, int64_t y, int64_t x, bool ten_bit) {
  return ten_bit ? static_cast<uint32_t>((f * 100 + y * 13 + x * 7) % 1024)
                 : static_cast<uint32_t>((f * 40 + y * 6 + x) % 256);
}

/// Writes `frames` frames of a w x h yuv420p(10le) video: luma from luma_at, chroma 0x5a.
std::string write_yuv(const std::string& path, int64_t w, int64_t h, int64_t frames, bool ten_bit) {
  std::string s;
  const int64_t chroma = 2 * ((w + 1) / 2) * ((h + 1) / 2);
  for (int64_t f = 0; f < frames; ++f) {
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x) {
        uint32_t v = luma_at(f, y, x, ten_bit);
        s += static_cast<char>(v & 0xff);
        if (ten_bit) s += static_cast<char>(v >> 8);
      }
    for (int64_t k = 0; k < chroma; ++k) {
      s += '\x5a';
      if (ten_bit) s += '\x01';
    }
  }
  return write_text(path, s);
}

TEST(YuvSource, EightAndTenBitLumaNormalised) {
  std::string dir = test::temp_dir();
  for (bool ten : {false, true}) {
    for (auto [w, h] : {std::pair<int64_t, int64_t>{6, 4}, {5, 3}}) {  // odd sizes round chroma up
      YuvFrameSpec spec{w, h, ten ? YuvFormat::Yuv420p10le : YuvFormat::Yuv420p};
      std::string p = write_yuv(dir + "/v.yuv", w, h, 5, ten);
      EXPECT_EQ(yuv_frame_bytes(spec), static_cast<uint64_t>((w * h + 2 * ((w + 1) / 2) * ((h + 1) / 2)) * (ten ? 2 : 1)));
      EXPECT_EQ(yuv_frame_count(p, spec), 5);
      Tensor t = read_yuv_luma(p, spec, {4, 0, 3}, {});
      ASSERT_EQ(t.shape(), (Shape{3, 1, h, w}));
      const float* d = t.data<float>();
      const int64_t fr[] = {4, 0, 3};
      for (int i = 0; i < 3; ++i)
        for (int64_t y = 0; y < h; ++y)
          for (int64_t x = 0; x < w; ++x) {
            float want = static_cast<float>(luma_at(fr[i], y, x, ten)) / (ten ? 1023.0f : 255.0f);
            ASSERT_EQ(d[(i * h + y) * w + x], want) << ten << " " << i << " " << y << " " << x;
          }
    }
  }
}

TEST(YuvSource, BadFilesAndArguments) {
  std::string dir = test::temp_dir();
  std::string p = write_yuv(dir + "/v.yuv", 6, 4, 3, false);
  YuvFrameSpec spec{6, 4, YuvFormat::Yuv420p};
  EXPECT_ERROR_HAS(read_yuv_luma(p, spec, {3}, {}), "frame 3 is past the end (the file has 3 frames, 0..2)");
  EXPECT_ERROR_HAS(yuv_frame_count(p, YuvFrameSpec{7, 4, YuvFormat::Yuv420p}),
                   "file size 108 is not a whole number of 7x4 yuv420p frames (44 bytes each)");
  // One 6x4 10-bit frame (36 samples, 72 bytes) whose samples use all 16 bits, as 8-bit data
  // read as 10-bit would.
  std::string big(72, '\xff');
  std::string q = write_text(dir + "/b.yuv", big);
  EXPECT_ERROR_HAS(read_yuv_luma(q, {6, 4, YuvFormat::Yuv420p10le}, {0}, {}), "10-bit luma sample of 65535 (above 1023)");
  EXPECT_ERROR_HAS(yuv_frame_count(write_text(dir + "/e.yuv", ""), spec), "file is empty");
  EXPECT_ERROR_HAS(read_yuv_luma(p, spec, {0}, {LumaGeometry::Mode::CenterCrop, 8, 2}), "8x2 is larger than the 6x4 frame");
  EXPECT_ERROR_HAS(parse_yuv_format("nv12"), "'nv12' is not a supported pixel format");
  EXPECT_ERROR_HAS(parse_size_spec("224", "--size"), "--size: '224' is not a size WIDTHxHEIGHT");
  EXPECT_ERROR_HAS(parse_size_spec("0x10", "--crop"), "--crop");
  EXPECT_ERROR_HAS(parse_size_spec("99999999x1", "--size"), "--size");
  EXPECT_EQ(parse_size_spec("1920x1080", "--size"), (std::pair<int64_t, int64_t>{1920, 1080}));
}

TEST(YuvSource, FrameLists) {
  EXPECT_EQ(parse_frame_list("0,10,20"), (std::vector<int64_t>{0, 10, 20}));
  EXPECT_EQ(parse_frame_list("5,0:9:4,100"), (std::vector<int64_t>{5, 0, 4, 8, 100}));
  EXPECT_EQ(parse_frame_list("2:5"), (std::vector<int64_t>{2, 3, 4}));
  EXPECT_ERROR_HAS(parse_frame_list(""), "--frames");
  EXPECT_ERROR_HAS(parse_frame_list("1,,2"), "'' is not a frame number");
  EXPECT_ERROR_HAS(parse_frame_list("-1"), "'-1' is not a frame number");
  EXPECT_ERROR_HAS(parse_frame_list("3,3"), "frame 3 is listed twice");
  EXPECT_ERROR_HAS(parse_frame_list("5:5"), "range 5:5 is empty");
  EXPECT_ERROR_HAS(parse_frame_list("0:10:0"), "step must be at least 1");
  EXPECT_ERROR_HAS(parse_frame_list("0:999999999999"), "more than 1000000 frames");
}

TEST(LumaGeometry, CenterCrop) {
  std::vector<float> src(6 * 4);
  for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<float>(i);
  // 6x4 -> 4x2: margins 1 left/top, 1 right/bottom.
  EXPECT_EQ(luma_center_crop(src, 6, 4, 4, 2), (std::vector<float>{7, 8, 9, 10, 13, 14, 15, 16}));
  // 6x4 -> 3x3: odd margins put the extra pixel at the end (x0 = 1, y0 = 0).
  EXPECT_EQ(luma_center_crop(src, 6, 4, 3, 3), (std::vector<float>{1, 2, 3, 7, 8, 9, 13, 14, 15}));
  EXPECT_EQ(luma_center_crop(src, 6, 4, 6, 4), src);
}

TEST(LumaGeometry, BilinearHalfPixel) {
  std::vector<float> src(8 * 6);
  for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<float>((i * 37) % 11) / 10.0f;
  EXPECT_EQ(luma_resize_bilinear(src, 8, 6, 8, 6), src);  // same size: identity
  // Halving samples exactly between four pixels: the mean of each 2x2 block.
  std::vector<float> half = luma_resize_bilinear(src, 8, 6, 4, 3);
  for (int y = 0; y < 3; ++y)
    for (int x = 0; x < 4; ++x) {
      auto at = [&](int yy, int xx) { return src[static_cast<size_t>(yy * 8 + xx)]; };
      float want = (at(2 * y, 2 * x) + at(2 * y, 2 * x + 1) + at(2 * y + 1, 2 * x) + at(2 * y + 1, 2 * x + 1)) / 4;
      EXPECT_NEAR(half[static_cast<size_t>(y * 4 + x)], want, 1e-6) << y << "," << x;
    }
  // Doubling [a, b]: centres at -0.25 (clamped), 0.25, 0.75, 1.25 (clamped).
  std::vector<float> up = luma_resize_bilinear({1.0f, 3.0f}, 2, 1, 4, 1);
  EXPECT_EQ(up, (std::vector<float>{1.0f, 1.5f, 2.5f, 3.0f}));
  std::vector<float> flat(30, 0.25f);
  for (float v : luma_resize_bilinear(flat, 6, 5, 17, 3)) EXPECT_FLOAT_EQ(v, 0.25f);
}

// ----- sampling -------------------------------------------------------------------------------

TEST(Sampling, FirstAndRandom) {
  EXPECT_EQ(sample_rows(10, {SampleMode::First, 3, 0, 10}), (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(sample_rows(4, {SampleMode::First, -1, 0, 10}), (std::vector<int64_t>{0, 1, 2, 3}));
  auto a = sample_rows(100, {SampleMode::Random, 10, 7, 10});
  EXPECT_EQ(a, sample_rows(100, {SampleMode::Random, 10, 7, 10}));  // same seed, same rows
  EXPECT_NE(a, sample_rows(100, {SampleMode::Random, 10, 8, 10}));
  EXPECT_TRUE(std::is_sorted(a.begin(), a.end()));
  EXPECT_EQ(std::set<int64_t>(a.begin(), a.end()).size(), 10u);
  // Pinned: a calibration set must be the same file on every machine for the same seed.
  EXPECT_EQ(sample_rows(10, {SampleMode::Random, 3, 0, 10}), (std::vector<int64_t>{1, 5, 9}));
  EXPECT_EQ(sample_rows(5, {SampleMode::Random, 5, 3, 10}), (std::vector<int64_t>{0, 1, 2, 3, 4}));
  EXPECT_ERROR_HAS(sample_rows(5, {SampleMode::Random, 6, 3, 10}), "--n: asks for 6 samples but the source has only 5 rows");
}

TEST(Sampling, RandomIsUniform) {
  std::vector<int> hits(10, 0);
  for (uint64_t seed = 0; seed < 3000; ++seed)
    for (int64_t r : sample_rows(10, {SampleMode::Random, 3, seed, 10})) ++hits[static_cast<size_t>(r)];
  for (int h : hits) EXPECT_NEAR(h, 900, 120);  // 3000 * 3 / 10, binomial sd ~25
}

FeatureColumn string_column(const std::vector<std::string>& v) {
  FeatureColumn c;
  c.name = "clip";
  c.strings = v;
  return c;
}

TEST(Sampling, StratifiedByStringsIsProportional) {
  std::vector<std::string> v;
  for (int i = 0; i < 100; ++i) v.push_back(i % 10 < 5 ? "a" : (i % 10 < 8 ? "b" : "c"));  // 50 / 30 / 20
  FeatureColumn by = string_column(v);
  for (auto [n, want] : {std::pair<int64_t, std::map<std::string, int>>{10, {{"a", 5}, {"b", 3}, {"c", 2}}},
                         {7, {{"a", 4}, {"b", 2}, {"c", 1}}},  // 3.5/2.1/1.4: the .5 gets the spare
                         {100, {{"a", 50}, {"b", 30}, {"c", 20}}}}) {
    auto rows = sample_rows(100, {SampleMode::Stratified, n, 1, 10}, &by);
    ASSERT_EQ(static_cast<int64_t>(rows.size()), n);
    std::map<std::string, int> got;
    for (int64_t r : rows) got[v[static_cast<size_t>(r)]]++;
    EXPECT_EQ(got, want) << n;
    EXPECT_EQ(rows, sample_rows(100, {SampleMode::Stratified, n, 1, 10}, &by));
  }
  EXPECT_NE(sample_rows(100, {SampleMode::Stratified, 10, 1, 10}, &by),
            sample_rows(100, {SampleMode::Stratified, 10, 2, 10}, &by));
}

TEST(Sampling, StratifiedByNumbers) {
  // Few distinct values (<= bins): one stratum each.
  FeatureColumn cls;
  cls.name = "cls";
  std::vector<int32_t> labels;
  for (int i = 0; i < 40; ++i) labels.push_back(i < 30 ? 7 : -1);
  cls.values = Tensor::from_vector<int32_t>({40}, labels);
  std::map<int32_t, int> got;
  for (int64_t r : sample_rows(40, {SampleMode::Stratified, 4, 0, 10}, &cls)) got[labels[static_cast<size_t>(r)]]++;
  EXPECT_EQ(got, (std::map<int32_t, int>{{-1, 1}, {7, 3}}));
  // Many distinct values: equal-count bins of the sorted values, here quartiles.
  FeatureColumn score;
  score.name = "vmaf";
  std::vector<double> s;
  for (int i = 0; i < 100; ++i) s.push_back(static_cast<double>((i * 37) % 100));  // a permutation of 0..99
  score.values = Tensor::from_vector<double>({100}, s);
  std::vector<int> per_quartile(4, 0);
  for (int64_t r : sample_rows(100, {SampleMode::Stratified, 8, 5, 4}, &score))
    per_quartile[static_cast<size_t>(s[static_cast<size_t>(r)] / 25)]++;
  EXPECT_EQ(per_quartile, (std::vector<int>{2, 2, 2, 2}));
  // Strata columns with nulls or NaN, and stratified without a column, are refused.
  score.values.data<double>()[3] = NAN;
  EXPECT_ERROR_HAS(sample_rows(100, {SampleMode::Stratified, 8, 5, 4}, &score), "1 NaN or infinite values");
  FeatureColumn with_null = string_column({"a", "b"});
  with_null.present = {1, 0};
  EXPECT_ERROR_HAS(sample_rows(2, {SampleMode::Stratified, 1, 5, 4}, &with_null), "has 1 null values");
  EXPECT_ERROR_HAS(sample_rows(2, {SampleMode::Stratified, 1, 5, 4}, nullptr), "needs --by COLUMN");
  EXPECT_ERROR_HAS(parse_sample_mode("best"), "'best' is not a sampling mode");
}

// ----- the builder ----------------------------------------------------------------------------

TEST(BuildCalibrationSet, ParquetWithDropNull) {
  std::string dir = test::temp_dir();
  std::vector<float> a = {1, 2, 3, 4, 5, 6};
  std::vector<int64_t> b = {10, 20, 30, 40, 50, 60};
  std::vector<bool> nulls = {false, true, false, false, true, false};
  std::string file = test::write_parquet({test::TestColumn::numbers("a", test::kPFloat, a, nulls),
                                          test::TestColumn::numbers("b", test::kPInt64, b)});
  std::string path = write_text(dir + "/t.parquet", file);
  CalibrationSetSpec spec;
  spec.path = path;
  spec.columns = {"b", "a"};
  spec.input_name = "features";
  EXPECT_ERROR_HAS(build_calibration_set(spec), "t.parquet: column 'a' has 2 null values (first at row 1)");
  spec.drop_null = true;
  CalibrationSet set = build_calibration_set(spec);
  EXPECT_EQ(set.source_rows, 6);
  EXPECT_EQ(set.dropped_null_rows, 2);
  EXPECT_EQ(set.picked, (std::vector<int64_t>{0, 2, 3, 5}));  // rows of the file
  ASSERT_EQ(set.arrays.size(), 1u);
  EXPECT_EQ(set.arrays[0].first, "features");
  const Tensor& m = set.arrays[0].second;
  ASSERT_EQ(m.shape(), (Shape{4, 2}));
  EXPECT_EQ(m.to_vector<float>(), (std::vector<float>{10, 1, 30, 3, 40, 4, 60, 6}));
  spec.sample = {SampleMode::Random, 2, 11, 10};
  CalibrationSet r = build_calibration_set(spec);
  ASSERT_EQ(r.picked.size(), 2u);
  for (int64_t row : r.picked) EXPECT_FALSE(nulls[static_cast<size_t>(row)]);
}

TEST(BuildCalibrationSet, NonFiniteRefusedUnlessAllowed) {
  std::string p = write_text(test::temp_dir() + "/f.csv", "a,b\n1,2\n3,inf\nnan,4\n");
  CalibrationSetSpec spec;
  spec.source = CalibrationSetSpec::Source::Csv;
  spec.path = p;
  spec.columns = {"a", "b"};
  spec.input_name = "x";
  EXPECT_ERROR_HAS(build_calibration_set(spec), "2 feature values are NaN or infinite (first: row 1, column 'b')");
  spec.allow_nonfinite = true;
  EXPECT_EQ(build_calibration_set(spec).arrays[0].second.shape(), (Shape{3, 2}));
}

TEST(BuildCalibrationSet, CsvStratifiedAndYuv) {
  std::string dir = test::temp_dir();
  std::string csv = "v,clip\n";
  for (int i = 0; i < 60; ++i) csv += std::to_string(i) + ",c" + std::to_string(i % 3) + "\n";
  CalibrationSetSpec spec;
  spec.source = CalibrationSetSpec::Source::Csv;
  spec.path = write_text(dir + "/f.csv", csv);
  spec.columns = {"v"};
  spec.input_name = "x";
  spec.sample = {SampleMode::Stratified, 6, 4, 10};
  spec.by_column = "clip";
  CalibrationSet set = build_calibration_set(spec);
  std::map<int64_t, int> per_clip;
  for (float v : set.arrays[0].second.to_vector<float>()) per_clip[static_cast<int64_t>(v) % 3]++;
  EXPECT_EQ(per_clip, (std::map<int64_t, int>{{0, 2}, {1, 2}, {2, 2}}));
  spec.by_column.clear();
  EXPECT_ERROR_HAS(build_calibration_set(spec), "needs --by COLUMN");
  spec.sample.mode = SampleMode::First;
  spec.by_column = "clip";
  EXPECT_ERROR_HAS(build_calibration_set(spec), "--by: is only used with --sample stratified");

  CalibrationSetSpec y;
  y.source = CalibrationSetSpec::Source::Yuv;
  y.path = write_yuv(dir + "/v.yuv", 8, 6, 10, true);
  y.yuv = {8, 6, YuvFormat::Yuv420p10le};
  y.frames = {9, 1, 5, 7};
  y.geometry = {LumaGeometry::Mode::Resize, 4, 3};
  y.input_name = "luma";
  y.sample = {SampleMode::Random, 2, 0, 10};
  CalibrationSet ys = build_calibration_set(y);
  ASSERT_EQ(ys.arrays[0].second.shape(), (Shape{2, 1, 3, 4}));
  ASSERT_EQ(ys.picked.size(), 2u);
  EXPECT_EQ(ys.source_rows, 4);
  // Each sample is the resized luma of the frame it names.
  for (size_t i = 0; i < 2; ++i) {
    Tensor one = read_yuv_luma(y.path, y.yuv, {ys.picked[i]}, y.geometry);
    const float* got = ys.arrays[0].second.data<float>() + i * 12;
    EXPECT_EQ(std::vector<float>(got, got + 12), one.to_vector<float>());
  }
  y.sample = {SampleMode::Stratified, 2, 0, 10};
  EXPECT_ERROR_HAS(build_calibration_set(y), "needs a table source");
  // Every listed frame is checked, even one that sampling would not pick.
  y.sample = {SampleMode::First, 1, 0, 10};
  y.frames = {0, 10};
  EXPECT_ERROR_HAS(build_calibration_set(y), "v.yuv: frame 10 is past the end (the file has 10 frames, 0..9)");
}

}  // namespace
}  // namespace tinyq
