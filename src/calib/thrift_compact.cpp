// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include "calib/thrift_compact.h"

#include <cstring>
#include <limits>

#include "tinyq/error.h"

namespace tinyq::calib {
namespace {

// Parquet's metadata nests a handful of levels (FileMetaData > RowGroup > ColumnChunk >
// ColumnMetaData > Statistics / LogicalType > ...); 32 leaves room for unknown extensions while
// keeping a hostile file from recursing deeply.
constexpr int kMaxDepth = 32;

bool valid_type(uint8_t t) { return t <= static_cast<uint8_t>(ThriftType::Struct); }

}  // namespace

const char* thrift_type_name(ThriftType type) {
  switch (type) {
    case ThriftType::Stop: return "stop";
    case ThriftType::BoolTrue:
    case ThriftType::BoolFalse: return "bool";
    case ThriftType::Byte: return "byte";
    case ThriftType::I16: return "i16";
    case ThriftType::I32: return "i32";
    case ThriftType::I64: return "i64";
    case ThriftType::Double: return "double";
    case ThriftType::Binary: return "binary";
    case ThriftType::List: return "list";
    case ThriftType::Set: return "set";
    case ThriftType::Map: return "map";
    case ThriftType::Struct: return "struct";
  }
  return "unknown";
}

ThriftCompactReader::ThriftCompactReader(const uint8_t* data, size_t size, std::string subject, std::string what)
    : data_(data), size_(size), subject_(std::move(subject)), what_(std::move(what)) {}

void ThriftCompactReader::fail(const std::string& text) const {
  throw Error(subject_, what_ + ": " + text + " at byte " + std::to_string(pos_));
}

uint8_t ThriftCompactReader::take_byte() {
  if (pos_ >= size_) fail("unexpected end of data");
  return data_[pos_++];
}

uint64_t ThriftCompactReader::read_varint(int max_bytes) {
  uint64_t value = 0;
  for (int i = 0; i < max_bytes; ++i) {
    uint8_t b = take_byte();
    // The 10th byte of a 64-bit varint may only carry the top bit.
    if (i == 9 && b > 1) fail("varint overflows 64 bits");
    value |= static_cast<uint64_t>(b & 0x7f) << (7 * i);
    if (!(b & 0x80)) return value;
  }
  fail("varint is too long");
}

void ThriftCompactReader::struct_begin() {
  if (last_ids_.size() >= static_cast<size_t>(kMaxDepth)) fail("structs nest too deeply");
  last_ids_.push_back(last_id_);
  last_id_ = 0;
}

void ThriftCompactReader::struct_end() {
  if (last_ids_.empty()) fail("struct end without a struct");
  last_id_ = last_ids_.back();
  last_ids_.pop_back();
}

bool ThriftCompactReader::next_field(ThriftField& field) {
  uint8_t header = take_byte();
  uint8_t type = header & 0x0f;
  if (type == 0) {
    if (header != 0) fail("malformed stop byte");
    return false;
  }
  if (!valid_type(type)) fail("unknown field type " + std::to_string(type));
  int delta = header >> 4;
  int64_t id;
  if (delta != 0) {
    id = static_cast<int64_t>(last_id_) + delta;
  } else {
    id = zigzag_decode(read_varint(3));
  }
  if (id < std::numeric_limits<int16_t>::min() || id > std::numeric_limits<int16_t>::max())
    fail("field id out of range");
  field.id = static_cast<int16_t>(id);
  field.type = static_cast<ThriftType>(type);
  last_id_ = field.id;
  return true;
}

bool ThriftCompactReader::field_bool(const ThriftField& field) const {
  if (field.type != ThriftType::BoolTrue && field.type != ThriftType::BoolFalse)
    fail("field " + std::to_string(field.id) + " is not a bool");
  return field.type == ThriftType::BoolTrue;
}

int8_t ThriftCompactReader::read_byte() { return static_cast<int8_t>(take_byte()); }

int16_t ThriftCompactReader::read_i16() {
  int64_t v = zigzag_decode(read_varint(3));
  if (v < std::numeric_limits<int16_t>::min() || v > std::numeric_limits<int16_t>::max()) fail("i16 out of range");
  return static_cast<int16_t>(v);
}

int32_t ThriftCompactReader::read_i32() {
  int64_t v = zigzag_decode(read_varint(5));
  if (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max()) fail("i32 out of range");
  return static_cast<int32_t>(v);
}

int64_t ThriftCompactReader::read_i64() { return zigzag_decode(read_varint(10)); }

double ThriftCompactReader::read_double() {
  if (remaining() < 8) fail("unexpected end of data in a double");
  uint64_t bits = 0;
  for (int i = 0; i < 8; ++i) bits |= static_cast<uint64_t>(data_[pos_ + i]) << (8 * i);
  pos_ += 8;
  double d;
  std::memcpy(&d, &bits, sizeof d);
  return d;
}

std::string ThriftCompactReader::read_binary(size_t max_bytes) {
  uint64_t n = read_varint(10);
  if (n > remaining()) fail("binary of " + std::to_string(n) + " bytes runs past the end");
  if (n > max_bytes) fail("binary of " + std::to_string(n) + " bytes is over the limit of " + std::to_string(max_bytes));
  std::string s(reinterpret_cast<const char*>(data_ + pos_), static_cast<size_t>(n));
  pos_ += static_cast<size_t>(n);
  return s;
}

ThriftList ThriftCompactReader::read_list_header() {
  uint8_t header = take_byte();
  uint8_t type = header & 0x0f;
  if (type == 0 || !valid_type(type)) fail("unknown list element type " + std::to_string(type));
  uint64_t size = header >> 4;
  if (size == 15) size = read_varint(5);
  // Every element takes at least one byte, so a count above the bytes left is a lie.
  if (size > remaining()) fail("list of " + std::to_string(size) + " elements runs past the end");
  ThriftList list;
  list.element = static_cast<ThriftType>(type);
  list.size = static_cast<uint32_t>(size);
  return list;
}

bool ThriftCompactReader::read_list_bool() {
  // Writers use 1 for true; some write 0 and some 2 for false.
  return take_byte() == 1;
}

void ThriftCompactReader::expect_type(const ThriftField& field, ThriftType want, const char* name) const {
  ThriftType got = field.type;
  if (want == ThriftType::BoolTrue || want == ThriftType::BoolFalse) {
    if (got == ThriftType::BoolTrue || got == ThriftType::BoolFalse) return;
  } else if (got == want) {
    return;
  }
  fail(std::string("field ") + name + " has type " + thrift_type_name(got) + ", expected " + thrift_type_name(want));
}

void ThriftCompactReader::skip(ThriftType type) { skip_depth(type, static_cast<int>(last_ids_.size())); }

void ThriftCompactReader::skip_depth(ThriftType type, int depth) {
  if (depth > kMaxDepth) fail("values nest too deeply");
  switch (type) {
    case ThriftType::BoolTrue:
    case ThriftType::BoolFalse:
      return;  // a bool field's value is in its header
    case ThriftType::Byte:
      take_byte();
      return;
    case ThriftType::I16:
    case ThriftType::I32:
    case ThriftType::I64:
      read_varint(10);
      return;
    case ThriftType::Double:
      if (remaining() < 8) fail("unexpected end of data in a double");
      pos_ += 8;
      return;
    case ThriftType::Binary: {
      uint64_t n = read_varint(10);
      if (n > remaining()) fail("binary of " + std::to_string(n) + " bytes runs past the end");
      pos_ += static_cast<size_t>(n);
      return;
    }
    case ThriftType::List:
    case ThriftType::Set: {
      ThriftList list = read_list_header();
      for (uint32_t i = 0; i < list.size; ++i) {
        if (list.element == ThriftType::BoolTrue || list.element == ThriftType::BoolFalse)
          take_byte();
        else
          skip_depth(list.element, depth + 1);
      }
      return;
    }
    case ThriftType::Map: {
      uint64_t n = read_varint(5);
      if (n == 0) return;
      uint8_t kv = take_byte();
      uint8_t kt = kv >> 4, vt = kv & 0x0f;
      if (kt == 0 || vt == 0 || !valid_type(kt) || !valid_type(vt)) fail("unknown map key/value type");
      if (n > remaining()) fail("map of " + std::to_string(n) + " entries runs past the end");
      for (uint64_t i = 0; i < n; ++i) {
        for (uint8_t t : {kt, vt}) {
          auto tt = static_cast<ThriftType>(t);
          if (tt == ThriftType::BoolTrue || tt == ThriftType::BoolFalse)
            take_byte();
          else
            skip_depth(tt, depth + 1);
        }
      }
      return;
    }
    case ThriftType::Struct: {
      struct_begin();
      ThriftField f;
      while (next_field(f)) skip_depth(f.type, depth + 1);
      struct_end();
      return;
    }
    case ThriftType::Stop:
      break;
  }
  fail("cannot skip a value of type stop");
}

}  // namespace tinyq::calib
