// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// The calibration-set builder: source -> null handling -> sampling -> one float32 array.

#include <algorithm>
#include <cmath>
#include <numeric>

#include "tinyq/calibration.h"
#include "tinyq/error.h"

namespace tinyq {
namespace {

void check_finite(const Tensor& t, const std::vector<std::string>& columns, const std::vector<int64_t>& rows,
                  const std::string& subject) {
  const float* p = t.data<float>();
  const int64_t k = static_cast<int64_t>(columns.size());
  int64_t bad = 0, first = -1;
  for (int64_t i = 0; i < t.numel(); ++i) {
    if (std::isfinite(p[i])) continue;
    if (bad++ == 0) first = i;
  }
  if (bad == 0) return;
  throw Error(subject, std::to_string(bad) + " feature value" + (bad == 1 ? " is" : "s are") +
                           " NaN or infinite (first: row " + std::to_string(rows[static_cast<size_t>(first / k)]) +
                           ", column '" + columns[static_cast<size_t>(first % k)] +
                           "'); pass --allow-nonfinite to keep them");
}

CalibrationSet build_from_table(const CalibrationSetSpec& spec) {
  if (spec.columns.empty()) throw Error("--columns", "name at least one column");
  const bool stratified = spec.sample.mode == SampleMode::Stratified;
  if (stratified && spec.by_column.empty()) throw Error("--sample", "stratified sampling needs --by COLUMN");
  if (!stratified && !spec.by_column.empty()) throw Error("--by", "is only used with --sample stratified");

  FeatureTable table;
  if (spec.source == CalibrationSetSpec::Source::Parquet) {
    std::vector<std::string> read = spec.columns;
    if (stratified && std::find(read.begin(), read.end(), spec.by_column) == read.end()) read.push_back(spec.by_column);
    table = read_parquet(spec.path, read);
  } else {
    table = read_csv(spec.path, spec.columns, stratified ? spec.by_column : "");
  }
  for (const auto& name : spec.columns) {
    const FeatureColumn* c = table.find(name);
    if (c && c->is_string())
      throw Error(spec.path, "column '" + name + "' holds strings; calibration features must be numeric");
  }

  CalibrationSet set;
  set.source_rows = table.rows;
  // Source row number of each table row, so `picked` names rows of the file even after drops.
  std::vector<int64_t> source_row(static_cast<size_t>(table.rows));
  std::iota(source_row.begin(), source_row.end(), int64_t{0});
  if (spec.drop_null) {
    std::vector<int64_t> kept;
    for (int64_t r = 0; r < table.rows; ++r) {
      bool ok = true;
      for (const auto& c : table.columns) ok = ok && !c.is_null(r);
      if (ok) kept.push_back(r);
    }
    table = drop_null_rows(table);
    source_row = std::move(kept);
    set.dropped_null_rows = set.source_rows - table.rows;
  } else {
    require_no_nulls(table, spec.path);
  }
  std::vector<int64_t> rows = sample_rows(table.rows, spec.sample, stratified ? table.find(spec.by_column) : nullptr);
  if (rows.empty()) throw Error(spec.path, "the calibration set would be empty (no rows to take)");
  Tensor m = table_to_matrix(table, spec.columns, rows, spec.path);
  for (int64_t& r : rows) r = source_row[static_cast<size_t>(r)];
  if (!spec.allow_nonfinite) check_finite(m, spec.columns, rows, spec.path);
  set.picked = std::move(rows);
  set.arrays.emplace_back(spec.input_name, std::move(m));
  return set;
}

CalibrationSet build_from_yuv(const CalibrationSetSpec& spec) {
  if (spec.sample.mode == SampleMode::Stratified)
    throw Error("--sample", "stratified sampling needs a table source (--parquet or --csv)");
  if (!spec.by_column.empty()) throw Error("--by", "is only used with --sample stratified");
  const int64_t count = yuv_frame_count(spec.path, spec.yuv);
  std::vector<int64_t> frames = spec.frames;
  // Check every listed frame, not only the ones sampling happens to pick.
  for (int64_t f : frames)
    if (f < 0 || f >= count)
      throw Error(spec.path, "frame " + std::to_string(f) + " is past the end (the file has " + std::to_string(count) +
                                 " frames, 0.." + std::to_string(count - 1) + ")");
  if (frames.empty()) {
    frames.resize(static_cast<size_t>(count));
    std::iota(frames.begin(), frames.end(), int64_t{0});
  }
  std::vector<int64_t> idx = sample_rows(static_cast<int64_t>(frames.size()), spec.sample);
  if (idx.empty()) throw Error(spec.path, "the calibration set would be empty (no frames to take)");
  CalibrationSet set;
  set.source_rows = static_cast<int64_t>(frames.size());
  for (int64_t i : idx) set.picked.push_back(frames[static_cast<size_t>(i)]);
  Tensor t = read_yuv_luma(spec.path, spec.yuv, set.picked, spec.geometry);
  set.arrays.emplace_back(spec.input_name, std::move(t));
  return set;
}

}  // namespace

CalibrationSet build_calibration_set(const CalibrationSetSpec& spec) {
  if (spec.input_name.empty()) throw Error("--input-name", "must not be empty");
  if (spec.sample.n == 0) throw Error("--n", "must be at least 1");
  switch (spec.source) {
    case CalibrationSetSpec::Source::Parquet:
    case CalibrationSetSpec::Source::Csv:
      return build_from_table(spec);
    case CalibrationSetSpec::Source::Yuv:
      return build_from_yuv(spec);
  }
  throw Error("unknown calibration source");
}

}  // namespace tinyq
