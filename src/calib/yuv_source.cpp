// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// Raw planar YUV 4:2:0 (the .yuv files of video-quality work): frames back to back, each
// Y (W x H) then U and V ((W+1)/2 x (H+1)/2). yuv420p stores one byte per sample;
// yuv420p10le two little-endian bytes holding 0..1023. Only the luma plane is used: the image
// models calibrated from these take one channel.


#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <set>

#include "common/file_util.h"
#include "tinyq/calibration.h"
#include "tinyq/error.h"

namespace tinyq {
namespace {

constexpr int64_t kMaxDim = 1 << 16;
constexpr uint64_t kMaxOutputBytes = 4ull << 30;
constexpr size_t kMaxFrameList = 1000000;

uint64_t bytes_per_sample(YuvFormat f) { return f == YuvFormat::Yuv420p10le ? 2 : 1; }

void check_spec(const YuvFrameSpec& spec) {
  if (spec.width < 1 || spec.height < 1 || spec.width > kMaxDim || spec.height > kMaxDim)
    throw Error("--size", std::to_string(spec.width) + "x" + std::to_string(spec.height) +
                              " is not a frame size tinyq accepts (1..65536 each way)");
}

int64_t frame_count_of(uint64_t file_bytes, const YuvFrameSpec& spec, const std::string& path) {
  const uint64_t fb = yuv_frame_bytes(spec);
  const char* fmt = spec.format == YuvFormat::Yuv420p10le ? "yuv420p10le" : "yuv420p";
  std::string what = std::to_string(spec.width) + "x" + std::to_string(spec.height) + " " + fmt + " frames (" +
                     std::to_string(fb) + " bytes each)";
  if (file_bytes == 0) throw Error(path, "file is empty");
  if (file_bytes % fb != 0)
    throw Error(path, "file size " + std::to_string(file_bytes) + " is not a whole number of " + what +
                          "; check --size and --format");
  return static_cast<int64_t>(file_bytes / fb);
}

}  // namespace

YuvFormat parse_yuv_format(const std::string& text) {
  if (text == "yuv420p") return YuvFormat::Yuv420p;
  if (text == "yuv420p10le") return YuvFormat::Yuv420p10le;
  throw Error("--format", "'" + text + "' is not a supported pixel format (yuv420p or yuv420p10le)");
}

uint64_t yuv_frame_bytes(const YuvFrameSpec& spec) {
  check_spec(spec);
  const auto w = static_cast<uint64_t>(spec.width), h = static_cast<uint64_t>(spec.height);
  const uint64_t cw = (w + 1) / 2, ch = (h + 1) / 2;
  return (w * h + 2 * cw * ch) * bytes_per_sample(spec.format);
}

int64_t yuv_frame_count(const std::string& path, const YuvFrameSpec& spec) {
  const ReadOnlyFile fd(path);
  return frame_count_of(fd.size(), spec, path);
}

std::pair<int64_t, int64_t> parse_size_spec(const std::string& text, const std::string& what) {
  size_t x = text.find('x');
  auto parse_dim = [&](const std::string& s) -> int64_t {
    if (s.empty() || s.size() > 6 || s.find_first_not_of("0123456789") != std::string::npos) return -1;
    return std::stoll(s);
  };
  if (x != std::string::npos) {
    int64_t w = parse_dim(text.substr(0, x)), h = parse_dim(text.substr(x + 1));
    if (w >= 1 && h >= 1 && w <= kMaxDim && h <= kMaxDim) return {w, h};
  }
  throw Error(what, "'" + text + "' is not a size WIDTHxHEIGHT (e.g. 224x224, each 1..65536)");
}

std::vector<int64_t> parse_frame_list(const std::string& text) {
  auto bad = [&](const std::string& why) -> Error {
    return Error("--frames", "'" + text + "' is not a frame list (" + why + "); use e.g. 0,10,20 or 0:300:10");
  };
  auto parse_int = [&](const std::string& s) -> int64_t {
    if (s.empty() || s.size() > 12 || s.find_first_not_of("0123456789") != std::string::npos)
      throw bad("'" + s + "' is not a frame number");
    return std::stoll(s);
  };
  std::vector<int64_t> out;
  std::set<int64_t> seen;
  auto add = [&](int64_t f) {
    if (!seen.insert(f).second) throw bad("frame " + std::to_string(f) + " is listed twice");
    if (out.size() >= kMaxFrameList) throw bad("more than " + std::to_string(kMaxFrameList) + " frames");
    out.push_back(f);
  };
  if (text.empty()) throw bad("it is empty");
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    std::string tok = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    size_t c1 = tok.find(':');
    if (c1 == std::string::npos) {
      add(parse_int(tok));
    } else {
      size_t c2 = tok.find(':', c1 + 1);
      int64_t a = parse_int(tok.substr(0, c1));
      int64_t b = parse_int(tok.substr(c1 + 1, c2 == std::string::npos ? std::string::npos : c2 - c1 - 1));
      int64_t step = c2 == std::string::npos ? 1 : parse_int(tok.substr(c2 + 1));
      if (step < 1) throw bad("a range step must be at least 1");
      if (b <= a) throw bad("range " + tok + " is empty");
      if (static_cast<uint64_t>((b - a + step - 1) / step) > kMaxFrameList - out.size())
        throw bad("more than " + std::to_string(kMaxFrameList) + " frames");
      for (int64_t f = a; f < b; f += step) add(f);
    }
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

std::vector<float> luma_center_crop(const std::vector<float>& src, int64_t width, int64_t height, int64_t out_width,
                                    int64_t out_height) {
  if (out_width > width || out_height > height)
    throw Error("--crop", std::to_string(out_width) + "x" + std::to_string(out_height) + " is larger than the " +
                              std::to_string(width) + "x" + std::to_string(height) + " frame");
  const int64_t x0 = (width - out_width) / 2, y0 = (height - out_height) / 2;
  std::vector<float> dst(static_cast<size_t>(out_width * out_height));
  for (int64_t y = 0; y < out_height; ++y)
    std::copy_n(src.begin() + (y0 + y) * width + x0, out_width, dst.begin() + y * out_width);
  return dst;
}

std::vector<float> luma_resize_bilinear(const std::vector<float>& src, int64_t width, int64_t height,
                                        int64_t out_width, int64_t out_height) {
  // Source coordinate of output pixel centre i: (i + 0.5) * in / out - 0.5, clamped to the
  // image; the value mixes the two neighbouring pixels on each axis.
  struct Tap {
    int64_t i0, i1;
    float w1;
  };
  auto taps = [](int64_t in, int64_t out) {
    std::vector<Tap> t(static_cast<size_t>(out));
    const double scale = static_cast<double>(in) / static_cast<double>(out);
    for (int64_t i = 0; i < out; ++i) {
      double x = (static_cast<double>(i) + 0.5) * scale - 0.5;
      x = std::min(std::max(x, 0.0), static_cast<double>(in - 1));
      auto x0 = static_cast<int64_t>(std::floor(x));
      int64_t x1 = std::min(x0 + 1, in - 1);
      t[static_cast<size_t>(i)] = {x0, x1, static_cast<float>(x - static_cast<double>(x0))};
    }
    return t;
  };
  const auto tx = taps(width, out_width), ty = taps(height, out_height);
  std::vector<float> dst(static_cast<size_t>(out_width * out_height));
  for (int64_t y = 0; y < out_height; ++y) {
    const Tap& a = ty[static_cast<size_t>(y)];
    const float* r0 = src.data() + a.i0 * width;
    const float* r1 = src.data() + a.i1 * width;
    for (int64_t x = 0; x < out_width; ++x) {
      const Tap& b = tx[static_cast<size_t>(x)];
      float top = r0[b.i0] + (r0[b.i1] - r0[b.i0]) * b.w1;
      float bottom = r1[b.i0] + (r1[b.i1] - r1[b.i0]) * b.w1;
      dst[static_cast<size_t>(y * out_width + x)] = top + (bottom - top) * a.w1;
    }
  }
  return dst;
}

Tensor read_yuv_luma(const std::string& path, const YuvFrameSpec& spec, const std::vector<int64_t>& frames,
                     const LumaGeometry& geometry) {
  check_spec(spec);
  const ReadOnlyFile fd(path);
  const int64_t count = frame_count_of(fd.size(), spec, path);
  for (int64_t f : frames)
    if (f < 0 || f >= count)
      throw Error(path, "frame " + std::to_string(f) + " is past the end (the file has " + std::to_string(count) +
                            " frames, 0.." + std::to_string(count - 1) + ")");
  int64_t out_w = spec.width, out_h = spec.height;
  if (geometry.mode != LumaGeometry::Mode::Full) {
    const char* opt = geometry.mode == LumaGeometry::Mode::CenterCrop ? "--crop" : "--resize";
    if (geometry.width < 1 || geometry.height < 1 || geometry.width > kMaxDim || geometry.height > kMaxDim)
      throw Error(opt, "output size must be 1..65536 each way");
    if (geometry.mode == LumaGeometry::Mode::CenterCrop && (geometry.width > spec.width || geometry.height > spec.height))
      throw Error(opt, std::to_string(geometry.width) + "x" + std::to_string(geometry.height) + " is larger than the " +
                           std::to_string(spec.width) + "x" + std::to_string(spec.height) + " frame");
    out_w = geometry.width;
    out_h = geometry.height;
  }
  const auto n = static_cast<uint64_t>(frames.size());
  const uint64_t plane_out = static_cast<uint64_t>(out_w) * static_cast<uint64_t>(out_h);
  if (n > 0 && plane_out * 4 > kMaxOutputBytes / n)
    throw Error(path, std::to_string(n) + " frames of " + std::to_string(out_w) + "x" + std::to_string(out_h) +
                          " floats would take more than 4 GiB");

  const uint64_t frame_bytes = yuv_frame_bytes(spec);
  const uint64_t bps = bytes_per_sample(spec.format);
  const auto plane = static_cast<size_t>(spec.width * spec.height);
  Tensor out(DType::F32, Shape{static_cast<int64_t>(n), 1, out_h, out_w});
  float* dst = out.data<float>();
  std::vector<uint8_t> raw(plane * bps);
  std::vector<float> luma(plane);
  for (uint64_t i = 0; i < n; ++i) {
    const int64_t f = frames[static_cast<size_t>(i)];
    fd.read_at(static_cast<uint64_t>(f) * frame_bytes, raw.data(), raw.size());
    if (spec.format == YuvFormat::Yuv420p) {
      for (size_t k = 0; k < plane; ++k) luma[k] = static_cast<float>(raw[k]) / 255.0f;
    } else {
      for (size_t k = 0; k < plane; ++k) {
        uint32_t v = static_cast<uint32_t>(raw[2 * k]) | (static_cast<uint32_t>(raw[2 * k + 1]) << 8);
        if (v > 1023)
          throw Error(path, "frame " + std::to_string(f) + " has a 10-bit luma sample of " + std::to_string(v) +
                                " (above 1023): is the file really yuv420p10le?");
        luma[k] = static_cast<float>(v) / 1023.0f;
      }
    }
    std::vector<float> shaped;
    switch (geometry.mode) {
      case LumaGeometry::Mode::Full: shaped = luma; break;
      case LumaGeometry::Mode::CenterCrop:
        shaped = luma_center_crop(luma, spec.width, spec.height, out_w, out_h);
        break;
      case LumaGeometry::Mode::Resize:
        shaped = luma_resize_bilinear(luma, spec.width, spec.height, out_w, out_h);
        break;
    }
    std::copy(shaped.begin(), shaped.end(), dst + i * plane_out);
  }
  return out;
}

}  // namespace tinyq
