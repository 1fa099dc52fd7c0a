// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include "quant/calibrate_range.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace tinyq::quant {
namespace {

constexpr int kLevels = 256;  // 8-bit activations, int8 or uint8 alike

std::pair<float, float> observed(const MinMaxCollector& mm) {
  if (mm.empty()) return {0.0f, 0.0f};
  return {mm.min, mm.max};
}

// Keeps a chosen range inside what the samples held: no method may widen minmax's range.
std::pair<float, float> clamp_to_observed(double lo, double hi, const MinMaxCollector& mm) {
  float a = static_cast<float>(std::max(lo, static_cast<double>(mm.min)));
  float b = static_cast<float>(std::min(hi, static_cast<double>(mm.max)));
  if (a > b) std::swap(a, b);
  return {a, b};
}

// TensorRT's smoothing: zero entries get eps, taken evenly from the non-zero ones, so the KL
// divergence stays finite where the reference has mass the candidate lacks only by rounding.
bool smooth(std::vector<double>& d) {
  constexpr double kEps = 1e-4;
  size_t zeros = 0;
  for (double v : d) zeros += v == 0.0;
  const size_t nonzeros = d.size() - zeros;
  if (nonzeros == 0) return false;
  const double take = kEps * static_cast<double>(zeros) / static_cast<double>(nonzeros);
  for (double& v : d) v = v == 0.0 ? kEps : v - take;
  for (double v : d)
    if (v <= 0.0) return false;
  return true;
}

// KL(P || Q) for the histogram window [start, stop): P is the window with everything outside
// added to its end bins (what clipping at the window's edges does), Q is the window merged into
// `levels` bins (what quantisation keeps) and spread back over P's non-empty bins.
double window_kl(const std::vector<int64_t>& counts, int start, int stop, int levels) {
  const int n = stop - start;
  int64_t left = 0, right = 0;
  for (int i = 0; i < start; ++i) left += counts[static_cast<size_t>(i)];
  for (size_t i = static_cast<size_t>(stop); i < counts.size(); ++i) right += counts[i];
  std::vector<double> p(static_cast<size_t>(n)), q(static_cast<size_t>(n), 0.0);
  for (int j = 0; j < n; ++j) p[static_cast<size_t>(j)] = static_cast<double>(counts[static_cast<size_t>(start + j)]);
  p.front() += static_cast<double>(left);
  p.back() += static_cast<double>(right);
  const int groups = std::min(levels, n);
  for (int g = 0; g < groups; ++g) {
    const int b0 = static_cast<int>(static_cast<int64_t>(g) * n / groups);
    const int b1 = static_cast<int>(static_cast<int64_t>(g + 1) * n / groups);
    double sum = 0.0;
    int nonzero = 0;
    for (int j = b0; j < b1; ++j) {
      sum += static_cast<double>(counts[static_cast<size_t>(start + j)]);
      nonzero += p[static_cast<size_t>(j)] != 0.0;
    }
    if (nonzero == 0) continue;
    for (int j = b0; j < b1; ++j)
      if (p[static_cast<size_t>(j)] != 0.0) q[static_cast<size_t>(j)] = sum / nonzero;
  }
  if (!smooth(p) || !smooth(q)) return std::numeric_limits<double>::infinity();
  double sp = 0.0, sq = 0.0;
  for (int j = 0; j < n; ++j) {
    sp += p[static_cast<size_t>(j)];
    sq += q[static_cast<size_t>(j)];
  }
  double kl = 0.0;
  for (int j = 0; j < n; ++j) {
    const double pj = p[static_cast<size_t>(j)] / sp, qj = q[static_cast<size_t>(j)] / sq;
    kl += pj * std::log(pj / qj);
  }
  return kl;
}

}  // namespace

HistogramCollector make_histogram(CalibrationMethod method, const MinMaxCollector& mm, int bins) {
  const auto [mn, mx] = observed(mm);
  const double absmax = std::max(std::fabs(static_cast<double>(mn)), std::fabs(static_cast<double>(mx)));
  switch (method) {
    case CalibrationMethod::Percentile:
      return HistogramCollector(0.0, absmax, bins, /*absolute=*/true);
    case CalibrationMethod::Entropy:
      if (mn >= 0.0f) return HistogramCollector(0.0, mx, bins, false);
      return HistogramCollector(-absmax, absmax, bins + (bins % 2), false);  // even: 0 is an edge
    case CalibrationMethod::Mse:
      return HistogramCollector(mn, mx, bins, false);
    case CalibrationMethod::MinMax:
      break;
  }
  return HistogramCollector();
}

std::pair<float, float> percentile_range(const HistogramCollector& hist, const MinMaxCollector& mm,
                                         double percentile) {
  const int64_t total = hist.total();
  if (total == 0 || hist.width() <= 0.0) return observed(mm);
  // The first bin where the cumulative share reaches the percentile; its right edge is the
  // threshold, so 100 keeps everything (ONNX Runtime takes the left edge, which clips a sliver
  // even at 100).
  const double target = percentile / 100.0 * static_cast<double>(total);
  int64_t cum = 0;
  int idx = hist.bins() - 1;
  for (int i = 0; i < hist.bins(); ++i) {
    cum += hist.counts[static_cast<size_t>(i)];
    if (static_cast<double>(cum) >= target) {
      idx = i;
      break;
    }
  }
  const double thr = hist.edge(idx + 1);
  return clamp_to_observed(-thr, thr, mm);
}

std::pair<float, float> entropy_range(const HistogramCollector& hist, const MinMaxCollector& mm, int levels) {
  const int bins = hist.bins();
  if (hist.total() == 0 || hist.width() <= 0.0 || bins < 2) return observed(mm);
  // Exact zeros (a ReLU's output is often half zeros) pile into the bin starting at 0; left
  // alone, that spike dominates the divergence and the search prefers windows so narrow that
  // the spike keeps a quantised bin to itself, clipping far too much. As NVIDIA's
  // pytorch-quantization does, the zero bin takes its neighbour's count for the search.
  std::vector<int64_t> counts = hist.counts;
  const int zero_bin = hist.lo >= 0.0 ? 0 : bins / 2;
  if (zero_bin + 1 < bins) counts[static_cast<size_t>(zero_bin)] = counts[static_cast<size_t>(zero_bin + 1)];
  double best = std::numeric_limits<double>::infinity();
  double lo = hist.lo, hi = hist.hi;
  if (hist.lo >= 0.0) {
    // Non-negative tensor: windows [0, edge(k)), all `levels` values over them.
    for (int k = std::min(levels, bins); k <= bins; ++k) {
      const double kl = window_kl(counts, 0, k, levels);
      if (kl < best) {
        best = kl;
        lo = 0.0;
        hi = hist.edge(k);
      }
    }
  } else {
    // Two-sided: symmetric windows around the zero edge in the middle.
    const int zero = bins / 2;
    for (int half = std::min(levels / 2, zero); half <= zero; ++half) {
      const double kl = window_kl(counts, zero - half, zero + half, levels);
      if (kl < best) {
        best = kl;
        lo = hist.edge(zero - half);
        hi = hist.edge(zero + half);
      }
    }
  }
  return clamp_to_observed(lo, hi, mm);
}

double quant_error_integral(double u, double v, double lo, double hi) {
  if (!(v > u)) return 0.0;
  lo = std::min(lo, 0.0);
  hi = std::max(hi, 0.0);
  const double s = (hi - lo) / (kLevels - 1);
  if (!(s > 0.0)) {
    // Everything quantises to 0.
    return (v * v * v - u * u * u) / 3.0;
  }
  const double z = std::nearbyint(-lo / s);
  const double m0 = -z * s, m1 = (kLevels - 1 - z) * s;  // the representable ends
  double total = 0.0;
  auto clip_part = [](double a, double b, double m) { return ((b - m) * (b - m) * (b - m) - (a - m) * (a - m) * (a - m)) / 3.0; };
  if (u < m0) total += clip_part(u, std::min(v, m0), m0);
  if (v > m1) total += clip_part(std::max(u, m1), v, m1);
  const double c = std::max(u, m0), d = std::min(v, m1);
  if (d > c) {
    // Rounding error: with cells of width s centred on k*s, G(x) = integral of the squared
    // error from the centre of cell 0; each whole cell adds s^3/12.
    auto g = [s](double x) {
      const double k = std::floor(x / s + 0.5);
      const double r = x - k * s;
      return k * s * s * s / 12.0 + (r * r * r + s * s * s / 8.0) / 3.0;
    };
    total += g(d) - g(c);
  }
  return total;
}

std::pair<float, float> mse_range(const HistogramCollector& hist, const MinMaxCollector& mm) {
  const int bins = hist.bins();
  if (hist.total() == 0 || hist.width() <= 0.0) return observed(mm);
  const double w = hist.width();
  std::vector<int> nonempty;
  for (int i = 0; i < bins; ++i)
    if (hist.counts[static_cast<size_t>(i)] > 0) nonempty.push_back(i);
  auto cost = [&](double lo, double hi) {
    double sum = 0.0;
    for (int i : nonempty) {
      const double u = hist.edge(i), v = u + w;
      sum += static_cast<double>(hist.counts[static_cast<size_t>(i)]) * quant_error_integral(u, v, lo, hi) / w;
    }
    return sum;
  };
  // Candidate ends are bin edges, at most ~512 per side to bound the work; the search runs on
  // one end at a time (the other fixed), twice, starting from the full range.
  const int step = std::max(1, bins / 512);
  double lo = hist.lo, hi = hist.hi;
  double best = cost(lo, hi);
  for (int round = 0; round < 2; ++round) {
    if (hist.hi > 0.0) {
      for (int k = bins; k >= 1; k -= step) {
        const double cand = hist.edge(k);
        if (cand <= 0.0) break;
        const double c = cost(lo, cand);
        if (c < best) {
          best = c;
          hi = cand;
        }
      }
    }
    if (hist.lo < 0.0) {
      for (int k = 0; k < bins; k += step) {
        const double cand = hist.edge(k);
        if (cand >= 0.0) break;
        const double c = cost(cand, hi);
        if (c < best) {
          best = c;
          lo = cand;
        }
      }
    }
  }
  return clamp_to_observed(lo, hi, mm);
}

std::pair<float, float> choose_range(const CalibrationOptions& options, const MinMaxCollector& mm,
                                     const HistogramCollector& hist) {
  switch (options.method) {
    case CalibrationMethod::MinMax:
      return observed(mm);
    case CalibrationMethod::Percentile:
      return percentile_range(hist, mm, options.percentile);
    case CalibrationMethod::Entropy:
      return entropy_range(hist, mm, kLevels);
    case CalibrationMethod::Mse:
      return mse_range(hist, mm);
  }
  return observed(mm);
}

}  // namespace tinyq::quant
