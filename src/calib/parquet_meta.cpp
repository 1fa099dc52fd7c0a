// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include "calib/parquet_meta.h"

#include <bitset>
#include <initializer_list>
#include <utility>

namespace tinyq::calib {
namespace {

// Names, types and bounds are applied as each field is read; `required` tracks the fields
// parquet.thrift marks required so a struct missing one is refused by name.
constexpr size_t kMaxName = 1 << 16;
constexpr size_t kMaxCreatedBy = 1 << 16;
constexpr uint32_t kMaxPathDepth = 256;

class Required {
 public:
  void seen(int id) { bits_.set(static_cast<size_t>(id)); }
  void check(ThriftCompactReader& in, const char* strukt, std::initializer_list<std::pair<int, const char*>> fields) {
    for (const auto& [id, name] : fields)
      if (!bits_.test(static_cast<size_t>(id))) in.fail(std::string(strukt) + " lacks its required field " + name);
  }

 private:
  std::bitset<32> bits_;
};

void decode_logical_type(ThriftCompactReader& in, SchemaElement& e) {
  // LogicalType is a union: one struct-valued field whose id says which logical type it is.
  in.struct_begin();
  ThriftField f;
  while (in.next_field(f)) {
    if (f.type != ThriftType::Struct) {
      in.skip(f.type);
      continue;
    }
    e.logical = f.id;
    if (f.id == kLogicalInteger) {
      // IntType { 1: i8 bitWidth, 2: bool isSigned }
      in.struct_begin();
      ThriftField g;
      while (in.next_field(g)) {
        if (g.id == 2 && (g.type == ThriftType::BoolTrue || g.type == ThriftType::BoolFalse))
          e.logical_int_signed = in.field_bool(g);
        else
          in.skip(g.type);
      }
      in.struct_end();
    } else {
      in.skip(f.type);
    }
  }
  in.struct_end();
}

SchemaElement decode_schema_element(ThriftCompactReader& in) {
  SchemaElement e;
  Required req;
  in.struct_begin();
  ThriftField f;
  while (in.next_field(f)) {
    switch (f.id) {
      case 1: in.expect_type(f, ThriftType::I32, "SchemaElement.type"); e.type = in.read_i32(); e.has_type = true; break;
      case 2: in.expect_type(f, ThriftType::I32, "SchemaElement.type_length"); e.type_length = in.read_i32(); break;
      case 3:
        in.expect_type(f, ThriftType::I32, "SchemaElement.repetition_type");
        e.repetition = in.read_i32();
        e.has_repetition = true;
        break;
      case 4: in.expect_type(f, ThriftType::Binary, "SchemaElement.name"); e.name = in.read_binary(kMaxName); req.seen(4); break;
      case 5: in.expect_type(f, ThriftType::I32, "SchemaElement.num_children"); e.num_children = in.read_i32(); break;
      case 6:
        in.expect_type(f, ThriftType::I32, "SchemaElement.converted_type");
        e.converted_type = in.read_i32();
        e.has_converted = true;
        break;
      case 10: in.expect_type(f, ThriftType::Struct, "SchemaElement.logicalType"); decode_logical_type(in, e); break;
      default: in.skip(f.type);
    }
  }
  in.struct_end();
  req.check(in, "SchemaElement", {{4, "name"}});
  if (e.num_children < 0) in.fail("schema element '" + e.name + "' has a negative child count");
  return e;
}

ColumnMetaData decode_column_metadata(ThriftCompactReader& in) {
  ColumnMetaData m;
  Required req;
  in.struct_begin();
  ThriftField f;
  while (in.next_field(f)) {
    switch (f.id) {
      case 1: in.expect_type(f, ThriftType::I32, "ColumnMetaData.type"); m.type = in.read_i32(); break;
      case 2:
        // The encodings list is only a summary (each page names its own); skipping it keeps a
        // hostile list of millions of one-byte entries from becoming a large allocation.
        in.expect_type(f, ThriftType::List, "ColumnMetaData.encodings");
        in.skip(f.type);
        break;
      case 3: {
        in.expect_type(f, ThriftType::List, "ColumnMetaData.path_in_schema");
        ThriftList list = in.read_list_header();
        if (list.element != ThriftType::Binary) in.fail("path_in_schema is not a list of strings");
        if (list.size > kMaxPathDepth) in.fail("path_in_schema has " + std::to_string(list.size) + " parts");
        m.path.clear();
        m.path.reserve(list.size);
        for (uint32_t i = 0; i < list.size; ++i) m.path.push_back(in.read_binary(kMaxName));
        break;
      }
      case 4: in.expect_type(f, ThriftType::I32, "ColumnMetaData.codec"); m.codec = in.read_i32(); break;
      case 5: in.expect_type(f, ThriftType::I64, "ColumnMetaData.num_values"); m.num_values = in.read_i64(); break;
      case 6:
        in.expect_type(f, ThriftType::I64, "ColumnMetaData.total_uncompressed_size");
        m.total_uncompressed_size = in.read_i64();
        break;
      case 7:
        in.expect_type(f, ThriftType::I64, "ColumnMetaData.total_compressed_size");
        m.total_compressed_size = in.read_i64();
        break;
      case 9: in.expect_type(f, ThriftType::I64, "ColumnMetaData.data_page_offset"); m.data_page_offset = in.read_i64(); break;
      case 11:
        in.expect_type(f, ThriftType::I64, "ColumnMetaData.dictionary_page_offset");
        m.dictionary_page_offset = in.read_i64();
        m.has_dictionary_page_offset = true;
        break;
      default: in.skip(f.type); continue;
    }
    req.seen(f.id);
  }
  in.struct_end();
  req.check(in, "ColumnMetaData", {{1, "type"}, {3, "path_in_schema"}, {4, "codec"}, {5, "num_values"},
                                   {7, "total_compressed_size"}, {9, "data_page_offset"}});
  return m;
}

ColumnChunk decode_column_chunk(ThriftCompactReader& in) {
  ColumnChunk c;
  in.struct_begin();
  ThriftField f;
  while (in.next_field(f)) {
    switch (f.id) {
      case 1: in.expect_type(f, ThriftType::Binary, "ColumnChunk.file_path"); c.file_path = in.read_binary(kMaxName); break;
      case 3:
        in.expect_type(f, ThriftType::Struct, "ColumnChunk.meta_data");
        c.meta = decode_column_metadata(in);
        c.has_meta = true;
        break;
      default: in.skip(f.type);
    }
  }
  in.struct_end();
  return c;
}

// In memory a column chunk takes a few hundred bytes but on disk as little as one (an empty
// struct), so the chunk count is capped over the whole file, not only by the bytes left.
RowGroup decode_row_group(ThriftCompactReader& in, const ParquetLimits& limits, uint64_t& chunks_seen) {
  RowGroup g;
  Required req;
  in.struct_begin();
  ThriftField f;
  while (in.next_field(f)) {
    switch (f.id) {
      case 1: {
        in.expect_type(f, ThriftType::List, "RowGroup.columns");
        ThriftList list = in.read_list_header();
        if (list.element != ThriftType::Struct) in.fail("RowGroup.columns is not a list of structs");
        chunks_seen += list.size;
        if (chunks_seen > limits.max_column_chunks)
          in.fail("file has more than " + std::to_string(limits.max_column_chunks) + " column chunks");
        g.columns.clear();
        g.columns.reserve(list.size);
        for (uint32_t i = 0; i < list.size; ++i) g.columns.push_back(decode_column_chunk(in));
        break;
      }
      case 3: in.expect_type(f, ThriftType::I64, "RowGroup.num_rows"); g.num_rows = in.read_i64(); break;
      default: in.skip(f.type); continue;
    }
    req.seen(f.id);
  }
  in.struct_end();
  req.check(in, "RowGroup", {{1, "columns"}, {3, "num_rows"}});
  return g;
}

}  // namespace

const char* parquet_encoding_name(int32_t encoding) {
  switch (encoding) {
    case kEncPlain: return "PLAIN";
    case kEncPlainDictionary: return "PLAIN_DICTIONARY";
    case kEncRle: return "RLE";
    case kEncBitPacked: return "BIT_PACKED";
    case kEncDeltaBinaryPacked: return "DELTA_BINARY_PACKED";
    case kEncDeltaLengthByteArray: return "DELTA_LENGTH_BYTE_ARRAY";
    case kEncDeltaByteArray: return "DELTA_BYTE_ARRAY";
    case kEncRleDictionary: return "RLE_DICTIONARY";
    case kEncByteStreamSplit: return "BYTE_STREAM_SPLIT";
  }
  return "an unknown encoding";
}

const char* parquet_codec_name(int32_t codec) {
  switch (codec) {
    case kCodecUncompressed: return "UNCOMPRESSED";
    case kCodecSnappy: return "SNAPPY";
    case kCodecGzip: return "GZIP";
    case kCodecLzo: return "LZO";
    case kCodecBrotli: return "BROTLI";
    case kCodecLz4: return "LZ4";
    case kCodecZstd: return "ZSTD";
    case kCodecLz4Raw: return "LZ4_RAW";
  }
  return "an unknown codec";
}

FileMetaData decode_file_metadata(ThriftCompactReader& in, const ParquetLimits& limits) {
  FileMetaData md;
  Required req;
  in.struct_begin();
  ThriftField f;
  while (in.next_field(f)) {
    switch (f.id) {
      case 1: in.expect_type(f, ThriftType::I32, "FileMetaData.version"); md.version = in.read_i32(); break;
      case 2: {
        in.expect_type(f, ThriftType::List, "FileMetaData.schema");
        ThriftList list = in.read_list_header();
        if (list.element != ThriftType::Struct) in.fail("FileMetaData.schema is not a list of structs");
        if (list.size > limits.max_schema_elements)
          in.fail("schema has " + std::to_string(list.size) + " elements, over the limit of " +
                  std::to_string(limits.max_schema_elements));
        md.schema.clear();
        md.schema.reserve(list.size);
        for (uint32_t i = 0; i < list.size; ++i) md.schema.push_back(decode_schema_element(in));
        break;
      }
      case 3: in.expect_type(f, ThriftType::I64, "FileMetaData.num_rows"); md.num_rows = in.read_i64(); break;
      case 4: {
        in.expect_type(f, ThriftType::List, "FileMetaData.row_groups");
        ThriftList list = in.read_list_header();
        if (list.element != ThriftType::Struct) in.fail("FileMetaData.row_groups is not a list of structs");
        if (list.size > limits.max_row_groups)
          in.fail("file has " + std::to_string(list.size) + " row groups, over the limit of " +
                  std::to_string(limits.max_row_groups));
        md.row_groups.clear();
        md.row_groups.reserve(list.size);
        uint64_t chunks_seen = 0;
        for (uint32_t i = 0; i < list.size; ++i) md.row_groups.push_back(decode_row_group(in, limits, chunks_seen));
        break;
      }
      case 6: in.expect_type(f, ThriftType::Binary, "FileMetaData.created_by"); md.created_by = in.read_binary(kMaxCreatedBy); break;
      default: in.skip(f.type); continue;
    }
    req.seen(f.id);
  }
  in.struct_end();
  req.check(in, "FileMetaData", {{1, "version"}, {2, "schema"}, {3, "num_rows"}, {4, "row_groups"}});
  return md;
}

PageHeader decode_page_header(ThriftCompactReader& in) {
  PageHeader h;
  Required req;
  in.struct_begin();
  ThriftField f;
  while (in.next_field(f)) {
    switch (f.id) {
      case 1: in.expect_type(f, ThriftType::I32, "PageHeader.type"); h.type = in.read_i32(); break;
      case 2:
        in.expect_type(f, ThriftType::I32, "PageHeader.uncompressed_page_size");
        h.uncompressed_page_size = in.read_i32();
        break;
      case 3:
        in.expect_type(f, ThriftType::I32, "PageHeader.compressed_page_size");
        h.compressed_page_size = in.read_i32();
        break;
      case 5: {
        in.expect_type(f, ThriftType::Struct, "PageHeader.data_page_header");
        Required r;
        in.struct_begin();
        ThriftField g;
        while (in.next_field(g)) {
          switch (g.id) {
            case 1: in.expect_type(g, ThriftType::I32, "DataPageHeader.num_values"); h.v1.num_values = in.read_i32(); break;
            case 2: in.expect_type(g, ThriftType::I32, "DataPageHeader.encoding"); h.v1.encoding = in.read_i32(); break;
            case 3:
              in.expect_type(g, ThriftType::I32, "DataPageHeader.definition_level_encoding");
              h.v1.definition_level_encoding = in.read_i32();
              break;
            case 4:
              in.expect_type(g, ThriftType::I32, "DataPageHeader.repetition_level_encoding");
              h.v1.repetition_level_encoding = in.read_i32();
              break;
            default: in.skip(g.type); continue;
          }
          r.seen(g.id);
        }
        in.struct_end();
        r.check(in, "DataPageHeader", {{1, "num_values"}, {2, "encoding"}, {3, "definition_level_encoding"},
                                        {4, "repetition_level_encoding"}});
        h.has_v1 = true;
        break;
      }
      case 7: {
        in.expect_type(f, ThriftType::Struct, "PageHeader.dictionary_page_header");
        Required r;
        in.struct_begin();
        ThriftField g;
        while (in.next_field(g)) {
          switch (g.id) {
            case 1: in.expect_type(g, ThriftType::I32, "DictionaryPageHeader.num_values"); h.dictionary.num_values = in.read_i32(); break;
            case 2: in.expect_type(g, ThriftType::I32, "DictionaryPageHeader.encoding"); h.dictionary.encoding = in.read_i32(); break;
            default: in.skip(g.type); continue;
          }
          r.seen(g.id);
        }
        in.struct_end();
        r.check(in, "DictionaryPageHeader", {{1, "num_values"}, {2, "encoding"}});
        h.has_dictionary = true;
        break;
      }
      case 8: {
        in.expect_type(f, ThriftType::Struct, "PageHeader.data_page_header_v2");
        Required r;
        in.struct_begin();
        ThriftField g;
        while (in.next_field(g)) {
          switch (g.id) {
            case 1: in.expect_type(g, ThriftType::I32, "DataPageHeaderV2.num_values"); h.v2.num_values = in.read_i32(); break;
            case 2: in.expect_type(g, ThriftType::I32, "DataPageHeaderV2.num_nulls"); h.v2.num_nulls = in.read_i32(); break;
            case 3: in.expect_type(g, ThriftType::I32, "DataPageHeaderV2.num_rows"); h.v2.num_rows = in.read_i32(); break;
            case 4: in.expect_type(g, ThriftType::I32, "DataPageHeaderV2.encoding"); h.v2.encoding = in.read_i32(); break;
            case 5:
              in.expect_type(g, ThriftType::I32, "DataPageHeaderV2.definition_levels_byte_length");
              h.v2.definition_levels_byte_length = in.read_i32();
              break;
            case 6:
              in.expect_type(g, ThriftType::I32, "DataPageHeaderV2.repetition_levels_byte_length");
              h.v2.repetition_levels_byte_length = in.read_i32();
              break;
            case 7:
              in.expect_type(g, ThriftType::BoolTrue, "DataPageHeaderV2.is_compressed");
              h.v2.is_compressed = in.field_bool(g);
              break;
            default: in.skip(g.type); continue;
          }
          r.seen(g.id);
        }
        in.struct_end();
        r.check(in, "DataPageHeaderV2", {{1, "num_values"}, {2, "num_nulls"}, {3, "num_rows"}, {4, "encoding"},
                                          {5, "definition_levels_byte_length"}, {6, "repetition_levels_byte_length"}});
        h.has_v2 = true;
        break;
      }
      default: in.skip(f.type); continue;
    }
    req.seen(f.id);
  }
  in.struct_end();
  req.check(in, "PageHeader", {{1, "type"}, {2, "uncompressed_page_size"}, {3, "compressed_page_size"}});
  return h;
}

}  // namespace tinyq::calib
