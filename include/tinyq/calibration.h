// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// Calibration-set builder: turns a feature cache (Apache Parquet or CSV) or raw YUV video into
// the .npz that static PTQ reads (one array per model input, a stack [N, ...] of samples).
//
// Stages: a source reads a FeatureTable (named columns, nulls marked) or luma frames; rows with
// nulls are refused or dropped; sample_rows() picks N rows (first / random / stratified, all
// deterministic by seed); the chosen rows become one float32 array.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "tinyq/npz.h"
#include "tinyq/tensor.h"

namespace tinyq {

// ---------------------------------------------------------------------------------------------
// Feature tables

/// One named column. Numeric columns hold a 1-D tensor (F32, F64, I32, I64, U32, U64 or Bool),
/// one element per row, 0 where the row is null; string columns hold `strings` instead.
struct FeatureColumn {
  std::string name;
  Tensor values;                     ///< numeric columns; empty() for string columns
  std::vector<std::string> strings;  ///< string columns; empty for numeric ones
  std::vector<uint8_t> present;      ///< 1 per row, 0 where null; empty when nothing is null

  bool is_string() const { return values.empty(); }
  bool is_null(int64_t row) const { return !present.empty() && present[static_cast<size_t>(row)] == 0; }
  int64_t null_count() const;
};

struct FeatureTable {
  int64_t rows = 0;
  std::vector<FeatureColumn> columns;

  /// The column named `name`, or nullptr.
  const FeatureColumn* find(const std::string& name) const;
};

/// Throws tinyq::Error(subject, ...) naming the first column with nulls and how many it has.
void require_no_nulls(const FeatureTable& table, const std::string& subject);
/// A table without the rows where any column is null.
FeatureTable drop_null_rows(const FeatureTable& table);
/// The given rows of the named numeric columns as float32 [rows.size(), columns.size()], in
/// column order. String or missing columns and null cells are refused with an Error(subject).
Tensor table_to_matrix(const FeatureTable& table, const std::vector<std::string>& columns,
                       const std::vector<int64_t>& rows, const std::string& subject);

// ---------------------------------------------------------------------------------------------
// Apache Parquet (flat schemas; PLAIN, dictionary and BYTE_STREAM_SPLIT encodings; data pages
// v1 and v2; codecs UNCOMPRESSED, SNAPPY, GZIP, ZSTD)

/// Bounds applied to every size and count a Parquet file declares, before allocating.
struct ParquetLimits {
  uint64_t max_footer_bytes = 64ull << 20;
  uint64_t max_rows = 1ull << 25;
  uint64_t max_schema_elements = 100000;
  uint64_t max_row_groups = 1000000;
  uint64_t max_column_chunks = 200000;    ///< over all row groups
  uint64_t max_chunk_bytes = 1ull << 30;  ///< one column chunk as stored
  uint64_t max_page_bytes = 256ull << 20;  ///< one page, uncompressed
  uint64_t max_string_bytes = 256ull << 20;  ///< all decoded strings of one column
};

/// Parquet physical types (the values are the format's enum numbers).
enum class ParquetType : int32_t {
  Boolean = 0,
  Int32 = 1,
  Int64 = 2,
  Int96 = 3,
  Float = 4,
  Double = 5,
  ByteArray = 6,
  FixedLenByteArray = 7,
};
const char* parquet_type_name(ParquetType type);

/// A top-level column of a Parquet schema.
struct ParquetColumnInfo {
  std::string name;
  ParquetType type = ParquetType::Int32;  ///< meaningless for nested columns
  bool optional = false;                  ///< may hold nulls
  bool nested = false;                    ///< a group or repeated field: tinyq refuses to read it
};

struct ParquetInfo {
  int64_t rows = 0;
  int64_t row_groups = 0;
  std::string created_by;
  std::vector<ParquetColumnInfo> columns;
};

/// Schema and sizes from the footer only.
ParquetInfo parquet_read_info(const std::string& path, const ParquetLimits& limits = {});
/// Reads the named top-level columns (all flat ones when `columns` is empty) in the given
/// order. BYTE_ARRAY columns come back as strings; INT96, FIXED_LEN_BYTE_ARRAY, DECIMAL and
/// nested columns are refused. Every malformed or hostile file gives tinyq::Error(path, ...).
FeatureTable read_parquet(const std::string& path, const std::vector<std::string>& columns,
                          const ParquetLimits& limits = {});
/// The same from an in-memory file image; `subject` names it in errors.
FeatureTable parse_parquet(const std::string& bytes, const std::string& subject,
                           const std::vector<std::string>& columns, const ParquetLimits& limits = {});

// ---------------------------------------------------------------------------------------------
// CSV (RFC 4180: comma separated, a header row, "quoted" fields with "" escapes, LF or CRLF)

struct CsvLimits {
  uint64_t max_file_bytes = 1ull << 30;
};

/// Reads the named columns as float32 (empty cells are nulls; "nan"/"inf" are accepted).
/// `by_column`, when not empty and not among `columns`, is read too: as float64 when every
/// cell is a number, as strings otherwise.
FeatureTable read_csv(const std::string& path, const std::vector<std::string>& columns,
                      const std::string& by_column = "", const CsvLimits& limits = {});

// ---------------------------------------------------------------------------------------------
// Raw planar YUV 4:2:0 video (no header; frames back to back)

enum class YuvFormat { Yuv420p, Yuv420p10le };
/// "yuv420p" / "yuv420p10le" -> format; Error otherwise.
YuvFormat parse_yuv_format(const std::string& text);

struct YuvFrameSpec {
  int64_t width = 0;
  int64_t height = 0;
  YuvFormat format = YuvFormat::Yuv420p;
};
/// Bytes of one whole frame (luma plus both half-size chroma planes, odd sizes rounded up).
uint64_t yuv_frame_bytes(const YuvFrameSpec& spec);
/// Frames in the file; refuses a size that is not a whole number of frames.
int64_t yuv_frame_count(const std::string& path, const YuvFrameSpec& spec);

/// What to do with each luma plane before it is stored.
struct LumaGeometry {
  enum class Mode { Full, CenterCrop, Resize } mode = Mode::Full;
  int64_t width = 0;   ///< output size for CenterCrop and Resize
  int64_t height = 0;
};

/// The luma planes of `frames`, normalised to [0, 1] (8-bit / 255, 10-bit / 1023), as float32
/// [N, 1, H, W]. A 10-bit sample above 1023 is refused (usually an 8-bit file read as 10-bit).
/// Only the requested frames are read from disk.
Tensor read_yuv_luma(const std::string& path, const YuvFrameSpec& spec, const std::vector<int64_t>& frames,
                     const LumaGeometry& geometry);

/// Centre crop of a [H, W] plane to [out_h, out_w] (odd margins put the extra pixel at the end).
std::vector<float> luma_center_crop(const std::vector<float>& src, int64_t width, int64_t height,
                                    int64_t out_width, int64_t out_height);
/// Bilinear resize of a [H, W] plane with half-pixel centres and edge clamping (ONNX Resize
/// mode=linear, coordinate_transformation_mode=half_pixel, no antialiasing).
std::vector<float> luma_resize_bilinear(const std::vector<float>& src, int64_t width, int64_t height,
                                        int64_t out_width, int64_t out_height);

/// "224x224" -> {224, 224} (width, height); Error(what) otherwise.
std::pair<int64_t, int64_t> parse_size_spec(const std::string& text, const std::string& what);
/// "0,10,20" or ranges "A:B" / "A:B:STEP" (B exclusive), mixed by commas -> frame numbers.
std::vector<int64_t> parse_frame_list(const std::string& text);

// ---------------------------------------------------------------------------------------------
// Sampling

enum class SampleMode { First, Random, Stratified };
/// "first" / "random" / "stratified" -> mode; Error otherwise.
SampleMode parse_sample_mode(const std::string& text);

struct SampleOptions {
  SampleMode mode = SampleMode::First;
  int64_t n = -1;      ///< rows to pick; -1 = all
  uint64_t seed = 0;
  int64_t bins = 10;   ///< stratified on a numeric column with more distinct values than this
};

/// Picks rows out of `rows`, returned in ascending order. first: 0..n-1. random: n distinct rows
/// uniformly, from a seeded generator whose output is the same on every platform. stratified:
/// rows split into strata by `by` (one per distinct value for strings and for numeric columns
/// with at most `bins` distinct values; otherwise `bins` equal-count bins of the sorted values),
/// n shared out in proportion to stratum size (largest remainders), then random within each.
/// `by` must have no nulls or non-finite values. Asking for more rows than exist is an Error.
std::vector<int64_t> sample_rows(int64_t rows, const SampleOptions& options, const FeatureColumn* by = nullptr);

// ---------------------------------------------------------------------------------------------
// The whole builder (what `tinyq build-calibration-set` runs)

struct CalibrationSetSpec {
  enum class Source { Parquet, Csv, Yuv } source = Source::Parquet;
  std::string path;                  ///< the source file
  std::vector<std::string> columns;  ///< Parquet / CSV
  bool drop_null = false;            ///< Parquet / CSV: drop rows with nulls instead of refusing
  bool allow_nonfinite = false;      ///< keep NaN / Inf feature values instead of refusing
  YuvFrameSpec yuv;                  ///< YUV
  std::vector<int64_t> frames;       ///< YUV: frames to use; empty = every frame
  LumaGeometry geometry;             ///< YUV
  SampleOptions sample;
  std::string by_column;             ///< stratified sampling column (Parquet / CSV)
  std::string input_name;            ///< the array's key in the .npz
};

struct CalibrationSet {
  NamedTensors arrays;            ///< one array, named spec.input_name
  int64_t source_rows = 0;        ///< rows (or frames) the source offered
  int64_t dropped_null_rows = 0;  ///< rows removed by drop_null
  std::vector<int64_t> picked;    ///< the chosen rows of the file (frame numbers for YUV), in source order
};

/// Reads the source, applies null handling and sampling, and returns the array. Errors name
/// the source file (or the option at fault).
CalibrationSet build_calibration_set(const CalibrationSetSpec& spec);

}  // namespace tinyq
