// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// The reader against real files written by pyarrow 25 (../shared/data): three layouts of the
// same 3,000-row feature cache must decode to features_expected.npz exactly, column by column.

#include <gtest/gtest.h>

#include "test_support.h"
#include "tinyq/calibration.h"
#include "tinyq/error.h"

namespace tinyq {
namespace {

const char* const kFiles[] = {"features_plain.parquet", "features_snappy.parquet", "features_zstd.parquet"};

class RealParquet : public ::testing::TestWithParam<const char*> {};

TEST_P(RealParquet, EveryColumnMatchesExpectedExactly) {
  TINYQ_REQUIRE_SHARED();
  const std::string dir = test::shared_dir() + "/data/";
  NamedTensors expected = read_npz(dir + "features_expected.npz");
  ASSERT_EQ(expected.size(), 8u);
  std::vector<std::string> names;
  for (const auto& [name, t] : expected) names.push_back(name);

  FeatureTable table = read_parquet(dir + GetParam(), names);
  ASSERT_EQ(table.rows, 3000);
  ASSERT_EQ(table.columns.size(), names.size());
  for (size_t i = 0; i < names.size(); ++i) {
    const FeatureColumn& c = table.columns[i];
    SCOPED_TRACE(c.name);
    EXPECT_EQ(c.name, names[i]);
    EXPECT_TRUE(c.present.empty()) << "no nulls expected";
    EXPECT_TRUE(c.values.bit_equal(expected[i].second))
        << dtype_name(c.values.dtype()) << shape_to_string(c.values.shape()) << " vs "
        << dtype_name(expected[i].second.dtype()) << shape_to_string(expected[i].second.shape());
  }
}

TEST_P(RealParquet, InfoListsSchema) {
  TINYQ_REQUIRE_SHARED();
  ParquetInfo info = parquet_read_info(test::shared_dir() + "/data/" + GetParam());
  EXPECT_EQ(info.rows, 3000);
  EXPECT_NE(info.created_by.find("parquet-cpp-arrow"), std::string::npos);
  std::vector<std::string> names;
  for (const auto& c : info.columns) names.push_back(c.name);
  EXPECT_EQ(names, (std::vector<std::string>{"adm2", "vif_scale0", "vif_scale1", "vif_scale2", "vif_scale3",
                                             "motion2", "vmaf", "clip", "frame"}));
  EXPECT_EQ(info.columns[0].type, ParquetType::Float);
  EXPECT_EQ(info.columns[5].type, ParquetType::Double);
  EXPECT_EQ(info.columns[7].type, ParquetType::ByteArray);
  EXPECT_EQ(info.columns[8].type, ParquetType::Int64);
}

TEST_P(RealParquet, StringColumnDecodesAndIsRefusedAsFeature) {
  TINYQ_REQUIRE_SHARED();
  const std::string path = test::shared_dir() + "/data/" + GetParam();
  FeatureTable t = read_parquet(path, {"clip", "frame"});
  ASSERT_TRUE(t.columns[0].is_string());
  ASSERT_EQ(t.columns[0].strings.size(), 3000u);
  for (const auto& s : t.columns[0].strings) ASSERT_EQ(s.rfind("clip_", 0), 0u) << s;
  try {
    table_to_matrix(t, {"clip"}, {0}, path);
    FAIL() << "string column accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("strings"), std::string::npos) << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(Files, RealParquet, ::testing::ValuesIn(kFiles));

}  // namespace
}  // namespace tinyq
