// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// The gate's HTML report: one self-contained page, inline CSS and SVG, no scripts and nothing
// fetched, written as well-formed XML so any XML parser can check it.

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "tinyq/gate.h"
#include "tinyq/version.h"

namespace tinyq {
namespace {

// Caps the points drawn per scatter: beyond a few thousand, an SVG gets slow to render and no
// easier to read. The worst point is always drawn on top.
constexpr size_t kMaxScatterPoints = 2500;
constexpr int kHistogramBins = 40;

std::string esc(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string num(double v, const char* fmt = "%.4g") {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

// SVG coordinates keep two decimals: enough for a 360-pixel plot, and small files.
std::string px(double v) { return num(v, "%.2f"); }

// Round tick steps (1, 2, 5 x 10^k) covering [lo, hi] with about `count` ticks.
// `min_step` keeps count axes on whole numbers.
std::vector<double> ticks(double lo, double hi, int count, double min_step = 0) {
  std::vector<double> out;
  double span = hi - lo;
  if (!(span > 0) || !std::isfinite(span)) return {lo};
  double raw = std::max(span / count, min_step), mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (raw <= m * mag) {
      step = m * mag;
      break;
    }
  for (double t = std::ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push_back(std::fabs(t) < step * 1e-9 ? 0.0 : t);
  return out;
}

struct Frame {
  double left = 56, top = 14, width = 290, height = 290;
  double x0 = 0, x1 = 1, y0 = 0, y1 = 1;
  double sx(double x) const { return left + (x - x0) / (x1 - x0) * width; }
  double sy(double y) const { return top + height - (y - y0) / (y1 - y0) * height; }
};

void axes(std::ostringstream& os, const Frame& f, const std::string& xlabel, const std::string& ylabel,
          const char* yfmt = "%.4g", double y_min_step = 0) {
  os << "<rect x=\"" << px(f.left) << "\" y=\"" << px(f.top) << "\" width=\"" << px(f.width) << "\" height=\""
     << px(f.height) << "\" class=\"frame\"/>\n";
  for (double t : ticks(f.x0, f.x1, 5)) {
    os << "<line x1=\"" << px(f.sx(t)) << "\" y1=\"" << px(f.top + f.height) << "\" x2=\"" << px(f.sx(t)) << "\" y2=\""
       << px(f.top + f.height + 4) << "\" class=\"tick\"/>"
       << "<text x=\"" << px(f.sx(t)) << "\" y=\"" << px(f.top + f.height + 16) << "\" class=\"tl\" text-anchor=\"middle\">"
       << esc(num(t)) << "</text>\n";
  }
  for (double t : ticks(f.y0, f.y1, 5, y_min_step)) {
    os << "<line x1=\"" << px(f.left - 4) << "\" y1=\"" << px(f.sy(t)) << "\" x2=\"" << px(f.left) << "\" y2=\""
       << px(f.sy(t)) << "\" class=\"tick\"/>"
       << "<text x=\"" << px(f.left - 6) << "\" y=\"" << px(f.sy(t) + 3) << "\" class=\"tl\" text-anchor=\"end\">"
       << esc(num(t, yfmt)) << "</text>\n";
  }
  os << "<text x=\"" << px(f.left + f.width / 2) << "\" y=\"" << px(f.top + f.height + 34)
     << "\" class=\"al\" text-anchor=\"middle\">" << esc(xlabel) << "</text>\n";
  os << "<text x=\"14\" y=\"" << px(f.top + f.height / 2) << "\" class=\"al\" text-anchor=\"middle\" transform=\"rotate(-90 14 "
     << px(f.top + f.height / 2) << ")\">" << esc(ylabel) << "</text>\n";
}

std::string svg_open(const std::string& label) {
  return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"360\" height=\"350\" viewBox=\"0 0 360 350\" role=\"img\" "
         "aria-label=\"" + esc(label) + "\">\n";
}

std::string scatter_svg(const GateRow& r) {
  std::ostringstream os;
  os.exceptions(std::ios::badbit);  // out of memory throws, not a silently cut report
  os << svg_open("int8 against fp32 output for " + r.id);
  double lo = INFINITY, hi = -INFINITY;
  size_t worst = 0;
  double worst_err = -1;
  for (size_t i = 0; i < r.fp32_values.size(); ++i) {
    double a = r.fp32_values[i], b = r.int8_values[i];
    if (!std::isfinite(a) || !std::isfinite(b)) continue;
    lo = std::min({lo, a, b});
    hi = std::max({hi, a, b});
    if (std::fabs(a - b) > worst_err) {
      worst_err = std::fabs(a - b);
      worst = i;
    }
  }
  if (!(hi >= lo)) lo = 0, hi = 1;
  // One range for both axes, so the identity line is the diagonal.
  double pad = hi > lo ? (hi - lo) * 0.05 : std::max(std::fabs(hi) * 0.05, 1e-6);
  Frame f;
  f.x0 = f.y0 = lo - pad;
  f.x1 = f.y1 = hi + pad;
  axes(os, f, "fp32 output", "int8 output");
  os << "<line x1=\"" << px(f.sx(f.x0)) << "\" y1=\"" << px(f.sy(f.y0)) << "\" x2=\"" << px(f.sx(f.x1)) << "\" y2=\""
     << px(f.sy(f.y1)) << "\" class=\"identity\"/>\n<g class=\"pts\">";
  size_t n = r.fp32_values.size();
  size_t stride = n > kMaxScatterPoints ? (n + kMaxScatterPoints - 1) / kMaxScatterPoints : 1;
  // A handful of points (one score per sample) must stand out; thousands must not blot.
  const char* radius = n <= 100 ? "3.5" : "2";
  for (size_t i = 0; i < n; i += stride) {
    double a = r.fp32_values[i], b = r.int8_values[i];
    if (!std::isfinite(a) || !std::isfinite(b)) continue;
    os << "<circle cx=\"" << px(f.sx(a)) << "\" cy=\"" << px(f.sy(b)) << "\" r=\"" << radius << "\"/>";
  }
  os << "</g>\n";
  if (worst_err >= 0)
    os << "<circle cx=\"" << px(f.sx(r.fp32_values[worst])) << "\" cy=\"" << px(f.sy(r.int8_values[worst]))
       << "\" r=\"4\" class=\"worst\"><title>worst |fp32 - int8| = " << esc(num(worst_err)) << "</title></circle>\n";
  if (stride > 1)
    os << "<text x=\"" << px(f.left + 4) << "\" y=\"" << px(f.top + 12) << "\" class=\"tl\">" << n << " values, 1 in " << stride
       << " shown</text>\n";
  os << "</svg>";
  return os.str();
}

std::string histogram_svg(const GateRow& r) {
  std::ostringstream os;
  os.exceptions(std::ios::badbit);  // out of memory throws, not a silently cut report
  os << svg_open("histogram of int8 minus fp32 for " + r.id);
  std::vector<double> err;
  for (size_t i = 0; i < r.fp32_values.size(); ++i) {
    double e = static_cast<double>(r.int8_values[i]) - r.fp32_values[i];
    if (std::isfinite(e)) err.push_back(e);
  }
  double m = 0;
  for (double e : err) m = std::max(m, std::fabs(e));
  if (m == 0) m = 1e-6;
  // Symmetric around zero so a bias shows as a lopsided histogram.
  std::vector<size_t> counts(kHistogramBins, 0);
  for (double e : err) {
    int b = static_cast<int>((e + m) / (2 * m) * kHistogramBins);
    counts[std::clamp(b, 0, kHistogramBins - 1)]++;
  }
  size_t top = std::max<size_t>(1, *std::max_element(counts.begin(), counts.end()));
  Frame f;
  f.x0 = -m;
  f.x1 = m;
  f.y0 = 0;
  f.y1 = static_cast<double>(top) * 1.05;
  axes(os, f, "int8 - fp32", "count", "%.0f", 1.0);
  os << "<g class=\"bars\">";
  for (int b = 0; b < kHistogramBins; ++b) {
    if (!counts[b]) continue;
    double x0 = f.sx(-m + 2 * m * b / kHistogramBins), x1 = f.sx(-m + 2 * m * (b + 1) / kHistogramBins);
    double y = f.sy(static_cast<double>(counts[b]));
    os << "<rect x=\"" << px(x0) << "\" y=\"" << px(y) << "\" width=\"" << px(std::max(0.5, x1 - x0 - 0.5)) << "\" height=\""
       << px(f.top + f.height - y) << "\"><title>" << counts[b] << "</title></rect>";
  }
  os << "</g>\n<line x1=\"" << px(f.sx(0)) << "\" y1=\"" << px(f.top) << "\" x2=\"" << px(f.sx(0)) << "\" y2=\""
     << px(f.top + f.height) << "\" class=\"identity\"/>\n</svg>";
  return os.str();
}

std::string verdict_class(const GateRow& r) { return r.pass() ? "pass" : "fail"; }

std::string numbers_table(const GateRow& r) {
  std::ostringstream os;
  os.exceptions(std::ios::badbit);  // out of memory throws, not a silently cut report
  auto row = [&](const std::string& k, const std::string& v) {
    os << "<tr><th>" << esc(k) << "</th><td>" << esc(v) << "</td></tr>\n";
  };
  os << "<table class=\"numbers\">\n";
  row("PLCC", r.has_numbers ? num(r.plcc, "%.6f") : "undefined");
  row("drop (1 - PLCC)", r.has_numbers ? num(r.drop, "%.6f") : "undefined");
  row("budget", num(r.budget, "%.4f"));
  row("worst |fp32 - int8|", r.values > 0 && r.status != GateStatus::Error ? num(r.worst_abs, "%.4f") : "-");
  row("inputs", r.inputs == "seed" ? "seed: numpy default_rng(0) noise in [0, 1)" : "data (--data)");
  row("output", r.output.empty() ? "-" : r.output);
  row("samples / values", std::to_string(r.samples) + " / " + std::to_string(r.values));
  row("fp32 model", r.fp32_path);
  row("int8 model", r.int8_path);
  if (!r.reason.empty()) row("reason", r.reason);
  os << "</table>";
  return os.str();
}

}  // namespace

std::string gate_html_report(const std::vector<GateRow>& rows, const std::string& title) {
  size_t passed = 0;
  for (const GateRow& r : rows) passed += r.pass() ? 1 : 0;
  std::ostringstream os;
  os.exceptions(std::ios::badbit);  // out of memory throws, not a silently cut report
  os << "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n"
     << "<title>" << esc(title) << "</title>\n<style>\n"
     << "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1f2328;background:#fff}\n"
     << "h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:0 0 8px}\n"
     << ".meta{color:#59636e;margin:0 0 16px}\n"
     << "table{border-collapse:collapse}td,th{padding:3px 10px;text-align:left;border-bottom:1px solid #d1d9e0}\n"
     << "th{font-weight:600;color:#59636e}td.n{text-align:right;font-variant-numeric:tabular-nums}\n"
     << "section{border:1px solid #d1d9e0;border-left:6px solid;border-radius:6px;padding:12px 16px;margin:18px 0}\n"
     << "section.pass{border-left-color:#1a7f37}section.fail{border-left-color:#cf222e}\n"
     << ".badge{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-size:13px;margin-right:8px}\n"
     << ".badge.pass{background:#1a7f37}.badge.fail{background:#cf222e}\n"
     << ".plots{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}\n"
     << "svg .frame{fill:#fafbfc;stroke:#8c959f}svg .tick{stroke:#8c959f}svg .tl{font-size:10px;fill:#59636e}\n"
     << "svg .al{font-size:12px;fill:#1f2328}svg .identity{stroke:#cf222e;stroke-dasharray:5 4;stroke-width:1.2}\n"
     << "svg .pts circle{fill:#0969da;fill-opacity:.6}svg .worst{fill:none;stroke:#cf222e;stroke-width:2}\n"
     << "svg .bars rect{fill:#8250df}\n"
     << "</style>\n</head>\n<body>\n<h1>" << esc(title) << "</h1>\n<p class=\"meta\">" << rows.size() << " gated, "
     << passed << " passed, " << rows.size() - passed << " failed. PASS when 1 - PLCC &lt;= budget. tinyq "
     << esc(version_string()) << " (" << esc(build_commit()) << ").</p>\n";

  os << "<table class=\"overview\">\n<tr><th></th><th>model</th><th>mode</th><th>inputs</th><th>output</th><th>PLCC</th>"
     << "<th>drop</th><th>budget</th><th>worst_abs</th></tr>\n";
  for (size_t i = 0; i < rows.size(); ++i) {
    const GateRow& r = rows[i];
    os << "<tr><td><span class=\"badge " << verdict_class(r) << "\">" << gate_status_name(r.status) << "</span></td>"
       << "<td><a href=\"#row" << i << "\">" << esc(r.id) << "</a></td><td>" << esc(r.mode) << "</td><td>" << esc(r.inputs)
       << "</td><td>" << esc(r.output) << "</td><td class=\"n\">" << (r.has_numbers ? num(r.plcc, "%.6f") : "-")
       << "</td><td class=\"n\">" << (r.has_numbers ? num(r.drop, "%.6f") : "-") << "</td><td class=\"n\">"
       << num(r.budget, "%.4f") << "</td><td class=\"n\">"
       << (r.values > 0 && r.status != GateStatus::Error ? num(r.worst_abs, "%.4f") : "-") << "</td></tr>\n";
  }
  os << "</table>\n";

  for (size_t i = 0; i < rows.size(); ++i) {
    const GateRow& r = rows[i];
    os << "<section id=\"row" << i << "\" class=\"" << verdict_class(r) << "\">\n<h2><span class=\"badge "
       << verdict_class(r) << "\">" << gate_status_name(r.status) << "</span>" << esc(r.id) << " <small>mode=" << esc(r.mode)
       << " inputs=" << esc(r.inputs) << (r.output.empty() ? "" : " output=" + esc(r.output)) << "</small></h2>\n"
       << "<div class=\"plots\">\n";
    if (!r.fp32_values.empty() && r.fp32_values.size() == r.int8_values.size())
      os << scatter_svg(r) << "\n" << histogram_svg(r) << "\n";
    os << numbers_table(r) << "\n</div>\n</section>\n";
  }
  os << "</body>\n</html>\n";
  return os.str();
}

}  // namespace tinyq
