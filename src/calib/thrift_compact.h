// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// A bounded reader for Apache Thrift's compact protocol, enough for Parquet's metadata.
//
// Wire format (thrift/doc/specs/thrift-compact-protocol.md):
//   field header  one byte: high nibble = field-id delta (1..15) from the previous field of the
//                 struct, low nibble = type; delta 0 means a zigzag varint i16 id follows.
//                 Type 0 (STOP) ends the struct. Booleans carry their value in the type
//                 (1 = true, 2 = false) and have no payload.
//   i16/i32/i64   zigzag-encoded ULEB128 varints;  byte: one byte;  double: 8 bytes LE
//   binary        varint length, then the bytes
//   list / set    one byte: high nibble = size (15: a varint size follows), low nibble = element
//                 type; booleans inside lists are one byte each
//   map           varint size; when non-zero one byte: key type << 4 | value type
//
// Every read checks the bytes left, every declared length or count is checked against the
// bytes left (each element takes at least one byte) before anything is allocated, and nesting
// is capped, so truncated or hostile input gives tinyq::Error, never a crash or a huge buffer.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace tinyq::calib {

enum class ThriftType : uint8_t {
  Stop = 0,
  BoolTrue = 1,
  BoolFalse = 2,
  Byte = 3,
  I16 = 4,
  I32 = 5,
  I64 = 6,
  Double = 7,
  Binary = 8,
  List = 9,
  Set = 10,
  Map = 11,
  Struct = 12,
};
const char* thrift_type_name(ThriftType type);

struct ThriftField {
  int16_t id = 0;
  ThriftType type = ThriftType::Stop;
};

struct ThriftList {
  ThriftType element = ThriftType::Stop;
  uint32_t size = 0;
};

class ThriftCompactReader {
 public:
  /// Reads [data, data + size); `subject` names the source in errors ("file.parquet").
  ThriftCompactReader(const uint8_t* data, size_t size, std::string subject, std::string what = "metadata");

  size_t position() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }

  /// Enters a struct: field ids restart from 0.
  void struct_begin();
  /// The next field header; false at the struct's STOP byte.
  bool next_field(ThriftField& field);
  /// Leaves the struct entered last.
  void struct_end();

  /// The value of a bool field (carried by its header).
  bool field_bool(const ThriftField& field) const;
  int8_t read_byte();
  int16_t read_i16();
  int32_t read_i32();
  int64_t read_i64();
  double read_double();
  /// A binary/string value of at most max_bytes.
  std::string read_binary(size_t max_bytes);
  /// A list or set header; the size is checked against the bytes left.
  ThriftList read_list_header();
  /// One bool element of a list.
  bool read_list_bool();

  /// Reads a field value of `type` and throws it away (bounded recursion).
  void skip(ThriftType type);

  /// Throws Error(subject, "<what>: <text> at byte <pos>").
  [[noreturn]] void fail(const std::string& text) const;
  /// Fails unless `field` has type `want` (accepts either bool type for bools).
  void expect_type(const ThriftField& field, ThriftType want, const char* name) const;

 private:
  uint64_t read_varint(int max_bytes);
  uint8_t take_byte();
  void skip_depth(ThriftType type, int depth);

  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  std::string subject_;
  std::string what_;
  std::vector<int16_t> last_ids_;  ///< previous field id of each open struct
  int16_t last_id_ = 0;
};

/// Zigzag: 0, -1, 1, -2, ... <-> 0, 1, 2, 3, ...
inline int64_t zigzag_decode(uint64_t v) { return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1); }

}  // namespace tinyq::calib
