// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// A minimal Apache Parquet *writer* for tests: the generator of every crafted Parquet fixture in
// tests/calib (nulls, dictionary pages, data page v2, GZIP, BOOLEAN/INT32, nested schemas, and
// hostile variants). Written from the format spec independently of the reader in src/calib, so
// the two check each other; the real pyarrow files in ../shared/data check both.

#include <snappy.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace tinyq::test {

// ----- Thrift compact protocol writer --------------------------------------------------------

enum : uint8_t { kTBoolTrue = 1, kTBoolFalse = 2, kTByte = 3, kTI16 = 4, kTI32 = 5, kTI64 = 6, kTDouble = 7,
                 kTBinary = 8, kTList = 9, kTSet = 10, kTMap = 11, kTStruct = 12 };

class ThriftWriter {
 public:
  std::string out;

  void varint(uint64_t v) {
    while (v >= 0x80) {
      out += static_cast<char>((v & 0x7f) | 0x80);
      v >>= 7;
    }
    out += static_cast<char>(v);
  }
  static uint64_t zigzag(int64_t v) { return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63); }

  void field_header(int16_t id, uint8_t type) {
    int delta = id - last_;
    if (delta > 0 && delta <= 15) {
      out += static_cast<char>((delta << 4) | type);
    } else {
      out += static_cast<char>(type);
      varint(zigzag(id));
    }
    last_ = id;
  }
  void i32(int16_t id, int32_t v) { field_header(id, kTI32); varint(zigzag(v)); }
  void i64(int16_t id, int64_t v) { field_header(id, kTI64); varint(zigzag(v)); }
  void binary(int16_t id, const std::string& s) { field_header(id, kTBinary); varint(s.size()); out += s; }
  void boolean(int16_t id, bool v) { field_header(id, v ? kTBoolTrue : kTBoolFalse); }
  void struct_begin(int16_t id) { field_header(id, kTStruct); push(); }
  void struct_end() { out += '\0'; pop(); }
  void list_begin(int16_t id, uint8_t elem, uint32_t size) { field_header(id, kTList); list_header(elem, size); }
  void list_header(uint8_t elem, uint32_t size) {
    if (size < 15) {
      out += static_cast<char>((size << 4) | elem);
    } else {
      out += static_cast<char>(0xf0 | elem);
      varint(size);
    }
  }
  void elem_i32(int32_t v) { varint(zigzag(v)); }
  void elem_binary(const std::string& s) { varint(s.size()); out += s; }
  /// A struct element of a list.
  void elem_struct_begin() { push(); }
  /// The top-level struct (no field header).
  void top_begin() { push(); }
  void top_end() { struct_end(); }

 private:
  void push() { stack_.push_back(last_); last_ = 0; }
  void pop() { last_ = stack_.back(); stack_.pop_back(); }
  std::vector<int16_t> stack_;
  int16_t last_ = 0;
};

// ----- RLE / bit-packed hybrid encoder -------------------------------------------------------

/// style 0: bit-packed groups only (padded); style 1: RLE runs only.
inline std::string encode_hybrid(const std::vector<uint32_t>& v, int bit_width, int style) {
  ThriftWriter w;  // for its varint
  if (style == 1) {
    size_t i = 0;
    const int vb = (bit_width + 7) / 8;
    while (i < v.size()) {
      size_t j = i;
      while (j < v.size() && v[j] == v[i]) ++j;
      w.varint(static_cast<uint64_t>(j - i) << 1);
      for (int b = 0; b < vb; ++b) w.out += static_cast<char>((v[i] >> (8 * b)) & 0xff);
      i = j;
    }
    return w.out;
  }
  if (v.empty()) return w.out;
  size_t groups = (v.size() + 7) / 8;
  w.varint((static_cast<uint64_t>(groups) << 1) | 1);
  std::string packed(groups * static_cast<size_t>(bit_width), '\0');
  uint64_t bit = 0;
  for (size_t i = 0; i < groups * 8; ++i) {
    uint32_t x = i < v.size() ? v[i] : 0;
    for (int b = 0; b < bit_width; ++b, ++bit)
      if ((x >> b) & 1) packed[bit / 8] = static_cast<char>(packed[bit / 8] | (1 << (bit % 8)));
  }
  w.out += packed;
  return w.out;
}

// ----- Parquet file writer --------------------------------------------------------------------

enum : int32_t { kPBoolean = 0, kPInt32 = 1, kPInt64 = 2, kPInt96 = 3, kPFloat = 4, kPDouble = 5, kPByteArray = 6,
                 kPFixed = 7 };
enum : int32_t { kCodecNone = 0, kCodecSnappy = 1, kCodecGzip = 2, kCodecBrotli = 4, kCodecZstd = 6 };

struct TestColumn {
  std::string name;
  int32_t type = kPFloat;
  bool optional = true;
  std::string group;                 ///< non-empty: the leaf sits inside this group (nested)
  bool repeated = false;             ///< a repeated leaf (a list without a group)
  int32_t converted_type = -1;       ///< SchemaElement.converted_type, -1 = absent
  std::vector<std::string> raw;      ///< PLAIN bytes of each row's value ("" for nulls)
  std::vector<bool> null;            ///< per row

  template <typename T>
  static TestColumn numbers(const std::string& name, int32_t type, const std::vector<T>& values,
                            const std::vector<bool>& nulls = {}) {
    TestColumn c;
    c.name = name;
    c.type = type;
    for (size_t i = 0; i < values.size(); ++i) {
      bool is_null = i < nulls.size() && nulls[i];
      c.null.push_back(is_null);
      c.raw.push_back(is_null ? std::string() : std::string(reinterpret_cast<const char*>(&values[i]), sizeof(T)));
    }
    return c;
  }
  static TestColumn bools(const std::string& name, const std::vector<bool>& values) {
    TestColumn c;
    c.name = name;
    c.type = kPBoolean;
    for (bool b : values) {
      c.null.push_back(false);
      c.raw.push_back(std::string(1, b ? '\1' : '\0'));
    }
    return c;
  }
  static TestColumn strings(const std::string& name, const std::vector<std::string>& values) {
    TestColumn c;
    c.name = name;
    c.type = kPByteArray;
    for (const auto& s : values) {
      c.null.push_back(false);
      uint32_t n = static_cast<uint32_t>(s.size());
      c.raw.push_back(std::string(reinterpret_cast<const char*>(&n), 4) + s);
    }
    return c;
  }
};

struct WriterOptions {
  int page_version = 1;          ///< 1 or 2
  bool dictionary = false;       ///< dictionary page + RLE_DICTIONARY data pages
  int32_t dict_data_encoding = 8;  ///< 8 RLE_DICTIONARY or 2 PLAIN_DICTIONARY
  bool byte_stream_split = false;  ///< BYTE_STREAM_SPLIT instead of PLAIN for fixed-width numbers
  int32_t encoding_lie = -1;       ///< data page encoding override
  int32_t codec = kCodecNone;
  size_t rows_per_group = 0;     ///< 0 = one row group
  size_t rows_per_page = 0;      ///< 0 = one page per chunk
  int level_style = 0;           ///< definition levels: 0 bit-packed, 1 RLE
  int index_style = 1;           ///< dictionary indices: 0 bit-packed, 1 RLE
  int64_t declared_rows = -1;    ///< FileMetaData.num_rows override
  // Lies for hostile-file tests (-1 = tell the truth).
  int64_t page_uncompressed_lie = -1;  ///< uncompressed_page_size of data pages
  int64_t page_values_lie = -1;        ///< num_values of data pages
  int64_t dict_values_lie = -1;        ///< num_values of dictionary pages
  int64_t chunk_offset_lie = -1;       ///< ColumnMetaData.data_page_offset
  int64_t chunk_size_lie = -1;         ///< ColumnMetaData.total_compressed_size
};

inline std::string compress(int32_t codec, const std::string& in) {
  switch (codec) {
    case kCodecNone: return in;
    case kCodecSnappy: {
      std::string out;
      snappy::Compress(in.data(), in.size(), &out);
      return out;
    }
    case kCodecGzip: {
      z_stream zs{};
      if (deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) throw std::runtime_error("zlib");
      std::string out(deflateBound(&zs, in.size()) + 32, '\0');
      zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
      zs.avail_in = static_cast<uInt>(in.size());
      zs.next_out = reinterpret_cast<Bytef*>(out.data());
      zs.avail_out = static_cast<uInt>(out.size());
      if (deflate(&zs, Z_FINISH) != Z_STREAM_END) throw std::runtime_error("deflate");
      out.resize(zs.total_out);
      deflateEnd(&zs);
      return out;
    }
    case kCodecZstd: {
      std::string out(ZSTD_compressBound(in.size()), '\0');
      size_t n = ZSTD_compress(out.data(), out.size(), in.data(), in.size(), 3);
      if (ZSTD_isError(n)) throw std::runtime_error("zstd");
      out.resize(n);
      return out;
    }
    default: break;
  }
  return in;  // unsupported codecs: store the bytes and label them (the reader must refuse)
}

inline void put_u32(std::string& s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s += static_cast<char>((v >> (8 * i)) & 0xff);
}

/// PLAIN encoding of some values of a column (BOOLEAN bit-packed, others concatenated).
inline std::string plain_values(const TestColumn& c, const std::vector<std::string>& vals) {
  if (c.type != kPBoolean) {
    std::string s;
    for (const auto& v : vals) s += v;
    return s;
  }
  std::string s((vals.size() + 7) / 8, '\0');
  for (size_t i = 0; i < vals.size(); ++i)
    if (vals[i][0]) s[i / 8] = static_cast<char>(s[i / 8] | (1 << (i % 8)));
  return s;
}

struct ChunkInfo {
  int64_t data_offset = 0, dict_offset = -1, total = 0, total_uncompressed = 0, num_values = 0;
};

inline std::string page_header(int32_t type, size_t uncompressed, size_t compressed, const std::string& sub,
                               int16_t sub_id) {
  ThriftWriter w;
  w.top_begin();
  w.i32(1, type);
  w.i32(2, static_cast<int32_t>(uncompressed));
  w.i32(3, static_cast<int32_t>(compressed));
  w.struct_begin(sub_id);
  w.out += sub;
  w.struct_end();
  w.top_end();
  return w.out;
}

/// Writes one column chunk for rows [r0, r1) at the end of `file`.
inline ChunkInfo write_chunk(std::string& file, const TestColumn& c, size_t r0, size_t r1, const WriterOptions& o) {
  ChunkInfo info;
  const size_t start = file.size();
  info.num_values = static_cast<int64_t>(r1 - r0);
  std::map<std::string, uint32_t> dict_index;
  std::vector<std::string> dict;
  if (o.dictionary) {
    for (size_t r = r0; r < r1; ++r) {
      if (c.null[r]) continue;
      if (dict_index.emplace(c.raw[r], static_cast<uint32_t>(dict.size())).second) dict.push_back(c.raw[r]);
    }
    std::string body = plain_values(c, dict);
    std::string comp = compress(o.codec, body);
    ThriftWriter sub;
    sub.i32(1, static_cast<int32_t>(o.dict_values_lie >= 0 ? o.dict_values_lie : static_cast<int64_t>(dict.size())));
    sub.i32(2, 0);  // PLAIN
    info.dict_offset = static_cast<int64_t>(file.size());
    file += page_header(2, body.size(), comp.size(), sub.out, 7);
    file += comp;
    info.total_uncompressed += static_cast<int64_t>(body.size());
  }
  info.data_offset = static_cast<int64_t>(file.size());
  const size_t per_page = o.rows_per_page ? o.rows_per_page : (r1 - r0);
  for (size_t p0 = r0; p0 < r1 || (p0 == r0 && r0 == r1); p0 += per_page) {
    size_t p1 = std::min(r1, p0 + per_page);
    std::vector<uint32_t> levels;
    std::vector<std::string> vals;
    int32_t nulls = 0;
    for (size_t r = p0; r < p1; ++r) {
      levels.push_back(c.null[r] ? 0 : 1);
      nulls += c.null[r] ? 1 : 0;
      if (!c.null[r]) vals.push_back(c.raw[r]);
    }
    std::string values;
    int32_t encoding = 0;
    if (o.dictionary) {
      encoding = o.dict_data_encoding;
      std::vector<uint32_t> idx;
      for (const auto& v : vals) idx.push_back(dict_index.at(v));
      int bw = 0;
      while ((1u << bw) < dict.size()) ++bw;
      values = std::string(1, static_cast<char>(bw)) + encode_hybrid(idx, bw, o.index_style);
    } else if (o.byte_stream_split && c.type != kPBoolean && c.type != kPByteArray) {
      encoding = 9;
      const size_t es = vals.empty() ? 0 : vals[0].size();
      values.assign(es * vals.size(), '\0');
      for (size_t i = 0; i < vals.size(); ++i)
        for (size_t k = 0; k < es; ++k) values[k * vals.size() + i] = vals[i][k];
    } else {
      values = plain_values(c, vals);
    }
    if (o.encoding_lie >= 0) encoding = o.encoding_lie;
    std::string def = c.optional ? encode_hybrid(levels, 1, o.level_style) : std::string();
    const auto n = static_cast<int32_t>(o.page_values_lie >= 0 ? o.page_values_lie : static_cast<int64_t>(p1 - p0));
    auto declared = [&](size_t truth) {
      return o.page_uncompressed_lie >= 0 ? static_cast<size_t>(o.page_uncompressed_lie) : truth;
    };
    if (o.page_version == 1) {
      std::string body;
      if (c.optional) {
        put_u32(body, static_cast<uint32_t>(def.size()));
        body += def;
      }
      body += values;
      std::string comp = compress(o.codec, body);
      ThriftWriter sub;
      sub.i32(1, n);
      sub.i32(2, encoding);
      sub.i32(3, 3);  // RLE
      sub.i32(4, 3);
      file += page_header(0, declared(body.size()), comp.size(), sub.out, 5);
      file += comp;
      info.total_uncompressed += static_cast<int64_t>(body.size());
    } else {
      std::string comp = compress(o.codec, values);
      ThriftWriter sub;
      sub.i32(1, n);
      sub.i32(2, nulls);
      sub.i32(3, n);
      sub.i32(4, encoding);
      sub.i32(5, static_cast<int32_t>(def.size()));
      sub.i32(6, 0);
      if (o.codec == kCodecNone) sub.boolean(7, false);
      file += page_header(3, declared(def.size() + values.size()), def.size() + comp.size(), sub.out, 8);
      file += def + comp;
      info.total_uncompressed += static_cast<int64_t>(def.size() + values.size());
    }
    if (p1 == r1) break;
  }
  info.total = static_cast<int64_t>(file.size() - start);
  return info;
}

/// A whole Parquet file holding `columns` (all the same length).
inline std::string write_parquet(const std::vector<TestColumn>& columns, const WriterOptions& o = {}) {
  const size_t rows = columns.empty() ? 0 : columns[0].raw.size();
  std::string file = "PAR1";
  const size_t per_group = o.rows_per_group ? o.rows_per_group : (rows ? rows : 1);
  std::vector<std::vector<ChunkInfo>> groups;
  std::vector<size_t> group_rows;
  for (size_t g0 = 0; g0 < rows || (g0 == 0 && rows == 0); g0 += per_group) {
    size_t g1 = std::min(rows, g0 + per_group);
    std::vector<ChunkInfo> chunks;
    for (const auto& c : columns) chunks.push_back(write_chunk(file, c, g0, g1, o));
    groups.push_back(chunks);
    group_rows.push_back(g1 - g0);
    if (g1 == rows) break;
  }
  ThriftWriter w;
  w.top_begin();
  w.i32(1, 1);
  // Schema: root, then each column (a group column adds its group element first).
  uint32_t elements = 1;
  for (const auto& c : columns) elements += c.group.empty() ? 1 : 2;
  w.list_begin(2, kTStruct, elements);
  w.elem_struct_begin();
  w.binary(4, "schema");
  w.i32(5, static_cast<int32_t>(columns.size()));
  w.struct_end();
  for (const auto& c : columns) {
    if (!c.group.empty()) {
      w.elem_struct_begin();
      w.i32(3, 1);
      w.binary(4, c.group);
      w.i32(5, 1);
      w.struct_end();
    }
    w.elem_struct_begin();
    w.i32(1, c.type);
    w.i32(3, c.repeated ? 2 : (c.optional ? 1 : 0));
    w.binary(4, c.name);
    if (c.converted_type >= 0) w.i32(6, c.converted_type);
    w.struct_end();
  }
  w.i64(3, o.declared_rows >= 0 ? o.declared_rows : static_cast<int64_t>(rows));
  w.list_begin(4, kTStruct, static_cast<uint32_t>(groups.size()));
  for (size_t g = 0; g < groups.size(); ++g) {
    w.elem_struct_begin();
    w.list_begin(1, kTStruct, static_cast<uint32_t>(columns.size()));
    int64_t total = 0;
    for (size_t k = 0; k < columns.size(); ++k) {
      const ChunkInfo& ci = groups[g][k];
      const TestColumn& c = columns[k];
      total += ci.total_uncompressed;
      w.elem_struct_begin();
      w.i64(2, ci.dict_offset >= 0 ? ci.dict_offset : ci.data_offset);
      w.struct_begin(3);
      w.i32(1, c.type);
      w.list_begin(2, kTI32, o.dictionary ? 3 : 2);
      w.elem_i32(o.dictionary ? 8 : 0);
      w.elem_i32(3);
      if (o.dictionary) w.elem_i32(0);
      if (c.group.empty()) {
        w.list_begin(3, kTBinary, 1);
        w.elem_binary(c.name);
      } else {
        w.list_begin(3, kTBinary, 2);
        w.elem_binary(c.group);
        w.elem_binary(c.name);
      }
      w.i32(4, o.codec);
      w.i64(5, ci.num_values);
      w.i64(6, ci.total_uncompressed);
      w.i64(7, o.chunk_size_lie >= 0 ? o.chunk_size_lie : ci.total);
      w.i64(9, o.chunk_offset_lie >= 0 ? o.chunk_offset_lie : ci.data_offset);
      if (ci.dict_offset >= 0) w.i64(11, ci.dict_offset);
      w.struct_end();  // ColumnMetaData
      w.struct_end();  // ColumnChunk
    }
    w.i64(2, total);
    w.i64(3, static_cast<int64_t>(group_rows[g]));
    w.struct_end();  // RowGroup
  }
  w.binary(6, "tinyq test writer");
  w.top_end();
  file += w.out;
  put_u32(file, static_cast<uint32_t>(w.out.size()));
  file += "PAR1";
  return file;
}

}  // namespace tinyq::test
