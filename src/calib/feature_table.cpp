// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// FeatureTable helpers: null handling and turning chosen rows into one float32 matrix.

#include <algorithm>
#include <cmath>
#include <limits>

#include "tinyq/calibration.h"
#include "tinyq/error.h"

namespace tinyq {
namespace {

/// A double as float; values beyond float's range become ±inf (a plain cast would be undefined).
float narrow_to_float(double d) {
  constexpr double kMax = static_cast<double>(std::numeric_limits<float>::max());
  if (d > kMax || d < -kMax) {
    // Values that round to FLT_MAX stay finite, as IEEE round-to-nearest would have it.
    const double half_ulp_above = kMax + std::ldexp(1.0, 103);
    if (std::fabs(d) < half_ulp_above) return d > 0 ? std::numeric_limits<float>::max() : -std::numeric_limits<float>::max();
    return d > 0 ? std::numeric_limits<float>::infinity() : -std::numeric_limits<float>::infinity();
  }
  return static_cast<float>(d);  // NaN and in-range values convert as usual
}

/// Value of a numeric column at `row`, converted straight to float (one rounding, not two).
float value_as_float(const Tensor& t, int64_t row) {
  switch (t.dtype()) {
    case DType::F32: return t.data<float>()[row];
    case DType::F64: return narrow_to_float(t.data<double>()[row]);
    case DType::I32: return static_cast<float>(t.data<int32_t>()[row]);
    case DType::I64: return static_cast<float>(t.data<int64_t>()[row]);
    case DType::U32: return static_cast<float>(t.data<uint32_t>()[row]);
    case DType::U64: return static_cast<float>(t.data<uint64_t>()[row]);
    case DType::Bool: return t.data<bool>()[row] ? 1.0f : 0.0f;
    default: break;
  }
  throw Error(std::string("column of type ") + dtype_name(t.dtype()) + " cannot be converted to float");
}

/// Rows `keep` of one column.
FeatureColumn take_rows(const FeatureColumn& c, const std::vector<int64_t>& keep) {
  FeatureColumn out;
  out.name = c.name;
  const auto n = static_cast<int64_t>(keep.size());
  if (c.is_string()) {
    out.strings.reserve(keep.size());
    for (int64_t r : keep) out.strings.push_back(c.strings[static_cast<size_t>(r)]);
  } else {
    out.values = Tensor(c.values.dtype(), Shape{n});
    const size_t es = dtype_size(c.values.dtype());
    const auto* src = static_cast<const uint8_t*>(c.values.raw());
    auto* dst = static_cast<uint8_t*>(out.values.raw());
    for (int64_t i = 0; i < n; ++i)
      std::copy_n(src + static_cast<size_t>(keep[static_cast<size_t>(i)]) * es, es, dst + static_cast<size_t>(i) * es);
  }
  if (!c.present.empty()) {
    bool any_null = false;
    out.present.reserve(keep.size());
    for (int64_t r : keep) {
      out.present.push_back(c.present[static_cast<size_t>(r)]);
      any_null |= out.present.back() == 0;
    }
    if (!any_null) out.present.clear();
  }
  return out;
}

}  // namespace

int64_t FeatureColumn::null_count() const {
  return static_cast<int64_t>(std::count(present.begin(), present.end(), uint8_t{0}));
}

const FeatureColumn* FeatureTable::find(const std::string& name) const {
  for (const auto& c : columns)
    if (c.name == name) return &c;
  return nullptr;
}

void require_no_nulls(const FeatureTable& table, const std::string& subject) {
  for (const auto& c : table.columns) {
    int64_t nulls = c.null_count();
    if (nulls == 0) continue;
    int64_t first = 0;
    while (!c.is_null(first)) ++first;
    throw Error(subject, "column '" + c.name + "' has " + std::to_string(nulls) + " null value" +
                             (nulls == 1 ? "" : "s") + " (first at row " + std::to_string(first) +
                             "); pass --drop-null to skip those rows");
  }
}

FeatureTable drop_null_rows(const FeatureTable& table) {
  std::vector<int64_t> keep;
  keep.reserve(static_cast<size_t>(table.rows));
  for (int64_t r = 0; r < table.rows; ++r) {
    bool ok = true;
    for (const auto& c : table.columns) ok = ok && !c.is_null(r);
    if (ok) keep.push_back(r);
  }
  FeatureTable out;
  out.rows = static_cast<int64_t>(keep.size());
  for (const auto& c : table.columns) out.columns.push_back(take_rows(c, keep));
  return out;
}

Tensor table_to_matrix(const FeatureTable& table, const std::vector<std::string>& columns,
                       const std::vector<int64_t>& rows, const std::string& subject) {
  std::vector<const FeatureColumn*> cols;
  for (const auto& name : columns) {
    const FeatureColumn* c = table.find(name);
    if (!c) throw Error(subject, "no column '" + name + "'");
    if (c->is_string())
      throw Error(subject, "column '" + name + "' holds strings; calibration features must be numeric");
    cols.push_back(c);
  }
  const auto n = static_cast<int64_t>(rows.size());
  const auto k = static_cast<int64_t>(cols.size());
  Tensor out(DType::F32, Shape{n, k});
  float* dst = out.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    int64_t r = rows[static_cast<size_t>(i)];
    if (r < 0 || r >= table.rows) throw Error(subject, "row " + std::to_string(r) + " is out of range");
    for (int64_t j = 0; j < k; ++j) {
      const FeatureColumn& c = *cols[static_cast<size_t>(j)];
      if (c.is_null(r))
        throw Error(subject, "column '" + c.name + "' is null at row " + std::to_string(r));
      dst[i * k + j] = value_as_float(c.values, r);
    }
  }
  return out;
}

}  // namespace tinyq
