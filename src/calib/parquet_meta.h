// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// The parts of Parquet's Thrift metadata (parquet-format's parquet.thrift) that a flat,
// numeric reader needs, decoded from the compact protocol. Fields tinyq does not use are
// skipped; required fields that are missing are refused.

#include <cstdint>
#include <string>
#include <vector>

#include "calib/thrift_compact.h"
#include "tinyq/calibration.h"

namespace tinyq::calib {

// Enum numbers from parquet.thrift.
enum ParquetRepetition : int32_t { kRequired = 0, kOptional = 1, kRepeated = 2 };
enum ParquetEncoding : int32_t {
  kEncPlain = 0,
  kEncPlainDictionary = 2,
  kEncRle = 3,
  kEncBitPacked = 4,
  kEncDeltaBinaryPacked = 5,
  kEncDeltaLengthByteArray = 6,
  kEncDeltaByteArray = 7,
  kEncRleDictionary = 8,
  kEncByteStreamSplit = 9,
};
enum ParquetCodec : int32_t {
  kCodecUncompressed = 0,
  kCodecSnappy = 1,
  kCodecGzip = 2,
  kCodecLzo = 3,
  kCodecBrotli = 4,
  kCodecLz4 = 5,
  kCodecZstd = 6,
  kCodecLz4Raw = 7,
};
enum ParquetPageType : int32_t { kDataPage = 0, kIndexPage = 1, kDictionaryPage = 2, kDataPageV2 = 3 };
// ConvertedType values tinyq must treat specially.
enum ParquetConverted : int32_t {
  kConvDecimal = 5,
  kConvUint8 = 11,
  kConvUint16 = 12,
  kConvUint32 = 13,
  kConvUint64 = 14,
};
// LogicalType union members tinyq must treat specially.
enum ParquetLogical : int16_t { kLogicalDecimal = 5, kLogicalInteger = 10, kLogicalFloat16 = 15 };

const char* parquet_encoding_name(int32_t encoding);
const char* parquet_codec_name(int32_t codec);

struct SchemaElement {
  bool has_type = false;
  int32_t type = 0;
  int32_t type_length = 0;
  bool has_repetition = false;
  int32_t repetition = kRequired;
  std::string name;
  int32_t num_children = 0;
  bool has_converted = false;
  int32_t converted_type = 0;
  int16_t logical = 0;          ///< LogicalType union member id; 0 when absent
  bool logical_int_signed = true;  ///< LogicalType INTEGER's isSigned
};

struct ColumnMetaData {
  int32_t type = 0;
  std::vector<std::string> path;
  int32_t codec = 0;
  int64_t num_values = 0;
  int64_t total_uncompressed_size = 0;
  int64_t total_compressed_size = 0;
  int64_t data_page_offset = 0;
  bool has_dictionary_page_offset = false;
  int64_t dictionary_page_offset = 0;
};

struct ColumnChunk {
  std::string file_path;  ///< non-empty: the data lives in another file
  bool has_meta = false;
  ColumnMetaData meta;
};

struct RowGroup {
  std::vector<ColumnChunk> columns;
  int64_t num_rows = 0;
};

struct FileMetaData {
  int32_t version = 0;
  std::vector<SchemaElement> schema;
  int64_t num_rows = 0;
  std::vector<RowGroup> row_groups;
  std::string created_by;
};

struct DataPageHeader {
  int32_t num_values = 0;
  int32_t encoding = 0;
  int32_t definition_level_encoding = 0;
  int32_t repetition_level_encoding = 0;
};

struct DictionaryPageHeader {
  int32_t num_values = 0;
  int32_t encoding = 0;
};

struct DataPageHeaderV2 {
  int32_t num_values = 0;
  int32_t num_nulls = 0;
  int32_t num_rows = 0;
  int32_t encoding = 0;
  int32_t definition_levels_byte_length = 0;
  int32_t repetition_levels_byte_length = 0;
  bool is_compressed = true;
};

struct PageHeader {
  int32_t type = 0;
  int32_t uncompressed_page_size = 0;
  int32_t compressed_page_size = 0;
  bool has_v1 = false;
  DataPageHeader v1;
  bool has_dictionary = false;
  DictionaryPageHeader dictionary;
  bool has_v2 = false;
  DataPageHeaderV2 v2;
};

/// Decodes the footer's FileMetaData; counts are bounded by `limits`.
FileMetaData decode_file_metadata(ThriftCompactReader& in, const ParquetLimits& limits);
/// Decodes one PageHeader.
PageHeader decode_page_header(ThriftCompactReader& in);

}  // namespace tinyq::calib
