// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// CSV feature tables (RFC 4180): a header row naming the columns, comma-separated fields,
// "quoted" fields that may hold commas, newlines and "" escapes, LF or CRLF line ends, an
// optional UTF-8 byte-order mark. Empty cells are nulls.

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "common/file_util.h"
#include "tinyq/calibration.h"
#include "tinyq/error.h"

namespace tinyq {
namespace {

class CsvParser {
 public:
  CsvParser(const std::string& text, const std::string& subject) : s_(text), subject_(subject) {
    if (s_.compare(0, 3, "\xEF\xBB\xBF") == 0) pos_ = 3;
  }

  /// Reads the next record into `fields`; false at the end of the text. Blank lines are skipped.
  bool next(std::vector<std::string>& fields) {
    fields.clear();
    while (pos_ < s_.size() && (s_[pos_] == '\n' || s_[pos_] == '\r')) {
      if (s_[pos_] == '\n') ++line_;
      ++pos_;
    }
    if (pos_ >= s_.size()) return false;
    record_line_ = line_;
    std::string field;
    while (true) {
      if (pos_ < s_.size() && s_[pos_] == '"') {
        // Quoted field: runs to the next lone quote; "" is a literal quote.
        ++pos_;
        while (true) {
          if (pos_ >= s_.size()) throw Error(subject_, "line " + std::to_string(record_line_) + ": unterminated quoted field");
          char c = s_[pos_++];
          if (c == '"') {
            if (pos_ < s_.size() && s_[pos_] == '"') {
              field += '"';
              ++pos_;
              continue;
            }
            break;
          }
          if (c == '\n') ++line_;
          field += c;
        }
        if (pos_ < s_.size() && s_[pos_] != ',' && s_[pos_] != '\n' && s_[pos_] != '\r')
          throw Error(subject_, "line " + std::to_string(line_) + ": text after a closing quote");
      } else {
        size_t end = s_.find_first_of(",\r\n", pos_);
        if (end == std::string::npos) end = s_.size();
        field.assign(s_, pos_, end - pos_);
        pos_ = end;
      }
      fields.push_back(std::move(field));
      field.clear();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      // End of record: CRLF, LF, lone CR, or end of text.
      if (pos_ < s_.size() && s_[pos_] == '\r') ++pos_;
      if (pos_ < s_.size() && s_[pos_] == '\n') {
        ++pos_;
        ++line_;
      }
      return true;
    }
  }
  /// 1-based line where the last record started.
  int64_t line() const { return record_line_; }

 private:
  const std::string& s_;
  std::string subject_;
  size_t pos_ = 0;
  int64_t line_ = 1;
  int64_t record_line_ = 1;
};

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

/// Parses a whole cell as a number of type T; false when it is not one.
template <typename T>
bool parse_number(const std::string& cell, T& out) {
  const char* b = cell.data();
  const char* e = b + cell.size();
  if (b != e && *b == '+') ++b;  // from_chars takes no leading '+'
  if (b == e) return false;
  auto r = std::from_chars(b, e, out);
  if (r.ec == std::errc::result_out_of_range) {
    // Overflow to ±inf and underflow to 0, as strtod would (from_chars leaves `out` untouched).
    // Out-of-range double -> float casts are undefined, so saturate by hand.
    double d = std::strtod(std::string(b, e).c_str(), nullptr);
    if (std::fabs(d) > static_cast<double>(std::numeric_limits<T>::max()))
      out = d > 0 ? std::numeric_limits<T>::infinity() : -std::numeric_limits<T>::infinity();
    else
      out = static_cast<T>(d);
    return true;
  }
  return r.ec == std::errc() && r.ptr == e;
}

}  // namespace

FeatureTable read_csv(const std::string& path, const std::vector<std::string>& columns, const std::string& by_column,
                      const CsvLimits& limits) {
  const std::string text = read_file_bounded(path, limits.max_file_bytes);
  CsvParser csv(text, path);
  std::vector<std::string> header;
  if (!csv.next(header)) throw Error(path, "CSV file is empty (a header row naming the columns is required)");
  for (auto& h : header) h = trim(h);

  auto index_of = [&](const std::string& name) {
    size_t found = header.size();
    for (size_t i = 0; i < header.size(); ++i) {
      if (header[i] != name) continue;
      if (found != header.size()) throw Error(path, "the header names column '" + name + "' twice");
      found = i;
    }
    if (found == header.size()) {
      std::string have;
      for (size_t i = 0; i < header.size() && i < 30; ++i) have += (i ? ", " : "") + header[i];
      throw Error(path, "no column '" + name + "' in the CSV header (it has: " + have + ")");
    }
    return found;
  };

  std::vector<size_t> idx;
  for (const auto& c : columns) idx.push_back(index_of(c));
  const bool by_extra = !by_column.empty() && std::find(columns.begin(), columns.end(), by_column) == columns.end();
  const size_t by_idx = by_extra ? index_of(by_column) : 0;

  std::vector<std::vector<float>> values(columns.size());
  std::vector<std::vector<uint8_t>> present(columns.size());
  std::vector<std::string> by_cells;
  std::vector<uint8_t> by_present;
  std::vector<std::string> fields;
  int64_t rows = 0;
  while (csv.next(fields)) {
    if (fields.size() != header.size())
      throw Error(path, "line " + std::to_string(csv.line()) + " has " + std::to_string(fields.size()) +
                            " fields but the header has " + std::to_string(header.size()));
    for (size_t j = 0; j < idx.size(); ++j) {
      std::string cell = trim(fields[idx[j]]);
      float v = 0.0f;
      bool here = !cell.empty();
      if (here && !parse_number(cell, v))
        throw Error(path, "line " + std::to_string(csv.line()) + ", column '" + columns[j] + "': '" + cell +
                              "' is not a number");
      values[j].push_back(here ? v : 0.0f);
      present[j].push_back(here ? 1 : 0);
    }
    if (by_extra) {
      std::string cell = trim(fields[by_idx]);
      by_present.push_back(cell.empty() ? 0 : 1);
      by_cells.push_back(std::move(cell));
    }
    ++rows;
  }

  FeatureTable table;
  table.rows = rows;
  auto finish_present = [](std::vector<uint8_t>& p) {
    if (std::find(p.begin(), p.end(), uint8_t{0}) == p.end()) p.clear();
  };
  for (size_t j = 0; j < columns.size(); ++j) {
    FeatureColumn c;
    c.name = columns[j];
    c.values = Tensor::from_vector<float>(Shape{rows}, values[j]);
    c.present = std::move(present[j]);
    finish_present(c.present);
    table.columns.push_back(std::move(c));
  }
  if (by_extra) {
    // Numeric when every non-empty cell is a number (so bins and numeric order apply), else
    // strings (one stratum per distinct text).
    FeatureColumn c;
    c.name = by_column;
    std::vector<double> nums(by_cells.size(), 0.0);
    bool numeric = true;
    for (size_t r = 0; r < by_cells.size() && numeric; ++r)
      if (by_present[r]) numeric = parse_number(by_cells[r], nums[r]);
    if (numeric)
      c.values = Tensor::from_vector<double>(Shape{rows}, nums);
    else
      c.strings = std::move(by_cells);
    c.present = std::move(by_present);
    finish_present(c.present);
    table.columns.push_back(std::move(c));
  }
  return table;
}

}  // namespace tinyq
