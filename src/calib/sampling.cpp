// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// Row sampling for calibration sets: first / random / stratified, deterministic by seed.
//
// The generator is written out here (splitmix64 + rejection for bounded integers) rather than
// taken from <random>: std::uniform_int_distribution differs between standard libraries, and
// a calibration set must be the same file on every machine for the same seed.

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include "tinyq/calibration.h"
#include "tinyq/error.h"

namespace tinyq {
namespace {

class SampleRng {
 public:
  explicit SampleRng(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    // splitmix64 (Steele, Lea, Flood 2014).
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  /// Uniform in [0, bound): rejects the top partial block so every value is equally likely.
  uint64_t below(uint64_t bound) {
    const uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    uint64_t x;
    do x = next();
    while (x >= limit);
    return x % bound;
  }

 private:
  uint64_t state_;
};

/// k distinct items of `pool`, chosen uniformly (partial Fisher-Yates); `pool` is reordered.
void pick_random(std::vector<int64_t>& pool, size_t k, SampleRng& rng, std::vector<int64_t>& out) {
  for (size_t i = 0; i < k; ++i) {
    size_t j = i + static_cast<size_t>(rng.below(pool.size() - i));
    std::swap(pool[i], pool[j]);
    out.push_back(pool[i]);
  }
}

double numeric_at(const Tensor& t, int64_t row) {
  switch (t.dtype()) {
    case DType::F32: return t.data<float>()[row];
    case DType::F64: return t.data<double>()[row];
    case DType::I32: return t.data<int32_t>()[row];
    case DType::I64: return static_cast<double>(t.data<int64_t>()[row]);
    case DType::U32: return t.data<uint32_t>()[row];
    case DType::U64: return static_cast<double>(t.data<uint64_t>()[row]);
    case DType::Bool: return t.data<bool>()[row] ? 1.0 : 0.0;
    default: break;
  }
  throw Error("--by", std::string("column type ") + dtype_name(t.dtype()) + " cannot be used for strata");
}

/// Row lists of each stratum, in a fixed order (sorted keys, or bins from low to high).
std::vector<std::vector<int64_t>> make_strata(int64_t rows, const FeatureColumn& by, int64_t bins) {
  const std::string subject = "--by " + by.name;
  if (by.null_count() > 0)
    throw Error(subject, "the stratification column has " + std::to_string(by.null_count()) + " null values");
  std::vector<std::vector<int64_t>> strata;
  if (by.is_string()) {
    if (static_cast<int64_t>(by.strings.size()) != rows) throw Error(subject, "column length does not match the table");
    std::map<std::string, std::vector<int64_t>> groups;
    for (int64_t r = 0; r < rows; ++r) groups[by.strings[static_cast<size_t>(r)]].push_back(r);
    for (auto& g : groups) strata.push_back(std::move(g.second));
    return strata;
  }
  if (by.values.numel() != rows) throw Error(subject, "column length does not match the table");
  std::vector<double> v(static_cast<size_t>(rows));
  int64_t nonfinite = 0;
  for (int64_t r = 0; r < rows; ++r) {
    v[static_cast<size_t>(r)] = numeric_at(by.values, r);
    nonfinite += std::isfinite(v[static_cast<size_t>(r)]) ? 0 : 1;
  }
  if (nonfinite) throw Error(subject, "the stratification column has " + std::to_string(nonfinite) + " NaN or infinite values");
  std::map<double, std::vector<int64_t>> groups;
  bool few = true;
  for (int64_t r = 0; r < rows && few; ++r) {
    groups[v[static_cast<size_t>(r)]].push_back(r);
    few = static_cast<int64_t>(groups.size()) <= bins;
  }
  if (few) {
    for (auto& g : groups) strata.push_back(std::move(g.second));
    return strata;
  }
  // Equal-count bins over the rows sorted by value (ties broken by row number, so the split is
  // fully determined): bin b takes ranks [b * rows / bins, (b + 1) * rows / bins).
  std::vector<int64_t> order(static_cast<size_t>(rows));
  std::iota(order.begin(), order.end(), int64_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return v[static_cast<size_t>(a)] < v[static_cast<size_t>(b)]; });
  for (int64_t b = 0; b < bins; ++b) {
    int64_t lo = b * rows / bins, hi = (b + 1) * rows / bins;
    strata.emplace_back(order.begin() + lo, order.begin() + hi);
  }
  return strata;
}

}  // namespace

SampleMode parse_sample_mode(const std::string& text) {
  if (text == "first") return SampleMode::First;
  if (text == "random") return SampleMode::Random;
  if (text == "stratified") return SampleMode::Stratified;
  throw Error("--sample", "'" + text + "' is not a sampling mode (first, random or stratified)");
}

std::vector<int64_t> sample_rows(int64_t rows, const SampleOptions& options, const FeatureColumn* by) {
  if (rows < 0) throw Error("--n", "negative row count");
  const int64_t n = options.n < 0 ? rows : options.n;
  if (n > rows)
    throw Error("--n", "asks for " + std::to_string(n) + " samples but the source has only " + std::to_string(rows) +
                           (rows == 1 ? " row" : " rows"));
  std::vector<int64_t> out;
  out.reserve(static_cast<size_t>(n));
  SampleRng rng(options.seed);
  switch (options.mode) {
    case SampleMode::First:
      for (int64_t r = 0; r < n; ++r) out.push_back(r);
      return out;
    case SampleMode::Random: {
      std::vector<int64_t> pool(static_cast<size_t>(rows));
      std::iota(pool.begin(), pool.end(), int64_t{0});
      pick_random(pool, static_cast<size_t>(n), rng, out);
      break;
    }
    case SampleMode::Stratified: {
      if (!by) throw Error("--sample", "stratified sampling needs --by COLUMN");
      if (options.bins < 1) throw Error("--bins", "must be at least 1");
      if (rows >= (int64_t{1} << 32)) throw Error("--sample", "stratified sampling takes at most 2^32 rows");
      auto strata = make_strata(rows, *by, options.bins);
      // Proportional allocation by largest remainders: stratum s gets floor(n * size_s / rows)
      // and the leftover samples go to the largest fractional parts (ties: earlier stratum).
      // floor + 1 never exceeds the stratum's size, since a fractional part > 0 means
      // n * size_s / rows < size_s.
      std::vector<int64_t> quota(strata.size());
      std::vector<std::pair<int64_t, size_t>> remainder;  // (n * size_s mod rows, s)
      int64_t given = 0;
      for (size_t s = 0; s < strata.size(); ++s) {
        // n, size <= rows < 2^32, so n * size fits in 64 bits.
        const auto size = static_cast<uint64_t>(strata[s].size());
        const uint64_t prod = static_cast<uint64_t>(n) * size;
        quota[s] = static_cast<int64_t>(prod / static_cast<uint64_t>(rows));
        remainder.emplace_back(static_cast<int64_t>(prod % static_cast<uint64_t>(rows)), s);
        given += quota[s];
      }
      std::stable_sort(remainder.begin(), remainder.end(),
                       [](const auto& a, const auto& b) { return a.first > b.first; });
      for (size_t i = 0; given < n && i < remainder.size(); ++i, ++given) ++quota[remainder[i].second];
      for (size_t s = 0; s < strata.size(); ++s) pick_random(strata[s], static_cast<size_t>(quota[s]), rng, out);
      break;
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace tinyq
