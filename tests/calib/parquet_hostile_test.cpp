// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// Hostile Parquet files: truncated, random, mutated, and lying about sizes and counts. Each
// must give tinyq::Error naming the file (or, for a harmless mutation, decode), never crash,
// hang or make a huge allocation.

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "parquet_writer.h"
#include "test_support.h"
#include "tinyq/calibration.h"
#include "tinyq/error.h"

namespace tinyq {
namespace {

using test::TestColumn;
using test::WriterOptions;

// Tight limits so a mutation that happens to declare a plausible size cannot make the test slow.
ParquetLimits small_limits() {
  ParquetLimits l;
  l.max_rows = 100000;
  l.max_page_bytes = 4 << 20;
  l.max_chunk_bytes = 4 << 20;
  l.max_string_bytes = 4 << 20;
  return l;
}

std::string fixture_file(const WriterOptions& o) {
  std::vector<float> f;
  std::vector<int64_t> i;
  std::vector<bool> nulls;
  std::vector<std::string> s;
  for (int r = 0; r < 40; ++r) {
    f.push_back(static_cast<float>(r % 7) * 0.5f);
    i.push_back(r * 1000003LL);
    nulls.push_back(r % 5 == 2);
    s.push_back(r % 3 ? "aa" : "bbb");
  }
  return test::write_parquet({TestColumn::numbers("f", test::kPFloat, f, nulls),
                              TestColumn::numbers("i", test::kPInt64, i), TestColumn::strings("s", s)},
                             o);
}

/// Parses, returning "" on success and the message on tinyq::Error; any other exception fails.
std::string outcome(const std::string& bytes, const std::vector<std::string>& cols = {"f", "i", "s"}) {
  try {
    parse_parquet(bytes, "h.parquet", cols, small_limits());
    return "";
  } catch (const Error& e) {
    EXPECT_EQ(e.subject(), "h.parquet") << e.what();
    return std::string(e.what()).empty() ? "(empty message)" : e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "non-tinyq exception: " << e.what();
    return "other";
  }
}

void expect_error(const std::string& bytes, const std::string& needle,
                  const std::vector<std::string>& cols = {"f", "i", "s"}) {
  std::string msg = outcome(bytes, cols);
  EXPECT_NE(msg, "") << "accepted";
  EXPECT_NE(msg.find(needle), std::string::npos) << "message: '" << msg << "'";
}

TEST(HostileParquet, NotParquet) {
  expect_error("", "too short");
  expect_error("PAR1PAR1", "too short");
  expect_error(std::string(100, 'x'), "no PAR1 magic at the start");
  expect_error("PAR1" + std::string(100, '\0'), "no PAR1 magic at the end");
  expect_error("PAR1" + std::string(100, '\0') + "PARE", "encrypted footer");
  std::string big_footer = "PAR1" + std::string(100, '\0');
  test::put_u32(big_footer, 0xfffffff0u);
  expect_error(big_footer + "PAR1", "footer length 4294967280 is larger than the file allows");
}

TEST(HostileParquet, EveryTruncationIsAnError) {
  for (int version : {1, 2}) {
    WriterOptions o;
    o.page_version = version;
    o.dictionary = version == 2;
    o.codec = test::kCodecSnappy;
    const std::string file = fixture_file(o);
    ASSERT_EQ(outcome(file), "");
    for (size_t n = 0; n < file.size(); ++n) EXPECT_NE(outcome(file.substr(0, n)), "") << "prefix " << n;
  }
}

TEST(HostileParquet, RandomBytesWithMagicAreRefused) {
  uint64_t state = 1;
  auto next = [&] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<uint8_t>(state >> 56);
  };
  for (int trial = 0; trial < 300; ++trial) {
    std::string body(16 + trial * 3, '\0');
    for (char& c : body) c = static_cast<char>(next());
    std::string file = "PAR1" + body;
    test::put_u32(file, static_cast<uint32_t>(trial % 2 ? body.size() : next()));  // plausible or random footer length
    file += "PAR1";
    EXPECT_NE(outcome(file), "") << trial;
  }
}

TEST(HostileParquet, MutatedFilesNeverCrash) {
  uint64_t state = 99;
  auto next = [&] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return state >> 33;
  };
  int refused = 0, accepted = 0;
  for (int variant = 0; variant < 8; ++variant) {
    WriterOptions o;
    o.page_version = 1 + variant % 2;
    o.dictionary = (variant / 2) % 2;
    o.codec = variant / 4 ? test::kCodecZstd : test::kCodecNone;
    o.rows_per_page = 16;
    const std::string file = fixture_file(o);
    for (int trial = 0; trial < 250; ++trial) {
      std::string m = file;
      int flips = 1 + static_cast<int>(next() % 4);
      for (int k = 0; k < flips; ++k) m[next() % m.size()] = static_cast<char>(next());
      (outcome(m).empty() ? accepted : refused)++;
    }
  }
  // Most mutations hit bytes that matter; some land in values and decode as other numbers.
  EXPECT_GT(refused, 0);
  EXPECT_GT(accepted, 0);
}

TEST(HostileParquet, HugeDeclaredSizesAreRefusedBeforeAllocating) {
  {
    WriterOptions o;
    o.declared_rows = 1000000000000LL;
    expect_error(fixture_file(o), "declares 1000000000000 rows, over the limit");
  }
  {
    WriterOptions o;
    o.declared_rows = 41;  // row groups hold 40
    expect_error(fixture_file(o), "row groups hold 40 rows but the file declares 41");
  }
  {
    WriterOptions o;
    o.page_uncompressed_lie = 0x7fffffff;
    expect_error(fixture_file(o), "page declares 2147483647 uncompressed bytes");
  }
  for (int version : {1, 2}) {
    WriterOptions o;
    o.page_version = version;
    o.page_values_lie = 1000000000;
    expect_error(fixture_file(o), "page declares 1000000000 values but the column chunk has 40 left");
  }
  {
    WriterOptions o;
    o.dictionary = true;
    o.dict_values_lie = 0x7fffffff;
    expect_error(fixture_file(o), "too few for 2147483647", {"f"});
    expect_error(fixture_file(o), "PLAIN BYTE_ARRAY values are truncated", {"s"});
  }
  {
    WriterOptions o;
    o.dictionary = true;
    o.dict_values_lie = 1;  // indices beyond the first entry point past the dictionary
    expect_error(fixture_file(o), "is out of range (dictionary has 1 entries)", {"i"});
  }
  {
    WriterOptions o;
    o.chunk_offset_lie = 1LL << 40;
    expect_error(fixture_file(o), "lies outside the file's data");
  }
  {
    WriterOptions o;
    o.chunk_size_lie = 1LL << 40;
    expect_error(fixture_file(o), "lies outside the file's data");
  }
  {
    // A footer whose schema list claims 2^30 elements in a few bytes.
    test::ThriftWriter w;
    w.top_begin();
    w.i32(1, 1);
    w.list_begin(2, test::kTStruct, 1u << 30);
    std::string file = "PAR1" + w.out;
    test::put_u32(file, static_cast<uint32_t>(w.out.size()));
    expect_error(file + "PAR1", "list of 1073741824 elements runs past the end");
  }
  {
    // 300,000 one-byte column chunks: cheap on disk, hundreds of bytes each in memory.
    test::ThriftWriter w;
    w.top_begin();
    w.i32(1, 1);
    w.list_begin(4, test::kTStruct, 1);
    w.elem_struct_begin();
    w.list_begin(1, test::kTStruct, 300000);
    w.out += std::string(300000, '\0');
    std::string file = "PAR1" + w.out;
    test::put_u32(file, static_cast<uint32_t>(w.out.size()));
    expect_error(file + "PAR1", "more than 200000 column chunks");
  }
  {
    // Footer over the configured limit.
    std::string file = fixture_file({});
    ParquetLimits l = small_limits();
    l.max_footer_bytes = 10;
    try {
      parse_parquet(file, "h.parquet", {"f"}, l);
      ADD_FAILURE() << "accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("over the limit of 10"), std::string::npos) << e.what();
    }
  }
}

TEST(HostileParquet, CorruptCompressedPages) {
  for (int32_t codec : {test::kCodecSnappy, test::kCodecGzip, test::kCodecZstd}) {
    WriterOptions o;
    o.codec = codec;
    std::string file = fixture_file(o);
    // Find the first data page of column "f" (right after the magic) and zero its body's
    // middle: the page header is short, so bytes 30..45 are compressed data.
    std::string m = file;
    for (size_t k = 30; k < 46; ++k) m[k] = '\0';
    std::string msg = outcome(m, {"f"});
    EXPECT_NE(msg, "") << codec;
  }
  {
    WriterOptions o;
    o.codec = test::kCodecGzip;
    o.page_uncompressed_lie = 10;  // the real data inflates to more
    expect_error(fixture_file(o), "GZIP data decompresses to more than the 10 bytes");
  }
  {
    WriterOptions o;
    o.codec = test::kCodecSnappy;
    o.page_uncompressed_lie = 10;
    expect_error(fixture_file(o), "SNAPPY data decompresses to");
  }
  {
    WriterOptions o;
    o.codec = test::kCodecZstd;
    o.page_uncompressed_lie = 10;
    expect_error(fixture_file(o), "ZSTD data decompresses to");
  }
}

TEST(HostileParquet, RealFilesTruncatedAndMutated) {
  TINYQ_REQUIRE_SHARED();
  const std::vector<std::string> cols = {"adm2", "motion2", "vmaf", "clip", "frame"};
  uint64_t state = 5;
  auto next = [&] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return state >> 33;
  };
  for (const char* name : {"features_plain.parquet", "features_snappy.parquet", "features_zstd.parquet"}) {
    std::ifstream in(test::shared_dir() + "/data/" + name, std::ios::binary);
    std::string file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ASSERT_GT(file.size(), 1000u);
    ASSERT_EQ(outcome(file, cols), "");
    for (size_t k = 0; k < 64; ++k) EXPECT_NE(outcome(file.substr(0, file.size() * k / 64), cols), "") << name << k;
    // Mutations in the footer (where counts and offsets live) and anywhere.
    const size_t footer = file.size() - 8 - (static_cast<uint8_t>(file[file.size() - 8]) |
                                             static_cast<uint8_t>(file[file.size() - 7]) << 8);
    for (int trial = 0; trial < 150; ++trial) {
      std::string m = file;
      size_t at = trial % 2 ? footer + next() % (file.size() - 8 - footer) : next() % file.size();
      m[at] = static_cast<char>(next());
      outcome(m, cols);  // any tinyq::Error or a clean decode is fine
    }
  }
}

TEST(HostileParquet, ReadFromDiskNamesThePath) {
  std::string dir = test::temp_dir();
  try {
    read_parquet(dir + "/missing.parquet", {"a"});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.message(), dir + "/missing.parquet: no such file");
  }
  std::string path = dir + "/t.parquet";
  std::string file = fixture_file({});
  std::ofstream(path, std::ios::binary).write(file.data(), static_cast<std::streamsize>(file.size()));
  FeatureTable t = read_parquet(path, {"i"});
  EXPECT_EQ(t.columns[0].values.data<int64_t>()[3], 3 * 1000003LL);
  std::ofstream(path, std::ios::binary).write(file.data(), 100);
  try {
    read_parquet(path, {"i"});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.subject(), path);
  }
  try {
    read_parquet(dir, {"i"});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.message(), dir + ": not a regular file");
  }
}

}  // namespace
}  // namespace tinyq
