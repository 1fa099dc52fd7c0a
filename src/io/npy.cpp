// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include <cstring>
#include <regex>
#include <sstream>

#include "common/file_util.h"
#include "io/npy_layout.h"
#include "tinyq/error.h"
#include "tinyq/npz.h"

namespace tinyq {
namespace {

const char kMagic[] = "\x93NUMPY";

// numpy's dtype string ('<f4', '|u1', ...) for each supported type.
const char* npy_descr(DType t) {
  switch (t) {
    case DType::F32: return "<f4";
    case DType::F64: return "<f8";
    case DType::F16: return "<f2";
    case DType::I8: return "|i1";
    case DType::U8: return "|u1";
    case DType::I16: return "<i2";
    case DType::U16: return "<u2";
    case DType::I32: return "<i4";
    case DType::U32: return "<u4";
    case DType::I64: return "<i8";
    case DType::U64: return "<u8";
    case DType::Bool: return "|b1";
    default: return nullptr;
  }
}

DType parse_descr(const std::string& d, const std::string& subject) {
  if (d.empty()) throw Error(subject, "npy header has an empty dtype");
  if (d.find('O') != std::string::npos)
    throw Error(subject, "object arrays (pickled Python objects) are refused");
  if (d[0] == '>') throw Error(subject, "big-endian arrays ('" + d + "') are not supported");
  std::string kind = (d[0] == '<' || d[0] == '|' || d[0] == '=') ? d.substr(1) : d;
  static const std::pair<const char*, DType> table[] = {
      {"f4", DType::F32}, {"f8", DType::F64}, {"f2", DType::F16}, {"i1", DType::I8},
      {"u1", DType::U8},  {"i2", DType::I16}, {"u2", DType::U16}, {"i4", DType::I32},
      {"u4", DType::U32}, {"i8", DType::I64}, {"u8", DType::U64}, {"b1", DType::Bool}};
  for (const auto& [name, dtype] : table)
    if (kind == name) return dtype;
  throw Error(subject, "unsupported npy dtype '" + d + "'");
}

}  // namespace

namespace {

// Where the header text of an image starting with `prefix` lies: [start, end), end being where
// the data starts. Checks magic, version and the declared length (see npy_header_bytes).
struct HeaderSpan {
  size_t start, end;
};
HeaderSpan header_span(const std::string& prefix, uint64_t total_bytes, const std::string& subject) {
  if (prefix.size() < 10 || std::memcmp(prefix.data(), kMagic, 6) != 0)
    throw Error(subject, "not a .npy array (bad magic)");
  int major = static_cast<uint8_t>(prefix[6]);
  size_t header_len = 0, header_start = 0;
  if (major == 1) {
    header_len = static_cast<uint8_t>(prefix[8]) | (static_cast<uint8_t>(prefix[9]) << 8);
    header_start = 10;
  } else if (major == 2 || major == 3) {
    if (prefix.size() < 12) throw Error(subject, "truncated .npy header");
    header_len = 0;
    for (int i = 0; i < 4; ++i) header_len |= static_cast<size_t>(static_cast<uint8_t>(prefix[8 + i])) << (8 * i);
    header_start = 12;
  } else {
    throw Error(subject, "unsupported .npy format version " + std::to_string(major));
  }
  if (header_len > kMaxNpyHeaderBytes)
    throw Error(subject, "npy header is " + std::to_string(header_len) + " bytes, over the limit of " +
                             std::to_string(kMaxNpyHeaderBytes));
  if (header_len > total_bytes - header_start) throw Error(subject, "truncated .npy header");
  return {header_start, header_start + header_len};
}

}  // namespace

size_t npy_header_bytes(const std::string& prefix, uint64_t total_bytes, const std::string& subject) {
  return header_span(prefix, total_bytes, subject).end;
}

NpyLayout parse_npy_header(const std::string& head, uint64_t total_bytes, const std::string& subject) {
  const HeaderSpan span = header_span(head, total_bytes, subject);
  if (head.size() < span.end) throw Error(subject, "truncated .npy header");
  const size_t data_start = span.end;
  std::string header = head.substr(span.start, span.end - span.start);

  // The header is a Python dict literal; numpy always writes these three keys.
  std::smatch m;
  static const std::regex descr_re(R"('descr'\s*:\s*'([^']*)')");
  static const std::regex fortran_re(R"('fortran_order'\s*:\s*(True|False))");
  static const std::regex shape_re(R"('shape'\s*:\s*\(([^)]*)\))");
  if (header.find("'descr': [") != std::string::npos || header.find("'descr':[") != std::string::npos)
    throw Error(subject, "structured (record) arrays are not supported");
  if (!std::regex_search(header, m, descr_re)) throw Error(subject, "npy header has no dtype");
  NpyLayout layout;
  layout.dtype = parse_descr(m[1].str(), subject);
  if (!std::regex_search(header, m, fortran_re)) throw Error(subject, "npy header has no fortran_order");
  if (m[1].str() == "True") throw Error(subject, "Fortran-ordered arrays are not supported");
  if (!std::regex_search(header, m, shape_re)) throw Error(subject, "npy header has no shape");
  std::stringstream ss(m[1].str());
  ss.exceptions(std::ios::badbit);  // a failed allocation must not end the list early (a shape short of dims)
  std::string part;
  while (std::getline(ss, part, ',')) {
    size_t b = part.find_first_not_of(" L");
    if (b == std::string::npos) continue;
    try {
      size_t used = 0;
      long long v = std::stoll(part.substr(b), &used);
      if (v < 0) throw std::out_of_range("negative");
      layout.shape.push_back(v);
    } catch (const std::exception&) {
      throw Error(subject, "npy shape '" + m[1].str() + "' is not a list of sizes");
    }
  }
  layout.data_start = data_start;
  const uint64_t have = total_bytes - data_start;
  const uint64_t size = dtype_size(layout.dtype);
  int64_t numel = 0;
  try {
    numel = shape_numel(layout.shape);
  } catch (const Error& e) {
    throw Error(subject, e.what());
  }
  if (static_cast<uint64_t>(numel) > have / size + (have % size ? 1 : 0) || static_cast<uint64_t>(numel) * size != have)
    throw Error(subject, "array data is " + std::to_string(have) + " bytes, shape " + shape_to_string(layout.shape) +
                             " of " + dtype_name(layout.dtype) + " needs " +
                             std::to_string(static_cast<uint64_t>(numel) * size));
  return layout;
}

Tensor parse_npy(const std::string& bytes, const std::string& subject) {
  const NpyLayout layout = parse_npy_header(bytes, bytes.size(), subject);
  Tensor t = Tensor::uninitialized(layout.dtype, layout.shape);  // every byte is copied in
  if (t.nbytes()) std::memcpy(t.raw(), bytes.data() + layout.data_start, t.nbytes());
  return t;
}

std::string serialize_npy(const Tensor& t) {
  const char* descr = npy_descr(t.dtype());
  if (!descr) throw Error(std::string("cannot write ") + dtype_name(t.dtype()) + " arrays to .npy");
  std::ostringstream h;
  h.exceptions(std::ios::badbit);  // a stream swallows a failed allocation unless told: a truncated header
  h << "{'descr': '" << descr << "', 'fortran_order': False, 'shape': (";
  for (size_t i = 0; i < t.rank(); ++i) h << t.dim(i) << (t.rank() == 1 || i + 1 < t.rank() ? "," : "");
  h << "), }";
  std::string header = h.str();
  // Pad with spaces so the data starts on a 64-byte boundary, ending in '\n' (numpy's layout).
  size_t total = 10 + header.size() + 1;
  size_t pad = (64 - total % 64) % 64;
  header.append(pad, ' ');
  header.push_back('\n');
  std::string out(kMagic, 6);
  out.push_back('\x01');
  out.push_back('\x00');
  out.push_back(static_cast<char>(header.size() & 0xff));
  out.push_back(static_cast<char>(header.size() >> 8));
  out += header;
  out.append(static_cast<const char*>(t.raw()), t.nbytes());
  return out;
}

Tensor read_npy(const std::string& path) {
  return parse_npy(read_file_bounded(path, NpzLimits{}.max_file_bytes), path);
}

void write_npy(const std::string& path, const Tensor& t) { write_file_atomic(path, serialize_npy(t)); }

const Tensor* find_array(const NamedTensors& arrays, const std::string& key) {
  for (const auto& kv : arrays)
    if (kv.first == key) return &kv.second;
  return nullptr;
}

}  // namespace tinyq
