// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// The Parquet reader on files made by tests/calib/parquet_writer.h: every combination of page
// version, dictionary, codec, row-group and page split, level encoding; nulls; physical types;
// schemas and encodings tinyq refuses.

#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <limits>
#include <cstring>
#include <tuple>

#include "parquet_writer.h"
#include "tinyq/calibration.h"
#include "tinyq/error.h"

namespace tinyq {
namespace {

using test::TestColumn;
using test::WriterOptions;

/// Deterministic small pseudo-random numbers for fixture values.
struct Lcg {
  uint64_t s;
  uint32_t next() {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<uint32_t>(s >> 33);
  }
};

struct Fixture {
  std::vector<float> f;
  std::vector<double> d;
  std::vector<int32_t> i32;
  std::vector<int64_t> i64;
  std::vector<bool> b;
  std::vector<std::string> s;
  std::vector<bool> nulls;  ///< for the nullable float column
};

Fixture make_fixture(size_t rows) {
  Fixture fx;
  Lcg g{42};
  for (size_t r = 0; r < rows; ++r) {
    // Few distinct values in some columns so dictionaries are small; many in others.
    fx.f.push_back(static_cast<float>(g.next() % 1000) / 7.0f);
    fx.d.push_back(static_cast<double>(g.next()) / 3.0 - 1e8);
    fx.i32.push_back(static_cast<int32_t>(g.next() % 5) - 2);
    fx.i64.push_back((static_cast<int64_t>(g.next()) << 20) - (int64_t{1} << 40));
    fx.b.push_back(g.next() % 3 == 0);
    fx.s.push_back("clip_" + std::to_string(g.next() % 4));
    fx.nulls.push_back(g.next() % 4 == 0);
  }
  return fx;
}

std::vector<TestColumn> fixture_columns(const Fixture& fx) {
  std::vector<TestColumn> cols;
  cols.push_back(TestColumn::numbers("f", test::kPFloat, fx.f));
  cols.push_back(TestColumn::numbers("fn", test::kPFloat, fx.f, fx.nulls));
  cols.push_back(TestColumn::numbers("d", test::kPDouble, fx.d));
  cols.push_back(TestColumn::numbers("i32", test::kPInt32, fx.i32));
  cols.push_back(TestColumn::numbers("i64", test::kPInt64, fx.i64));
  cols.back().optional = false;  // REQUIRED: no definition levels at all
  cols.push_back(TestColumn::bools("b", fx.b));
  cols.push_back(TestColumn::strings("s", fx.s));
  return cols;
}

template <typename T>
std::vector<T> values_of(const FeatureColumn& c) {
  return c.values.to_vector<T>();
}

void expect_fixture(const FeatureTable& t, const Fixture& fx) {
  const size_t rows = fx.f.size();
  ASSERT_EQ(t.rows, static_cast<int64_t>(rows));
  ASSERT_EQ(t.columns.size(), 7u);
  EXPECT_EQ(values_of<float>(t.columns[0]), fx.f);
  EXPECT_TRUE(t.columns[0].present.empty());
  // Nullable column: nulls marked, 0 stored, other values intact.
  const FeatureColumn& fn = t.columns[1];
  ASSERT_EQ(fn.present.size(), rows);
  auto fv = values_of<float>(fn);
  for (size_t r = 0; r < rows; ++r) {
    EXPECT_EQ(fn.present[r], fx.nulls[r] ? 0 : 1) << r;
    EXPECT_EQ(fv[r], fx.nulls[r] ? 0.0f : fx.f[r]) << r;
  }
  EXPECT_EQ(values_of<double>(t.columns[2]), fx.d);
  EXPECT_EQ(values_of<int32_t>(t.columns[3]), fx.i32);
  EXPECT_EQ(values_of<int64_t>(t.columns[4]), fx.i64);
  auto bv = values_of<bool>(t.columns[5]);
  EXPECT_EQ(std::vector<bool>(bv.begin(), bv.end()), fx.b);
  EXPECT_TRUE(t.columns[6].is_string());
  EXPECT_EQ(t.columns[6].strings, fx.s);
}

// page version, dictionary, codec, rows per group, rows per page, level style
using Combo = std::tuple<int, bool, int32_t, size_t, size_t, int>;

class CraftedParquet : public ::testing::TestWithParam<Combo> {};

TEST_P(CraftedParquet, RoundTripsEveryType) {
  auto [version, dict, codec, per_group, per_page, level_style] = GetParam();
  Fixture fx = make_fixture(53);  // not a multiple of 8, the group or the page size
  WriterOptions o;
  o.page_version = version;
  o.dictionary = dict;
  o.codec = codec;
  o.rows_per_group = per_group;
  o.rows_per_page = per_page;
  o.level_style = level_style;
  o.index_style = 1 - level_style;
  std::string file = test::write_parquet(fixture_columns(fx), o);
  FeatureTable t = parse_parquet(file, "crafted.parquet", {"f", "fn", "d", "i32", "i64", "b", "s"});
  expect_fixture(t, fx);
}

INSTANTIATE_TEST_SUITE_P(Layouts, CraftedParquet,
                         ::testing::Combine(::testing::Values(1, 2), ::testing::Bool(),
                                            ::testing::Values(test::kCodecNone, test::kCodecSnappy,
                                                              test::kCodecGzip, test::kCodecZstd),
                                            ::testing::Values(size_t{0}, size_t{20}),
                                            ::testing::Values(size_t{0}, size_t{7}), ::testing::Values(0, 1)));

std::string error_of(const std::string& file, const std::vector<std::string>& cols, const ParquetLimits& limits = {}) {
  try {
    parse_parquet(file, "x.parquet", cols, limits);
  } catch (const Error& e) {
    EXPECT_EQ(e.subject(), "x.parquet");
    return e.what();
  }
  return "";
}

/// Expects parse_parquet to refuse `file` with a message containing `needle`.
void expect_refused(const std::string& file, const std::vector<std::string>& cols, const std::string& needle) {
  std::string msg = error_of(file, cols);
  EXPECT_NE(msg.find(needle), std::string::npos) << "message: '" << msg << "'";
}

TEST(CraftedParquetSchema, PlainDictionaryDataPagesAndColumnOrder) {
  Fixture fx = make_fixture(30);
  WriterOptions o;
  o.dictionary = true;
  o.dict_data_encoding = 2;  // PLAIN_DICTIONARY, as parquet-mr 1.x writes
  std::string file = test::write_parquet(fixture_columns(fx), o);
  // Columns come back in the order asked for, not the file's.
  FeatureTable t = parse_parquet(file, "x.parquet", {"i32", "f"});
  ASSERT_EQ(t.columns.size(), 2u);
  EXPECT_EQ(t.columns[0].name, "i32");
  EXPECT_EQ(values_of<int32_t>(t.columns[0]), fx.i32);
  EXPECT_EQ(values_of<float>(t.columns[1]), fx.f);
  // An empty list reads every flat column.
  EXPECT_EQ(parse_parquet(file, "x.parquet", {}).columns.size(), 7u);
}

TEST(CraftedParquetSchema, ByteStreamSplitNumbers) {
  Fixture fx = make_fixture(21);
  for (int version : {1, 2}) {
    WriterOptions o;
    o.page_version = version;
    o.byte_stream_split = true;
    o.codec = test::kCodecZstd;
    o.rows_per_page = 8;
    expect_fixture(parse_parquet(test::write_parquet(fixture_columns(fx), o), "x.parquet",
                                 {"f", "fn", "d", "i32", "i64", "b", "s"}),
                   fx);
  }
}

TEST(CraftedParquetSchema, UnsupportedEncodingsRefusedByName) {
  WriterOptions o;
  o.encoding_lie = 5;
  expect_refused(test::write_parquet({TestColumn::numbers("a", test::kPInt64, std::vector<int64_t>{1, 2})}, o),
                 std::vector<std::string>{"a"}, "encoding DELTA_BINARY_PACKED is not supported");
  o.encoding_lie = 9;  // BYTE_STREAM_SPLIT does not apply to strings
  expect_refused(test::write_parquet({TestColumn::strings("s", {"a", "b"})}, o), std::vector<std::string>{"s"},
                 "encoding BYTE_STREAM_SPLIT is not supported");
  o.encoding_lie = 8;  // dictionary indices without a dictionary page
  expect_refused(test::write_parquet({TestColumn::numbers("a", test::kPInt64, std::vector<int64_t>{1, 2})}, o),
                 std::vector<std::string>{"a"}, "no dictionary page");
}

TEST(CraftedParquetSchema, UnsignedIntegersKeepTheirValue) {
  std::vector<uint32_t> u = {0, 1, 0x80000000u, 0xffffffffu};
  TestColumn c = TestColumn::numbers("u", test::kPInt32, u);
  c.converted_type = 13;  // UINT_32
  FeatureTable t = parse_parquet(test::write_parquet({c}), "x.parquet", {"u"});
  EXPECT_EQ(t.columns[0].values.dtype(), DType::U32);
  EXPECT_EQ(values_of<uint32_t>(t.columns[0]), u);
  Tensor m = table_to_matrix(t, {"u"}, {0, 1, 2, 3}, "x");
  EXPECT_EQ(m.data<float>()[3], 4294967296.0f);
}

TEST(CraftedParquetSchema, DoublesNarrowToFloatLikeIeee) {
  const double flt_max = std::numeric_limits<float>::max();
  std::vector<double> v = {0.1, -1e300, flt_max + std::ldexp(1.0, 102), 1e300, std::nan("")};
  FeatureTable t = parse_parquet(test::write_parquet({TestColumn::numbers("d", test::kPDouble, v)}), "x.parquet", {"d"});
  std::vector<float> m = table_to_matrix(t, {"d"}, {0, 1, 2, 3, 4}, "x").to_vector<float>();
  EXPECT_EQ(m[0], 0.1f);
  EXPECT_EQ(m[1], -std::numeric_limits<float>::infinity());
  EXPECT_EQ(m[2], std::numeric_limits<float>::max());  // within half an ulp: rounds down
  EXPECT_EQ(m[3], std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(m[4]));
}

TEST(CraftedParquetSchema, NullsAllAndNone) {
  std::vector<float> v = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  std::vector<bool> all(10, true);
  for (int version : {1, 2})
    for (bool dict : {false, true}) {
      WriterOptions o;
      o.page_version = version;
      o.dictionary = dict;
      FeatureTable t = parse_parquet(test::write_parquet({TestColumn::numbers("a", test::kPFloat, v, all),
                                                          TestColumn::numbers("b", test::kPFloat, v)},
                                                         o),
                                     "x.parquet", {"a", "b"});
      EXPECT_EQ(t.columns[0].null_count(), 10);
      EXPECT_EQ(values_of<float>(t.columns[0]), std::vector<float>(10, 0.0f));
      EXPECT_EQ(values_of<float>(t.columns[1]), v);
      FeatureTable kept = drop_null_rows(t);
      EXPECT_EQ(kept.rows, 0);
    }
}

TEST(CraftedParquetSchema, NullsRefusedOrDropped) {
  std::vector<double> v = {1, 2, 3, 4, 5};
  std::vector<bool> nulls = {false, true, false, false, true};
  FeatureTable t = parse_parquet(test::write_parquet({TestColumn::numbers("a", test::kPDouble, v),
                                                      TestColumn::numbers("b", test::kPDouble, v, nulls)}),
                                 "x.parquet", {"a", "b"});
  try {
    require_no_nulls(t, "x.parquet");
    FAIL() << "nulls accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.message(), "x.parquet: column 'b' has 2 null values (first at row 1); pass --drop-null to skip those rows");
  }
  FeatureTable kept = drop_null_rows(t);
  EXPECT_EQ(kept.rows, 3);
  EXPECT_EQ(values_of<double>(kept.columns[0]), (std::vector<double>{1, 3, 4}));
  EXPECT_EQ(values_of<double>(kept.columns[1]), (std::vector<double>{1, 3, 4}));
  EXPECT_TRUE(kept.columns[1].present.empty());
  EXPECT_THROW(table_to_matrix(t, {"b"}, {1}, "x"), Error);
}

TEST(CraftedParquetSchema, ZeroRows) {
  FeatureTable t = parse_parquet(test::write_parquet({TestColumn::numbers("a", test::kPFloat, std::vector<float>{})}),
                                 "x.parquet", {"a"});
  EXPECT_EQ(t.rows, 0);
  EXPECT_EQ(t.columns[0].values.numel(), 0);
}

TEST(CraftedParquetSchema, NestedColumnsRefusedButFlatOnesRead) {
  std::vector<int32_t> v = {1, 2, 3};
  TestColumn nested = TestColumn::numbers("x", test::kPInt32, v);
  nested.group = "g";
  TestColumn list = TestColumn::numbers("l", test::kPInt32, v);
  list.repeated = true;
  list.optional = false;
  TestColumn flat = TestColumn::numbers("a", test::kPInt32, v);
  std::string file = test::write_parquet({nested, list, flat});
  expect_refused(file, std::vector<std::string>{"g"}, "column 'g' is nested");
  expect_refused(file, std::vector<std::string>{"l"}, "column 'l' is nested");
  FeatureTable t = parse_parquet(file, "x.parquet", {"a"});
  EXPECT_EQ(values_of<int32_t>(t.columns[0]), v);
  // Reading "all" columns skips the nested ones.
  EXPECT_EQ(parse_parquet(file, "x.parquet", {}).columns.size(), 1u);
}

TEST(CraftedParquetSchema, UnsupportedTypesAndCodecsRefusedClearly) {
  std::vector<int64_t> v = {1, 2, 3};
  TestColumn dec = TestColumn::numbers("price", test::kPInt64, v);
  dec.converted_type = 5;  // DECIMAL
  expect_refused(test::write_parquet({dec}), std::vector<std::string>{"price"}, "column 'price' is DECIMAL");

  std::vector<std::array<char, 12>> i96(3);
  expect_refused(test::write_parquet({TestColumn::numbers("ts", test::kPInt96, i96)}), std::vector<std::string>{"ts"},
                 "physical type INT96");

  WriterOptions o;
  o.codec = test::kCodecBrotli;
  expect_refused(test::write_parquet({TestColumn::numbers("a", test::kPInt64, v)}, o), std::vector<std::string>{"a"},
                 "compression codec BROTLI is not supported");

  expect_refused(test::write_parquet({TestColumn::numbers("a", test::kPInt64, v)}), std::vector<std::string>{"b"},
                 "no column 'b' (the file has: a)");
}

}  // namespace
}  // namespace tinyq
