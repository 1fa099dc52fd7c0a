// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// Unit tests of the two low-level decoders under the Parquet reader, on hand-made byte strings:
// the Thrift compact protocol reader and the RLE / bit-packed hybrid decoder.

#include <gtest/gtest.h>

#include <deque>

#include "calib/parquet_meta.h"
#include "calib/rle_hybrid.h"
#include "calib/thrift_compact.h"
#include "parquet_writer.h"
#include "tinyq/error.h"

namespace tinyq::calib {
namespace {

std::string bytes(std::initializer_list<int> v) {
  std::string s;
  for (int b : v) s += static_cast<char>(b);
  return s;
}

/// A reader over a copy of `s` kept alive for the rest of the test program (callers pass
/// temporaries, and the reader only points at its bytes).
ThriftCompactReader reader(const std::string& s) {
  static std::deque<std::string> keep;
  keep.push_back(s);
  return ThriftCompactReader(reinterpret_cast<const uint8_t*>(keep.back().data()), keep.back().size(), "t.bin");
}

// { 1: i32 -3, 2: i64 300, 4: binary "ab", 5: bool true, 20: i32 1 (long-form id), 21: double 1.5 }
const std::string kStruct = bytes({0x15, 0x05,                   // delta 1, i32, zigzag(-3) = 5
                                   0x16, 0xd8, 0x04,             // delta 1, i64, zigzag(300) = 600
                                   0x28, 0x02, 'a', 'b',         // delta 2, binary, length 2
                                   0x11,                         // delta 1, bool true
                                   0x05, 0x28, 0x02,             // i32, id zigzag(20) = 40, value 1
                                   0x17, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f,  // delta 1, double 1.5 (LE)
                                   0x00});

TEST(ThriftCompact, DecodesFieldsOfEveryScalarType) {
  auto in = reader(kStruct);
  in.struct_begin();
  ThriftField f;
  ASSERT_TRUE(in.next_field(f));
  EXPECT_EQ(f.id, 1);
  EXPECT_EQ(in.read_i32(), -3);
  ASSERT_TRUE(in.next_field(f));
  EXPECT_EQ(f.id, 2);
  EXPECT_EQ(f.type, ThriftType::I64);
  EXPECT_EQ(in.read_i64(), 300);
  ASSERT_TRUE(in.next_field(f));
  EXPECT_EQ(f.id, 4);
  EXPECT_EQ(in.read_binary(100), "ab");
  ASSERT_TRUE(in.next_field(f));
  EXPECT_EQ(f.id, 5);
  EXPECT_TRUE(in.field_bool(f));
  ASSERT_TRUE(in.next_field(f));
  EXPECT_EQ(f.id, 20);
  EXPECT_EQ(in.read_i32(), 1);
  ASSERT_TRUE(in.next_field(f));
  EXPECT_EQ(f.id, 21);
  EXPECT_EQ(in.read_double(), 1.5);
  EXPECT_FALSE(in.next_field(f));
  in.struct_end();
  EXPECT_EQ(in.remaining(), 0u);
}

TEST(ThriftCompact, ZigzagAndVarintExtremes) {
  EXPECT_EQ(zigzag_decode(0), 0);
  EXPECT_EQ(zigzag_decode(1), -1);
  EXPECT_EQ(zigzag_decode(2), 1);
  EXPECT_EQ(zigzag_decode(~0ull), INT64_MIN);
  EXPECT_EQ(zigzag_decode(~0ull - 1), INT64_MAX);
  // INT64_MIN: zigzag all ones, 10 varint bytes.
  auto in = reader(bytes({0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}));
  EXPECT_EQ(in.read_i64(), INT64_MIN);
  // An 11-byte varint and a 10th byte with more than one bit are refused.
  auto bad = reader(bytes({0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}));
  EXPECT_THROW(bad.read_i64(), Error);
  auto big32 = reader(bytes({0x80, 0x80, 0x80, 0x80, 0x10}));  // zigzag 2^32 -> 2^31, over i32
  EXPECT_THROW(big32.read_i32(), Error);
}

TEST(ThriftCompact, ListsShortAndLong) {
  test::ThriftWriter w;
  w.list_header(test::kTI32, 3);
  for (int v : {7, -8, 9}) w.elem_i32(v);
  w.list_header(test::kTBinary, 20);
  for (int i = 0; i < 20; ++i) w.elem_binary(std::string(static_cast<size_t>(i), 'x'));
  auto in = reader(w.out);
  ThriftList a = in.read_list_header();
  EXPECT_EQ(a.element, ThriftType::I32);
  ASSERT_EQ(a.size, 3u);
  EXPECT_EQ(in.read_i32(), 7);
  EXPECT_EQ(in.read_i32(), -8);
  EXPECT_EQ(in.read_i32(), 9);
  ThriftList b = in.read_list_header();
  ASSERT_EQ(b.size, 20u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(in.read_binary(100).size(), static_cast<size_t>(i));
  EXPECT_EQ(in.remaining(), 0u);
}

TEST(ThriftCompact, SkipsUnknownNestedValues) {
  // { 1: struct { 1: list<list<i32>> [[1,2]], 2: map<binary,bool> {"k": true}, 3: set<bool> [true] },
  //   2: i32 42 }
  std::string s = bytes({0x1c,                    // field 1, struct
                         0x19, 0x19, 0x25, 0x02, 0x04,  // field 1 list of 1 list; inner: 2 x i32 (1, 2)
                         0x1b, 0x01, 0x81, 0x01, 'k', 0x01,  // field 2 map, 1 entry, binary->bool: "k", true
                         0x1a, 0x11, 0x01,         // field 3 set of 1 bool
                         0x00,                     // end of inner struct
                         0x15, 0x54,               // field 2 i32 42
                         0x00});
  auto in = reader(s);
  in.struct_begin();
  ThriftField f;
  ASSERT_TRUE(in.next_field(f));
  in.skip(f.type);
  ASSERT_TRUE(in.next_field(f));
  EXPECT_EQ(f.id, 2);
  EXPECT_EQ(in.read_i32(), 42);
  EXPECT_FALSE(in.next_field(f));
}

TEST(ThriftCompact, EveryTruncationIsAnError) {
  for (size_t n = 0; n < kStruct.size(); ++n) {
    auto in = reader(kStruct.substr(0, n));
    EXPECT_THROW(in.skip(ThriftType::Struct), Error) << "prefix " << n;
  }
  auto in = reader(kStruct);
  EXPECT_NO_THROW(in.skip(ThriftType::Struct));
}

TEST(ThriftCompact, DeclaredSizesAreBoundedByTheBytesLeft) {
  auto list = reader(bytes({0xf5, 0x80, 0x80, 0x80, 0x80, 0x08, 0x00}));  // list of 2^31 i32 in 1 byte
  try {
    list.read_list_header();
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.subject(), "t.bin");
    EXPECT_NE(std::string(e.what()).find("runs past the end"), std::string::npos) << e.what();
  }
  auto bin = reader(bytes({0xff, 0xff, 0xff, 0xff, 0x0f, 'a'}));  // binary of 2^32 - 1 bytes
  EXPECT_THROW(bin.read_binary(SIZE_MAX), Error);
  auto capped = reader(bytes({0x03, 'a', 'b', 'c'}));
  EXPECT_THROW(capped.read_binary(2), Error);
  auto map = reader(bytes({0xff, 0xff, 0x03, 0x55, 0x00}));  // map of 65535 entries in 2 bytes
  EXPECT_THROW(map.skip(ThriftType::Map), Error);
}

TEST(ThriftCompact, NestingIsCapped) {
  std::string deep(200, static_cast<char>(0x1c));  // field 1, struct, 200 deep
  auto in = reader(deep + std::string(200, '\0'));
  EXPECT_THROW(in.skip(ThriftType::Struct), Error);
  std::string lists(200, static_cast<char>(0x19));  // list of 1 list of 1 list ...
  auto in2 = reader(lists);
  EXPECT_THROW(in2.skip(ThriftType::List), Error);
}

TEST(ThriftCompact, BadTypesRefused) {
  auto f = reader(bytes({0x1d}));  // type 13 does not exist
  f.struct_begin();
  ThriftField fld;
  EXPECT_THROW(f.next_field(fld), Error);
  auto t = reader(bytes({0x18, 0x01, 'x', 0x00}));  // field 1 binary where an i32 is expected
  t.struct_begin();
  ASSERT_TRUE(t.next_field(fld));
  EXPECT_THROW(t.expect_type(fld, ThriftType::I32, "X.y"), Error);
}

TEST(ParquetMetadata, MissingRequiredFieldsNamed) {
  test::ThriftWriter w;
  w.top_begin();
  w.i32(1, 1);
  w.i64(3, 0);
  w.top_end();
  auto in = reader(w.out);
  try {
    decode_file_metadata(in, ParquetLimits{});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("FileMetaData lacks its required field schema"), std::string::npos) << e.what();
  }
}

TEST(ParquetMetadata, SchemaAndRowGroupCountsLimited) {
  test::ThriftWriter w;
  w.top_begin();
  w.i32(1, 1);
  w.list_begin(2, test::kTStruct, 5);
  for (int i = 0; i < 5; ++i) {
    w.elem_struct_begin();
    w.binary(4, "c" + std::to_string(i));
    w.struct_end();
  }
  w.top_end();
  ParquetLimits lim;
  lim.max_schema_elements = 4;
  auto in = reader(w.out);
  EXPECT_THROW(decode_file_metadata(in, lim), Error);
}

// ----- RLE / bit-packed hybrid --------------------------------------------------------------

std::vector<uint32_t> rle(const std::string& s, int width, size_t count) {
  std::vector<uint32_t> out(count);
  RleHybridDecoder d(reinterpret_cast<const uint8_t*>(s.data()), s.size(), width, "t.bin", "levels");
  d.decode(out.data(), count);
  return out;
}

TEST(RleHybrid, SpecExampleBitPacked) {
  // parquet-format Encodings.md: 0..7 with bit width 3 packs to 10001000 11000110 11111010.
  EXPECT_EQ(rle(bytes({0x03, 0x88, 0xc6, 0xfa}), 3, 8), (std::vector<uint32_t>{0, 1, 2, 3, 4, 5, 6, 7}));
}

TEST(RleHybrid, RleRunsAndMixedRuns) {
  EXPECT_EQ(rle(bytes({0x0a, 0x04}), 3, 5), std::vector<uint32_t>(5, 4));
  // RLE 3 x 1, then one bit-packed group 10110000 (LSB first), then RLE 2 x 0.
  EXPECT_EQ(rle(bytes({0x06, 0x01, 0x03, 0x0d, 0x04, 0x00}), 1, 13),
            (std::vector<uint32_t>{1, 1, 1, 1, 0, 1, 1, 0, 0, 0, 0, 0, 0}));
  // Bit width 0: runs carry no value bytes.
  EXPECT_EQ(rle(bytes({0x14}), 0, 10), std::vector<uint32_t>(10, 0));
  // Bit width 32: a 4-byte RLE value.
  EXPECT_EQ(rle(bytes({0x04, 0xef, 0xbe, 0xad, 0xde}), 32, 2), std::vector<uint32_t>(2, 0xdeadbeefu));
  // A run longer than needed is cut; decoding continues across calls.
  std::string s = bytes({0x0a, 0x02, 0x04, 0x03});
  RleHybridDecoder d(reinterpret_cast<const uint8_t*>(s.data()), s.size(), 2, "t", "x");
  uint32_t a[3], b[4];
  d.decode(a, 3);
  d.decode(b, 4);
  EXPECT_EQ(std::vector<uint32_t>(a, a + 3), std::vector<uint32_t>(3, 2));
  EXPECT_EQ(std::vector<uint32_t>(b, b + 4), (std::vector<uint32_t>{2, 2, 3, 3}));
}

TEST(RleHybrid, AgreesWithTheTestEncoderForEveryWidth) {
  uint64_t state = 7;
  for (int width = 0; width <= 32; ++width) {
    std::vector<uint32_t> v;
    for (int i = 0; i < 45; ++i) {
      state = state * 6364136223846793005ull + 1;
      uint32_t x = static_cast<uint32_t>(state >> 29);
      if (width < 32) x &= (1u << width) - 1;
      if (i % 9 < 4 && !v.empty()) x = v.back();  // some runs
      v.push_back(x);
    }
    for (int style : {0, 1}) EXPECT_EQ(rle(test::encode_hybrid(v, width, style), width, v.size()), v) << width;
  }
}

TEST(RleHybrid, TruncatedAndInvalidStreams) {
  EXPECT_THROW(rle(bytes({0x0a, 0x04}), 3, 6), Error);             // 5 values, 6 asked
  EXPECT_THROW(rle(bytes({0x0a}), 3, 1), Error);                   // run value missing
  EXPECT_THROW(rle(bytes({0x04, 0x02}), 1, 2), Error);             // value 2 does not fit 1 bit
  EXPECT_THROW(rle(bytes({0x80, 0x80, 0x80, 0x80, 0x80, 0x01}), 1, 1), Error);  // header varint too long
  EXPECT_THROW(rle(bytes({0x03}), 3, 1), Error);                   // packed group with no bytes
  EXPECT_THROW(rle(bytes({}), 1, 1), Error);
  // A final group may lack its padding bytes when the values it needs are there: 5 x 3 bits
  // fit in the 2 bytes present, 6 do not.
  EXPECT_EQ(rle(bytes({0x03, 0x88, 0xc6}), 3, 5), (std::vector<uint32_t>{0, 1, 2, 3, 4}));
  EXPECT_THROW(rle(bytes({0x03, 0x88, 0xc6}), 3, 6), Error);
  EXPECT_THROW(RleHybridDecoder(nullptr, 0, 33, "t", "x"), Error);
  // A run declaring 2^31 values decodes only what is asked.
  EXPECT_EQ(rle(bytes({0xfe, 0xff, 0xff, 0xff, 0x0f, 0x01}), 1, 3), std::vector<uint32_t>(3, 1));
}

TEST(RleHybrid, BitWidthFor) {
  EXPECT_EQ(bit_width_for(0), 0);
  EXPECT_EQ(bit_width_for(1), 1);
  EXPECT_EQ(bit_width_for(2), 2);
  EXPECT_EQ(bit_width_for(3), 2);
  EXPECT_EQ(bit_width_for(4), 3);
  EXPECT_EQ(bit_width_for(0xffffffffu), 32);
}

}  // namespace
}  // namespace tinyq::calib
