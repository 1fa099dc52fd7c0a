// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include "common/file_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <vector>

#include "tinyq/error.h"

namespace fs = std::filesystem;

namespace tinyq {

ReadOnlyFile::ReadOnlyFile(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) {
    if (errno == ENOENT) throw Error(path, "no such file");
    throw Error(path, std::string("cannot open: ") + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd_);
    throw Error(path, "not a regular file");
  }
  size_ = static_cast<uint64_t>(st.st_size);
}

ReadOnlyFile::~ReadOnlyFile() { ::close(fd_); }

void ReadOnlyFile::read_at(uint64_t offset, void* dst, size_t n) const {
  auto* p = static_cast<char*>(dst);
  size_t done = 0;
  while (done < n) {
    const ssize_t got = ::pread(fd_, p + done, n - done, static_cast<off_t>(offset + done));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) throw Error(path_, "read failed (the file may have changed while being read)");
    done += static_cast<size_t>(got);
  }
}

std::string read_file_bounded(const std::string& path, uint64_t max_bytes) {
  ReadOnlyFile file(path);
  if (file.size() > max_bytes)
    throw Error(path, "file is " + std::to_string(file.size()) + " bytes, over the limit of " + std::to_string(max_bytes));
  std::string bytes(static_cast<size_t>(file.size()), '\0');
  file.read_at(0, bytes.data(), bytes.size());
  return bytes;
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  std::random_device rd;
  std::string tmp = path + ".tmp" + std::to_string(::getpid()) + "_" + std::to_string(rd() % 1000000);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(path, std::string("cannot write: ") + std::strerror(errno));
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      throw Error(path, std::string("write failed: ") + std::strerror(err));
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    throw Error(path, "write failed");
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    throw Error(path, std::string("cannot rename into place: ") + std::strerror(err));
  }
}

bool has_suffix(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string int8_sibling_path(const std::string& onnx_path) {
  if (has_suffix(onnx_path, ".onnx")) return onnx_path.substr(0, onnx_path.size() - 5) + ".int8.onnx";
  return onnx_path + ".int8.onnx";
}

bool file_exists(const std::string& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec);
}

uint64_t file_size(const std::string& path) {
  std::error_code ec;
  auto n = fs::file_size(path, ec);
  if (ec) throw Error(path, "cannot read size: " + ec.message());
  return n;
}

std::string path_dirname(const std::string& path) {
  fs::path p = fs::path(path).parent_path();
  return p.empty() ? "." : p.string();
}

std::string path_basename(const std::string& path) { return fs::path(path).filename().string(); }

std::string path_join(const std::string& a, const std::string& b) {
  if (!b.empty() && b[0] == '/') return b;
  return (fs::path(a) / b).string();
}

bool path_stays_inside(const std::string& relative) {
  if (relative.empty()) return false;
  fs::path p(relative);
  if (p.is_absolute() || p.has_root_name()) return false;
  int depth = 0;
  for (const auto& part : p) {
    std::string s = part.string();
    if (s == "..") {
      if (--depth < 0) return false;
    } else if (s != "." && !s.empty()) {
      ++depth;
    }
  }
  return true;
}

bool same_file(const std::string& a, const std::string& b) {
  std::error_code ec;
  if (fs::exists(a, ec) && fs::exists(b, ec)) return fs::equivalent(a, b, ec);
  return weakly_canonical_path(a) == weakly_canonical_path(b);
}

std::string normal_path(const std::string& path) {
  if (path.empty()) return path;
  const bool absolute = path[0] == '/';
  std::vector<std::string> kept;
  for (size_t i = 0; i <= path.size();) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    std::string part = path.substr(i, j - i);
    i = j + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (!kept.empty() && kept.back() != "..") {
        kept.pop_back();
        continue;
      }
      if (absolute) continue;  // the root is its own parent
    }
    kept.push_back(std::move(part));
  }
  std::string out = absolute ? "/" : "";
  for (size_t k = 0; k < kept.size(); ++k) out += (k ? "/" : "") + kept[k];
  return out.empty() ? "." : out;
}

std::string weakly_canonical_path(const std::string& path) {
  std::string abs = path;
  if (abs.empty() || abs[0] != '/') {
    std::unique_ptr<char, void (*)(void*)> cwd(::getcwd(nullptr, 0), std::free);
    abs = std::string(cwd ? cwd.get() : ".") + "/" + path;
  }
  // The longest leading part that exists goes through realpath() (links and ".." resolved
  // there); the rest is appended as written and normalised.
  for (size_t cut = abs.size();; cut = abs.rfind('/', cut - 1)) {
    const std::string head = cut == 0 ? "/" : abs.substr(0, cut);
    std::unique_ptr<char, void (*)(void*)> real(::realpath(head.c_str(), nullptr), std::free);
    if (real) return normal_path(std::string(real.get()) + abs.substr(cut));
    if (cut == 0) return normal_path(abs);
  }
}

}  // namespace tinyq
