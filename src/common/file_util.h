// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

#include <cstdint>
#include <string>

namespace tinyq {

/// A regular file open for reading at any offset (pread). Errors name the file: missing, not a
/// regular file, unopenable, a read that comes up short (the file changed while being read).
class ReadOnlyFile {
 public:
  explicit ReadOnlyFile(const std::string& path);
  ~ReadOnlyFile();
  ReadOnlyFile(const ReadOnlyFile&) = delete;
  ReadOnlyFile& operator=(const ReadOnlyFile&) = delete;
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }
  /// Reads exactly n bytes at offset into dst.
  void read_at(uint64_t offset, void* dst, size_t n) const;

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

/// Reads a whole file, refusing one larger than max_bytes before allocating.
/// Errors name the file: missing, not a regular file, too large, unreadable.
std::string read_file_bounded(const std::string& path, uint64_t max_bytes);

/// Writes a file atomically: a temp file in the same folder, fsync, then rename over `path`.
/// A crash leaves either the old file or the new one, never half of either.
void write_file_atomic(const std::string& path, const std::string& bytes);

bool file_exists(const std::string& path);
/// True when `s` ends with `suffix`.
bool has_suffix(const std::string& s, const std::string& suffix);
/// The sibling int8 path of a model path, the registry's sidecar naming that the quantisers write
/// and the loader opens: "a/b/model.onnx" -> "a/b/model.int8.onnx" (".int8.onnx" is appended to a
/// path without the .onnx extension).
std::string int8_sibling_path(const std::string& onnx_path);
uint64_t file_size(const std::string& path);

/// Folder part of a path ("." when there is none).
std::string path_dirname(const std::string& path);
/// Last component of a path.
std::string path_basename(const std::string& path);
/// `a/b` joined; `b` unchanged when absolute.
std::string path_join(const std::string& a, const std::string& b);
/// True when `relative` is not absolute and, after lexical normalisation, stays inside its base
/// (no component climbs above it with "..").
bool path_stays_inside(const std::string& relative);
/// True when `a` and `b` name the same existing file (or the same path once made canonical).
bool same_file(const std::string& a, const std::string& b);
/// `path` with "." components, repeated separators and "name/.." pairs taken out, as
/// std::filesystem's lexically_normal gives it less any trailing separator ("a/.." -> ".").
/// Written on strings because libstdc++ 12's lexically_normal and weakly_canonical crash when
/// an allocation inside them fails (the out-of-memory tests, tests/alloc, found it).
std::string normal_path(const std::string& path);
/// `path` made absolute with the symbolic links of the part that exists resolved, then
/// normalised: std::filesystem::weakly_canonical(absolute(path)), for the same reason.
std::string weakly_canonical_path(const std::string& path);

}  // namespace tinyq
