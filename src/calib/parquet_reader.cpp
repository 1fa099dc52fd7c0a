// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// Apache Parquet reader for flat feature caches.
//
// File layout:  "PAR1" | column chunks ... | FileMetaData (Thrift compact) | u32 LE footer length | "PAR1"
// Each row group holds one column chunk per leaf of the schema (depth-first order); a chunk is
// an optional dictionary page followed by data pages, each page = PageHeader (Thrift compact)
// + body of compressed_page_size bytes.
//   data page v1 body (after decompression): [rep levels][def levels][values]; levels are
//     u32 LE length + RLE/bit-packed hybrid, present only when the max level is > 0.
//   data page v2 body: rep levels, def levels (both uncompressed, lengths in the header, no
//     length prefix), then the values, compressed unless is_compressed = false.
// A flat column has max repetition level 0 and max definition level 1 when OPTIONAL (level 0
// = null) or 0 when REQUIRED. Values are stored only for non-null rows.
//
// Only the file's tail and the selected columns' chunks are read from disk. Every offset,
// length and count from the file is checked against the bytes that exist and the limits in
// ParquetLimits before anything is allocated.
//
// Value encodings: PLAIN, PLAIN_DICTIONARY / RLE_DICTIONARY (a dictionary page, then indices as
// an RLE/bit-packed hybrid behind a one-byte bit width) and BYTE_STREAM_SPLIT for fixed-width
// numbers. The DELTA_* encodings are refused by name.

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "calib/parquet_codec.h"
#include "calib/parquet_meta.h"
#include "calib/rle_hybrid.h"
#include "calib/thrift_compact.h"
#include "common/file_util.h"
#include "tinyq/calibration.h"
#include "tinyq/error.h"

namespace tinyq {

const char* parquet_type_name(ParquetType type) {
  switch (type) {
    case ParquetType::Boolean: return "BOOLEAN";
    case ParquetType::Int32: return "INT32";
    case ParquetType::Int64: return "INT64";
    case ParquetType::Int96: return "INT96";
    case ParquetType::Float: return "FLOAT";
    case ParquetType::Double: return "DOUBLE";
    case ParquetType::ByteArray: return "BYTE_ARRAY";
    case ParquetType::FixedLenByteArray: return "FIXED_LEN_BYTE_ARRAY";
  }
  return "an unknown type";
}

namespace calib {
namespace {

// ----- where the bytes come from --------------------------------------------------------------

class ByteSource {
 public:
  virtual ~ByteSource() = default;
  virtual uint64_t size() const = 0;
  /// Bytes [offset, offset + n); the caller has checked the range.
  virtual std::string read(uint64_t offset, uint64_t n) const = 0;
};

class MemorySource : public ByteSource {
 public:
  explicit MemorySource(const std::string& bytes) : bytes_(bytes) {}
  uint64_t size() const override { return bytes_.size(); }
  std::string read(uint64_t offset, uint64_t n) const override {
    return bytes_.substr(static_cast<size_t>(offset), static_cast<size_t>(n));
  }

 private:
  const std::string& bytes_;
};

class FileSource : public ByteSource {
 public:
  explicit FileSource(const std::string& path) : file_(path) {}
  uint64_t size() const override { return file_.size(); }
  std::string read(uint64_t offset, uint64_t n) const override {
    std::string out(static_cast<size_t>(n), '\0');
    file_.read_at(offset, out.data(), out.size());
    return out;
  }

 private:
  ReadOnlyFile file_;
};

// ----- footer and schema ----------------------------------------------------------------------

struct TopColumn {
  ParquetColumnInfo info;
  size_t schema_index = 0;
  size_t leaf_index = 0;  ///< index of its column chunk in every row group (flat columns)
};

struct ParsedFile {
  FileMetaData md;
  std::vector<TopColumn> top;
  size_t leaf_count = 0;
  uint64_t data_end = 0;  ///< where the footer starts: chunks must end before it
};

uint32_t load_u32le(const char* p) {
  const auto* u = reinterpret_cast<const uint8_t*>(p);
  return static_cast<uint32_t>(u[0]) | (static_cast<uint32_t>(u[1]) << 8) | (static_cast<uint32_t>(u[2]) << 16) |
         (static_cast<uint32_t>(u[3]) << 24);
}

void build_schema(ParsedFile& pf, const std::string& subject) {
  const auto& schema = pf.md.schema;
  if (schema.empty()) throw Error(subject, "Parquet schema is empty");
  const SchemaElement& root = schema[0];
  size_t i = 1, leaf = 0;
  for (int32_t c = 0; c < root.num_children; ++c) {
    if (i >= schema.size())
      throw Error(subject, "Parquet schema is malformed: the root declares " + std::to_string(root.num_children) +
                               " columns but the schema ends after " + std::to_string(c));
    const SchemaElement& e = schema[i];
    TopColumn top;
    top.info.name = e.name;
    top.schema_index = i;
    top.leaf_index = leaf;
    if (e.num_children > 0) {
      // A group (struct, list or map): walk its subtree only to count the leaves it owns.
      top.info.nested = true;
      int64_t pending = e.num_children;
      ++i;
      while (pending > 0) {
        if (i >= schema.size())
          throw Error(subject, "Parquet schema is malformed: group '" + e.name + "' runs past the end of the schema");
        --pending;
        pending += schema[i].num_children;
        if (schema[i].num_children == 0) ++leaf;
        ++i;
      }
    } else {
      if (!e.has_type) throw Error(subject, "Parquet schema is malformed: column '" + e.name + "' has no type");
      if (e.type < 0 || e.type > static_cast<int32_t>(ParquetType::FixedLenByteArray))
        throw Error(subject, "column '" + e.name + "' has unknown physical type " + std::to_string(e.type));
      top.info.type = static_cast<ParquetType>(e.type);
      top.info.optional = e.has_repetition && e.repetition == kOptional;
      top.info.nested = e.has_repetition && e.repetition == kRepeated;  // a bare repeated field is a list
      ++leaf;
      ++i;
    }
    pf.top.push_back(std::move(top));
  }
  if (i != schema.size())
    throw Error(subject, "Parquet schema is malformed: " + std::to_string(schema.size() - i) +
                             " elements lie outside the root's columns");
  pf.leaf_count = leaf;
}

ParsedFile parse_footer(const ByteSource& src, const std::string& subject, const ParquetLimits& limits) {
  const uint64_t size = src.size();
  if (size < 12) throw Error(subject, "not a Parquet file: " + std::to_string(size) + " bytes is too short");
  std::string head = src.read(0, 4);
  if (head != "PAR1") throw Error(subject, "not a Parquet file (no PAR1 magic at the start)");
  std::string tail = src.read(size - 8, 8);
  if (tail.compare(4, 4, "PARE") == 0)
    throw Error(subject, "Parquet file has an encrypted footer, which tinyq does not read");
  if (tail.compare(4, 4, "PAR1") != 0)
    throw Error(subject, "not a complete Parquet file (no PAR1 magic at the end; truncated?)");
  uint64_t footer_len = load_u32le(tail.data());
  if (footer_len > size - 12)
    throw Error(subject, "Parquet footer length " + std::to_string(footer_len) + " is larger than the file allows");
  if (footer_len > limits.max_footer_bytes)
    throw Error(subject, "Parquet footer of " + std::to_string(footer_len) + " bytes is over the limit of " +
                             std::to_string(limits.max_footer_bytes));
  ParsedFile pf;
  pf.data_end = size - 8 - footer_len;
  std::string footer = src.read(pf.data_end, footer_len);
  ThriftCompactReader in(reinterpret_cast<const uint8_t*>(footer.data()), footer.size(), subject, "Parquet footer");
  pf.md = decode_file_metadata(in, limits);

  if (pf.md.num_rows < 0) throw Error(subject, "Parquet footer declares a negative row count");
  if (static_cast<uint64_t>(pf.md.num_rows) > limits.max_rows)
    throw Error(subject, "Parquet file declares " + std::to_string(pf.md.num_rows) + " rows, over the limit of " +
                             std::to_string(limits.max_rows));
  build_schema(pf, subject);
  int64_t total = 0;
  for (size_t g = 0; g < pf.md.row_groups.size(); ++g) {
    const RowGroup& rg = pf.md.row_groups[g];
    if (rg.num_rows < 0 || rg.num_rows > pf.md.num_rows - total)
      throw Error(subject, "row group " + std::to_string(g) + " declares " + std::to_string(rg.num_rows) +
                               " rows, inconsistent with the file's " + std::to_string(pf.md.num_rows));
    total += rg.num_rows;
    if (rg.columns.size() != pf.leaf_count)
      throw Error(subject, "row group " + std::to_string(g) + " has " + std::to_string(rg.columns.size()) +
                               " column chunks but the schema has " + std::to_string(pf.leaf_count) + " columns");
  }
  if (total != pf.md.num_rows)
    throw Error(subject, "row groups hold " + std::to_string(total) + " rows but the file declares " +
                             std::to_string(pf.md.num_rows));
  return pf;
}

// ----- column decoding ------------------------------------------------------------------------

/// How a column's values are stored in memory while decoding.
struct ColumnKind {
  ParquetType type = ParquetType::Int32;
  DType dtype = DType::Undefined;  ///< Undefined for strings
  size_t stored_size = 0;          ///< bytes per value in the file (PLAIN), 0 for BOOLEAN/BYTE_ARRAY
  size_t out_size = 0;             ///< bytes per value in the output tensor
};

ColumnKind column_kind(const SchemaElement& e, const std::string& subject) {
  ColumnKind k;
  k.type = static_cast<ParquetType>(e.type);
  if ((e.has_converted && e.converted_type == kConvDecimal) || e.logical == kLogicalDecimal)
    throw Error(subject, "column '" + e.name + "' is DECIMAL, which tinyq does not read");
  bool is_unsigned = (e.has_converted && e.converted_type >= kConvUint8 && e.converted_type <= kConvUint64) ||
                     (e.logical == kLogicalInteger && !e.logical_int_signed);
  switch (k.type) {
    case ParquetType::Boolean: k.dtype = DType::Bool; k.out_size = 1; break;
    case ParquetType::Int32: k.dtype = is_unsigned ? DType::U32 : DType::I32; k.stored_size = k.out_size = 4; break;
    case ParquetType::Int64: k.dtype = is_unsigned ? DType::U64 : DType::I64; k.stored_size = k.out_size = 8; break;
    case ParquetType::Float: k.dtype = DType::F32; k.stored_size = k.out_size = 4; break;
    case ParquetType::Double: k.dtype = DType::F64; k.stored_size = k.out_size = 8; break;
    case ParquetType::ByteArray: k.dtype = DType::Undefined; break;
    default:
      throw Error(subject, "column '" + e.name + "' has physical type " + parquet_type_name(k.type) +
                               ", which tinyq does not read");
  }
  return k;
}

/// Decoded non-null values of one page (or a dictionary): fixed-size values packed in `fixed`
/// (out_size bytes each), strings in `strings`.
struct ValueBuffer {
  std::string fixed;
  std::vector<std::string> strings;
  size_t count = 0;
};

class ColumnDecoder {
 public:
  ColumnDecoder(const SchemaElement& e, const ColumnKind& kind, int max_def, const std::string& subject,
                const ParquetLimits& limits)
      : e_(e), kind_(kind), max_def_(max_def), subject_(subject), limits_(limits) {}

  void decode_chunk(const std::string& chunk, int32_t codec, int64_t num_values, const std::string& where);
  FeatureColumn finish();

 private:
  [[noreturn]] void fail(const std::string& where, const std::string& text) const {
    throw Error(subject_, "column '" + e_.name + "', " + where + ": " + text);
  }
  void decode_plain(const uint8_t* p, size_t n, size_t count, ValueBuffer& out, const std::string& where);
  void decode_values(int32_t encoding, const uint8_t* p, size_t n, size_t count, ValueBuffer& out,
                     const std::string& where);
  void append(const std::vector<uint32_t>* def_levels, size_t n, const ValueBuffer& values, const std::string& where);
  void add_string_bytes(size_t n, const std::string& where) {
    string_bytes_ += n;
    if (string_bytes_ > limits_.max_string_bytes)
      fail(where, "strings take more than the limit of " + std::to_string(limits_.max_string_bytes) + " bytes");
  }

  const SchemaElement& e_;
  ColumnKind kind_;
  int max_def_;
  std::string subject_;
  const ParquetLimits& limits_;

  bool has_dictionary_ = false;
  ValueBuffer dictionary_;
  // The output, one entry per row.
  std::string out_fixed_;
  std::vector<std::string> out_strings_;
  std::vector<uint8_t> present_;
  size_t rows_ = 0;
  bool any_null_ = false;
  uint64_t string_bytes_ = 0;
};

void ColumnDecoder::decode_plain(const uint8_t* p, size_t n, size_t count, ValueBuffer& out, const std::string& where) {
  out.count = count;
  if (kind_.type == ParquetType::Boolean) {
    // One bit per value, least significant bit first.
    if (n < (count + 7) / 8) fail(where, "PLAIN BOOLEAN values are truncated");
    out.fixed.resize(count);
    for (size_t i = 0; i < count; ++i) out.fixed[i] = static_cast<char>((p[i >> 3] >> (i & 7)) & 1);
  } else if (kind_.type == ParquetType::ByteArray) {
    // Each value: u32 LE length, then the bytes.
    out.strings.clear();
    out.strings.reserve(std::min<size_t>(count, n / 4));
    size_t pos = 0;
    for (size_t i = 0; i < count; ++i) {
      if (n - pos < 4) fail(where, "PLAIN BYTE_ARRAY values are truncated");
      uint32_t len = load_u32le(reinterpret_cast<const char*>(p + pos));
      pos += 4;
      if (len > n - pos) fail(where, "PLAIN BYTE_ARRAY value of " + std::to_string(len) + " bytes runs past the page");
      add_string_bytes(len, where);
      out.strings.emplace_back(reinterpret_cast<const char*>(p + pos), len);
      pos += len;
    }
  } else {
    if (count > n / kind_.stored_size)
      fail(where, "page holds " + std::to_string(n) + " bytes of PLAIN values, too few for " + std::to_string(count));
    out.fixed.assign(reinterpret_cast<const char*>(p), count * kind_.stored_size);
  }
}

void ColumnDecoder::decode_values(int32_t encoding, const uint8_t* p, size_t n, size_t count, ValueBuffer& out,
                                  const std::string& where) {
  if (encoding == kEncPlain) return decode_plain(p, n, count, out, where);
  if (encoding == kEncByteStreamSplit && kind_.stored_size > 0) {
    // Byte k of value i is at p[k * count + i]: the k-th bytes of all values form stream k.
    const size_t es = kind_.stored_size;
    if (count > n / es || count * es != n)
      fail(where, "BYTE_STREAM_SPLIT data of " + std::to_string(n) + " bytes does not hold " + std::to_string(count) + " values");
    out.count = count;
    out.fixed.resize(count * es);
    for (size_t i = 0; i < count; ++i)
      for (size_t k = 0; k < es; ++k) out.fixed[i * es + k] = static_cast<char>(p[k * count + i]);
    return;
  }
  if (encoding != kEncPlainDictionary && encoding != kEncRleDictionary)
    fail(where, std::string("encoding ") + parquet_encoding_name(encoding) +
                    " is not supported (tinyq reads PLAIN, PLAIN_DICTIONARY, RLE_DICTIONARY and, for numbers, "
                    "BYTE_STREAM_SPLIT)");
  if (!has_dictionary_) fail(where, "dictionary-encoded page but the column chunk has no dictionary page");
  out.count = count;
  out.fixed.clear();
  out.strings.clear();
  if (count == 0) return;
  // One byte of bit width, then the indices as an RLE/bit-packed hybrid stream.
  if (n < 1) fail(where, "dictionary indices are missing");
  int width = p[0];
  if (width > 32) fail(where, "dictionary index bit width " + std::to_string(width) + " is over 32");
  std::vector<uint32_t> idx(count);
  RleHybridDecoder rle(p + 1, n - 1, width, subject_, "column '" + e_.name + "', " + where + ", dictionary indices");
  rle.decode(idx.data(), count);
  const size_t dict_size = dictionary_.count;
  if (kind_.dtype == DType::Undefined) {
    out.strings.reserve(count);
    for (uint32_t i : idx) {
      if (i >= dict_size) fail(where, "dictionary index " + std::to_string(i) + " is out of range (dictionary has " + std::to_string(dict_size) + " entries)");
      add_string_bytes(dictionary_.strings[i].size(), where);
      out.strings.push_back(dictionary_.strings[i]);
    }
  } else {
    const size_t es = kind_.out_size;
    out.fixed.resize(count * es);
    for (size_t k = 0; k < count; ++k) {
      uint32_t i = idx[k];
      if (i >= dict_size) fail(where, "dictionary index " + std::to_string(i) + " is out of range (dictionary has " + std::to_string(dict_size) + " entries)");
      std::memcpy(&out.fixed[k * es], &dictionary_.fixed[i * es], es);
    }
  }
}

void ColumnDecoder::append(const std::vector<uint32_t>* def_levels, size_t n, const ValueBuffer& values,
                           const std::string& where) {
  const size_t es = kind_.out_size;
  const bool strings = kind_.dtype == DType::Undefined;
  size_t next = 0;
  if (strings)
    out_strings_.reserve(out_strings_.size() + n);
  else
    out_fixed_.resize((rows_ + n) * es, '\0');
  present_.resize(rows_ + n, 1);
  for (size_t r = 0; r < n; ++r) {
    bool here = def_levels == nullptr || (*def_levels)[r] == static_cast<uint32_t>(max_def_);
    if (!here) {
      any_null_ = true;
      present_[rows_ + r] = 0;
      if (strings) out_strings_.emplace_back();
      continue;
    }
    if (next >= values.count) fail(where, "page has fewer values than non-null rows");
    if (strings)
      out_strings_.push_back(values.strings[next]);
    else
      std::memcpy(&out_fixed_[(rows_ + r) * es], &values.fixed[next * es], es);
    ++next;
  }
  rows_ += n;
}

void ColumnDecoder::decode_chunk(const std::string& chunk, int32_t codec, int64_t num_values, const std::string& where) {
  const auto* base = reinterpret_cast<const uint8_t*>(chunk.data());
  size_t pos = 0;
  int64_t done = 0;
  int page = 0;
  // A dictionary belongs to one column chunk.
  has_dictionary_ = false;
  dictionary_ = ValueBuffer{};
  while (done < num_values) {
    std::string at = where + ", page " + std::to_string(page);
    if (pos >= chunk.size())
      fail(where, "column chunk ends after " + std::to_string(done) + " of its " + std::to_string(num_values) + " values");
    ThriftCompactReader hin(base + pos, chunk.size() - pos, subject_, "column '" + e_.name + "', " + at + " header");
    PageHeader h = decode_page_header(hin);
    pos += hin.position();
    if (h.compressed_page_size < 0 || static_cast<size_t>(h.compressed_page_size) > chunk.size() - pos)
      fail(at, "page of " + std::to_string(h.compressed_page_size) + " bytes runs past its column chunk");
    if (h.uncompressed_page_size < 0 || static_cast<uint64_t>(h.uncompressed_page_size) > limits_.max_page_bytes)
      fail(at, "page declares " + std::to_string(h.uncompressed_page_size) +
                   " uncompressed bytes (the limit is " + std::to_string(limits_.max_page_bytes) + ")");
    const uint8_t* body = base + pos;
    const size_t body_size = static_cast<size_t>(h.compressed_page_size);
    const size_t full_size = static_cast<size_t>(h.uncompressed_page_size);
    pos += body_size;
    ++page;

    if (h.type == kIndexPage) continue;
    if (h.type == kDictionaryPage) {
      if (!h.has_dictionary) fail(at, "dictionary page without a dictionary page header");
      if (has_dictionary_ || done > 0) fail(at, "a dictionary page must come first and only once");
      if (h.dictionary.encoding != kEncPlain && h.dictionary.encoding != kEncPlainDictionary)
        fail(at, std::string("dictionary page encoding ") + parquet_encoding_name(h.dictionary.encoding) + " is not supported");
      if (h.dictionary.num_values < 0) fail(at, "dictionary declares a negative size");
      std::string data = decompress_page(codec, body, body_size, full_size, subject_, "column '" + e_.name + "', " + at);
      decode_plain(reinterpret_cast<const uint8_t*>(data.data()), data.size(),
                   static_cast<size_t>(h.dictionary.num_values), dictionary_, at);
      // Dictionaries hold out_size-byte values for the gather in decode_values (BOOLEAN
      // dictionaries are already one byte per value).
      has_dictionary_ = true;
      continue;
    }
    if (h.type != kDataPage && h.type != kDataPageV2) fail(at, "unknown page type " + std::to_string(h.type));

    int32_t n_signed = h.type == kDataPage ? h.v1.num_values : h.v2.num_values;
    if ((h.type == kDataPage && !h.has_v1) || (h.type == kDataPageV2 && !h.has_v2))
      fail(at, "data page without its data page header");
    if (n_signed < 0 || n_signed > num_values - done)
      fail(at, "page declares " + std::to_string(n_signed) + " values but the column chunk has " +
                   std::to_string(num_values - done) + " left");
    const size_t n = static_cast<size_t>(n_signed);

    std::vector<uint32_t> levels;
    const std::vector<uint32_t>* def = nullptr;
    std::string data;              // decompressed bytes holding the values (and v1 levels)
    const uint8_t* values = nullptr;
    size_t values_size = 0;
    int32_t encoding;
    const std::string where_levels = "column '" + e_.name + "', " + at + ", definition levels";
    if (h.type == kDataPage) {
      encoding = h.v1.encoding;
      data = decompress_page(codec, body, body_size, full_size, subject_, "column '" + e_.name + "', " + at);
      const auto* d = reinterpret_cast<const uint8_t*>(data.data());
      size_t off = 0;
      if (max_def_ > 0) {
        if (h.v1.definition_level_encoding != kEncRle)
          fail(at, std::string("definition level encoding ") + parquet_encoding_name(h.v1.definition_level_encoding) +
                       " is not supported (tinyq reads RLE)");
        if (data.size() < 4) fail(at, "definition levels are truncated");
        uint32_t len = load_u32le(data.data());
        if (len > data.size() - 4) fail(at, "definition levels of " + std::to_string(len) + " bytes run past the page");
        levels.resize(n);
        RleHybridDecoder rle(d + 4, len, bit_width_for(static_cast<uint32_t>(max_def_)), subject_, where_levels);
        rle.decode(levels.data(), n);
        def = &levels;
        off = 4 + len;
      }
      values = d + off;
      values_size = data.size() - off;
    } else {
      const DataPageHeaderV2& v2 = h.v2;
      encoding = v2.encoding;
      if (v2.repetition_levels_byte_length != 0) fail(at, "page has repetition levels, but the column is flat");
      if (v2.definition_levels_byte_length < 0 || static_cast<size_t>(v2.definition_levels_byte_length) > body_size ||
          static_cast<size_t>(v2.definition_levels_byte_length) > full_size)
        fail(at, "definition levels length " + std::to_string(v2.definition_levels_byte_length) + " does not fit the page");
      if (v2.num_rows != n_signed) fail(at, "a flat column's page must hold as many rows as values");
      const size_t def_len = static_cast<size_t>(v2.definition_levels_byte_length);
      if (max_def_ > 0) {
        levels.resize(n);
        RleHybridDecoder rle(body, def_len, bit_width_for(static_cast<uint32_t>(max_def_)), subject_, where_levels);
        rle.decode(levels.data(), n);
        def = &levels;
        size_t nulls = static_cast<size_t>(std::count(levels.begin(), levels.end(), 0u));
        if (v2.num_nulls < 0 || nulls != static_cast<size_t>(v2.num_nulls))
          fail(at, "page declares " + std::to_string(v2.num_nulls) + " nulls but its levels mark " + std::to_string(nulls));
      } else if (v2.num_nulls != 0) {
        fail(at, "a REQUIRED column's page declares nulls");
      }
      const uint8_t* vsrc = body + def_len;
      size_t vsrc_size = body_size - def_len, vfull = full_size - def_len;
      if (v2.is_compressed && codec != kCodecUncompressed) {
        data = decompress_page(codec, vsrc, vsrc_size, vfull, subject_, "column '" + e_.name + "', " + at);
      } else {
        if (vsrc_size != vfull) fail(at, "uncompressed values take " + std::to_string(vsrc_size) + " bytes but the page declares " + std::to_string(vfull));
        data.assign(reinterpret_cast<const char*>(vsrc), vsrc_size);
      }
      values = reinterpret_cast<const uint8_t*>(data.data());
      values_size = data.size();
    }
    size_t non_null = def ? static_cast<size_t>(std::count(def->begin(), def->end(), static_cast<uint32_t>(max_def_))) : n;
    ValueBuffer vb;
    decode_values(encoding, values, values_size, non_null, vb, at);
    append(def, n, vb, at);
    done += n_signed;
  }
}

FeatureColumn ColumnDecoder::finish() {
  FeatureColumn col;
  col.name = e_.name;
  if (kind_.dtype == DType::Undefined) {
    col.strings = std::move(out_strings_);
  } else {
    col.values = Tensor(kind_.dtype, Shape{static_cast<int64_t>(rows_)});
    if (!out_fixed_.empty()) std::memcpy(col.values.raw(), out_fixed_.data(), out_fixed_.size());
  }
  if (any_null_) col.present = std::move(present_);
  return col;
}

FeatureColumn read_column(const ByteSource& src, const ParsedFile& pf, const TopColumn& top,
                          const std::string& subject, const ParquetLimits& limits) {
  const SchemaElement& e = pf.md.schema[top.schema_index];
  if (top.info.nested)
    throw Error(subject, "column '" + e.name + "' is nested (a group or repeated field); tinyq reads flat columns only");
  ColumnKind kind = column_kind(e, subject);
  const int max_def = top.info.optional ? 1 : 0;
  ColumnDecoder dec(e, kind, max_def, subject, limits);
  for (size_t g = 0; g < pf.md.row_groups.size(); ++g) {
    const RowGroup& rg = pf.md.row_groups[g];
    const ColumnChunk& cc = rg.columns[top.leaf_index];
    const std::string where = "row group " + std::to_string(g);
    auto fail = [&](const std::string& text) { throw Error(subject, "column '" + e.name + "', " + where + ": " + text); };
    if (!cc.file_path.empty()) fail("column chunk is stored in another file ('" + cc.file_path + "')");
    if (!cc.has_meta) fail("column chunk has no metadata");
    const ColumnMetaData& m = cc.meta;
    if (m.type != e.type) fail("column chunk type does not match the schema");
    if (m.path.size() != 1 || m.path[0] != e.name) fail("column chunk path does not match the schema");
    if (!parquet_codec_supported(m.codec))
      fail(std::string("compression codec ") + parquet_codec_name(m.codec) +
           " is not supported (tinyq reads UNCOMPRESSED, SNAPPY, GZIP and ZSTD)");
    if (m.num_values != rg.num_rows)
      fail("column chunk holds " + std::to_string(m.num_values) + " values for " + std::to_string(rg.num_rows) + " rows");
    int64_t start = m.data_page_offset;
    if (m.has_dictionary_page_offset && m.dictionary_page_offset > 0 && m.dictionary_page_offset < start)
      start = m.dictionary_page_offset;
    const int64_t len = m.total_compressed_size;
    if (start < 4 || len < 0 || static_cast<uint64_t>(start) > pf.data_end ||
        static_cast<uint64_t>(len) > pf.data_end - static_cast<uint64_t>(start))
      fail("column chunk at byte " + std::to_string(start) + " of " + std::to_string(len) +
           " bytes lies outside the file's data");
    if (static_cast<uint64_t>(len) > limits.max_chunk_bytes)
      fail("column chunk of " + std::to_string(len) + " bytes is over the limit of " + std::to_string(limits.max_chunk_bytes));
    if (rg.num_rows == 0) continue;
    std::string chunk = src.read(static_cast<uint64_t>(start), static_cast<uint64_t>(len));
    dec.decode_chunk(chunk, m.codec, m.num_values, where);
  }
  return dec.finish();
}

FeatureTable read_table(const ByteSource& src, const std::string& subject, const std::vector<std::string>& columns,
                        const ParquetLimits& limits) {
  ParsedFile pf = parse_footer(src, subject, limits);
  std::vector<const TopColumn*> chosen;
  if (columns.empty()) {
    for (const auto& t : pf.top)
      if (!t.info.nested) chosen.push_back(&t);
  } else {
    for (const auto& name : columns) {
      auto it = std::find_if(pf.top.begin(), pf.top.end(), [&](const TopColumn& t) { return t.info.name == name; });
      if (it == pf.top.end()) {
        std::string have;
        for (size_t i = 0; i < pf.top.size() && i < 30; ++i) have += (i ? ", " : "") + pf.top[i].info.name;
        if (pf.top.size() > 30) have += ", ...";
        throw Error(subject, "no column '" + name + "' (the file has: " + have + ")");
      }
      chosen.push_back(&*it);
    }
  }
  FeatureTable table;
  table.rows = pf.md.num_rows;
  for (const TopColumn* t : chosen) table.columns.push_back(read_column(src, pf, *t, subject, limits));
  return table;
}

}  // namespace
}  // namespace calib

ParquetInfo parquet_read_info(const std::string& path, const ParquetLimits& limits) {
  calib::FileSource src(path);
  calib::ParsedFile pf = calib::parse_footer(src, path, limits);
  ParquetInfo info;
  info.rows = pf.md.num_rows;
  info.row_groups = static_cast<int64_t>(pf.md.row_groups.size());
  info.created_by = pf.md.created_by;
  for (const auto& t : pf.top) info.columns.push_back(t.info);
  return info;
}

FeatureTable read_parquet(const std::string& path, const std::vector<std::string>& columns,
                          const ParquetLimits& limits) {
  calib::FileSource src(path);
  return calib::read_table(src, path, columns, limits);
}

FeatureTable parse_parquet(const std::string& bytes, const std::string& subject,
                           const std::vector<std::string>& columns, const ParquetLimits& limits) {
  calib::MemorySource src(bytes);
  return calib::read_table(src, subject, columns, limits);
}

}  // namespace tinyq
