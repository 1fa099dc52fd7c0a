// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// .npz = a zip archive of .npy members (stored or deflated), read and written with libzip.

#include <zip.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "common/file_util.h"
#include "io/npy_layout.h"
#include "tinyq/error.h"
#include "tinyq/npz.h"

namespace tinyq {
namespace {

struct ZipCloser {
  void operator()(zip_t* z) const { zip_discard(z); }
};
using ZipPtr = std::unique_ptr<zip_t, ZipCloser>;

std::string zip_error_text(zip_error_t* err) {
  std::string s = zip_error_strerror(err);
  return s;
}

// Reads exactly n bytes of an open member into dst; false when it ends sooner or fails.
bool read_exact(zip_file_t* f, void* dst, uint64_t n) {
  auto* p = static_cast<char*>(dst);
  while (n > 0) {
    const zip_int64_t got = zip_fread(f, p, n);
    if (got <= 0) return false;
    p += got;
    n -= static_cast<uint64_t>(got);
  }
  return true;
}

// One member, read straight into its tensor: the npy header first (its dtype and shape size
// the tensor), then the data, with no copy of the member in between.
Tensor read_member(zip_t* archive, zip_int64_t index, uint64_t size, const std::string& subject) {
  std::unique_ptr<zip_file_t, int (*)(zip_file_t*)> f(zip_fopen_index(archive, index, 0), zip_fclose);
  if (!f) throw Error(subject, std::string("cannot open member: ") + zip_strerror(archive));
  const std::string corrupt = "member is corrupt (its data does not match its declared size or checksum)";
  std::string head(static_cast<size_t>(std::min<uint64_t>(size, 12)), '\0');
  if (!read_exact(f.get(), head.data(), head.size())) throw Error(subject, corrupt);
  const size_t header_bytes = npy_header_bytes(head, size, subject);
  const size_t have = head.size();
  head.resize(std::max(header_bytes, have));
  if (header_bytes > have && !read_exact(f.get(), head.data() + have, header_bytes - have))
    throw Error(subject, corrupt);
  const NpyLayout layout = parse_npy_header(head, size, subject);
  Tensor t = Tensor::uninitialized(layout.dtype, layout.shape);  // every byte is read in
  // The first read may have taken data bytes with it (a header shorter than 12 bytes).
  const size_t early = head.size() - layout.data_start;
  if (early) std::memcpy(t.raw(), head.data() + layout.data_start, early);
  char extra;
  if (!read_exact(f.get(), static_cast<char*>(t.raw()) + early, t.nbytes() - early) || zip_fread(f.get(), &extra, 1) != 0)
    throw Error(subject, corrupt);
  return t;
}

}  // namespace

NamedTensors read_npz(const std::string& path, const NpzLimits& limits) {
  uint64_t file_size = 0;
  {
    ReadOnlyFile file(path);  // a clear error for a missing or unreadable file
    file_size = file.size();
  }
  if (file_size > limits.max_file_bytes)
    throw Error(path, "file is " + std::to_string(file_size) + " bytes, over the limit of " +
                          std::to_string(limits.max_file_bytes));
  if (file_size == 0) throw Error(path, "not a valid .npz (zip) archive: the file is empty");
  zip_error_t err;
  zip_error_init(&err);
  // libzip reads the file itself: members go straight from the file into their tensors.
  zip_source_t* src = zip_source_file_create(path.c_str(), 0, -1, &err);
  if (!src) throw Error(path, "cannot read: " + zip_error_text(&err));
  ZipPtr archive(zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &err));
  if (!archive) {
    zip_source_free(src);
    std::string why = zip_error_text(&err);
    zip_error_fini(&err);
    throw Error(path, "not a valid .npz (zip) archive: " + why);
  }
  zip_int64_t count = zip_get_num_entries(archive.get(), 0);
  if (count < 0 || static_cast<uint64_t>(count) > limits.max_members)
    throw Error(path, "archive has too many members");
  NamedTensors out;
  uint64_t total = 0;
  for (zip_int64_t i = 0; i < count; ++i) {
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat_index(archive.get(), i, 0, &st) != 0) throw Error(path, "cannot read archive member " + std::to_string(i));
    std::string name = st.name ? st.name : "";
    std::string subject = path + ":" + name;
    if (name.size() < 4 || name.substr(name.size() - 4) != ".npy")
      throw Error(subject, "archive member is not a .npy array");
    if (!(st.valid & ZIP_STAT_SIZE)) throw Error(subject, "member size is unknown");
    // The declared size bounds the allocation; zip bombs stop here, before inflating.
    if (st.size > limits.max_total_bytes - total)
      throw Error(subject, "member declares " + std::to_string(st.size) +
                               " bytes uncompressed, over the limit of " + std::to_string(limits.max_total_bytes));
    total += st.size;
    out.emplace_back(name.substr(0, name.size() - 4), read_member(archive.get(), i, st.size, subject));
  }
  return out;
}

void write_npz(const std::string& path, const NamedTensors& arrays, bool compress) {
  zip_error_t err;
  zip_error_init(&err);
  zip_source_t* buffer = zip_source_buffer_create(nullptr, 0, 0, &err);
  if (!buffer) throw Error(path, "cannot create archive: " + zip_error_text(&err));
  zip_source_keep(buffer);
  std::unique_ptr<zip_source_t, void (*)(zip_source_t*)> keep(buffer, zip_source_free);
  // Discarded on any way out (an exception included) until zip_close takes it.
  ZipPtr archive(zip_open_from_source(buffer, ZIP_TRUNCATE, &err));
  if (!archive) throw Error(path, "cannot create archive: " + zip_error_text(&err));
  std::vector<std::string> members;  // libzip reads them at zip_close
  members.reserve(arrays.size());
  for (const auto& [key, tensor] : arrays) {
    members.push_back(serialize_npy(tensor));
    zip_source_t* s = zip_source_buffer(archive.get(), members.back().data(), members.back().size(), 0);
    zip_int64_t idx = s ? zip_file_add(archive.get(), (key + ".npy").c_str(), s, ZIP_FL_ENC_UTF_8) : -1;
    if (idx < 0) {
      if (s) zip_source_free(s);
      throw Error(path, "cannot add '" + key + "' to the archive");
    }
    zip_set_file_compression(archive.get(), static_cast<zip_uint64_t>(idx), compress ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 0);
    // A fixed timestamp (1980-01-01, DOS epoch) makes archives reproducible byte for byte.
    zip_file_set_dostime(archive.get(), static_cast<zip_uint64_t>(idx), 0, (0 << 9) | (1 << 5) | 1, 0);
  }
  if (zip_close(archive.get()) != 0) throw Error(path, std::string("cannot write archive: ") + zip_strerror(archive.get()));
  archive.release();  // zip_close freed it
  // Read the finished archive back out of the memory source and write it atomically.
  zip_stat_t st;
  zip_stat_init(&st);
  if (zip_source_stat(buffer, &st) != 0 || zip_source_open(buffer) != 0)
    throw Error(path, "cannot finish archive");
  std::string bytes(static_cast<size_t>(st.size), '\0');
  zip_int64_t got = bytes.empty() ? 0 : zip_source_read(buffer, &bytes[0], st.size);
  zip_source_close(buffer);
  if (got != static_cast<zip_int64_t>(st.size)) throw Error(path, "cannot finish archive");
  write_file_atomic(path, bytes);
}

}  // namespace tinyq
