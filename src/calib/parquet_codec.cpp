// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include "calib/parquet_codec.h"

#include <snappy.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include <algorithm>
#include <climits>

#include "calib/parquet_meta.h"
#include "tinyq/error.h"

namespace tinyq::calib {
namespace {

std::string size_mismatch(const char* codec, uint64_t got, size_t want) {
  return std::string(codec) + " data decompresses to " + std::to_string(got) + " bytes, but the page declares " +
         std::to_string(want);
}

std::string inflate_gzip(const uint8_t* src, size_t src_size, size_t want, const std::string& subject,
                         const std::string& where) {
  std::string out(want, '\0');
  z_stream zs{};
  // 15 + 32: accept a gzip or a zlib header, as Parquet writers differ.
  if (inflateInit2(&zs, 15 + 32) != Z_OK) throw Error(subject, where + ": cannot start zlib");
  size_t in_done = 0, out_done = 0;
  int rc = Z_OK;
  // zlib's counters are 32-bit: feed at most UINT_MAX bytes per call.
  while (true) {
    zs.next_in = const_cast<Bytef*>(src + in_done);
    zs.avail_in = static_cast<uInt>(std::min<size_t>(src_size - in_done, UINT_MAX));
    zs.next_out = reinterpret_cast<Bytef*>(out.data() + out_done);
    zs.avail_out = static_cast<uInt>(std::min<size_t>(want - out_done, UINT_MAX));
    uInt in_before = zs.avail_in, out_before = zs.avail_out;
    rc = inflate(&zs, Z_NO_FLUSH);
    in_done += in_before - zs.avail_in;
    out_done += out_before - zs.avail_out;
    if (rc == Z_STREAM_END) {
      // Concatenated gzip members are legal; carry on while input remains.
      if (in_done < src_size && out_done < want) {
        inflateReset(&zs);
        continue;
      }
      break;
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR) break;
    if (out_done == want) {
      // Output is full: the stream must end here and not hold more data.
      unsigned char probe;
      zs.next_out = &probe;
      zs.avail_out = 1;
      zs.next_in = const_cast<Bytef*>(src + in_done);
      zs.avail_in = static_cast<uInt>(std::min<size_t>(src_size - in_done, UINT_MAX));
      rc = inflate(&zs, Z_NO_FLUSH);
      if (zs.avail_out == 0) {
        inflateEnd(&zs);
        throw Error(subject, where + ": GZIP data decompresses to more than the " + std::to_string(want) +
                                 " bytes the page declares");
      }
      break;
    }
    if (in_before == zs.avail_in && out_before == zs.avail_out) break;  // no progress: truncated
  }
  inflateEnd(&zs);
  if (rc != Z_STREAM_END) {
    if (rc == Z_DATA_ERROR || rc == Z_NEED_DICT)
      throw Error(subject, where + ": GZIP data is corrupt");
    throw Error(subject, where + ": GZIP data is truncated");
  }
  if (out_done != want) throw Error(subject, where + ": " + size_mismatch("GZIP", out_done, want));
  return out;
}

}  // namespace

bool parquet_codec_supported(int32_t codec) {
  return codec == kCodecUncompressed || codec == kCodecSnappy || codec == kCodecGzip || codec == kCodecZstd;
}

std::string decompress_page(int32_t codec, const uint8_t* src, size_t src_size, size_t uncompressed_size,
                            const std::string& subject, const std::string& where) {
  const char* s = reinterpret_cast<const char*>(src);
  switch (codec) {
    case kCodecUncompressed:
      if (src_size != uncompressed_size)
        throw Error(subject, where + ": uncompressed page stores " + std::to_string(src_size) +
                                 " bytes but declares " + std::to_string(uncompressed_size));
      return std::string(s, src_size);
    case kCodecSnappy: {
      size_t n = 0;
      if (!snappy::GetUncompressedLength(s, src_size, &n)) throw Error(subject, where + ": SNAPPY data is corrupt");
      if (n != uncompressed_size) throw Error(subject, where + ": " + size_mismatch("SNAPPY", n, uncompressed_size));
      std::string out(n, '\0');
      if (!snappy::RawUncompress(s, src_size, out.data())) throw Error(subject, where + ": SNAPPY data is corrupt");
      return out;
    }
    case kCodecGzip:
      return inflate_gzip(src, src_size, uncompressed_size, subject, where);
    case kCodecZstd: {
      unsigned long long declared = ZSTD_getFrameContentSize(src, src_size);
      if (declared == ZSTD_CONTENTSIZE_ERROR) throw Error(subject, where + ": ZSTD data is corrupt");
      // A frame that states its size must state the page's; with several frames the first
      // states only its own, so only a larger value is certainly wrong.
      if (declared != ZSTD_CONTENTSIZE_UNKNOWN && declared > uncompressed_size)
        throw Error(subject, where + ": " + size_mismatch("ZSTD", declared, uncompressed_size));
      std::string out(uncompressed_size, '\0');
      size_t got = ZSTD_decompress(out.data(), out.size(), src, src_size);
      if (ZSTD_isError(got)) {
        if (ZSTD_getErrorCode(got) == ZSTD_error_dstSize_tooSmall)
          throw Error(subject, where + ": ZSTD data decompresses to more than the " +
                                   std::to_string(uncompressed_size) + " bytes the page declares");
        throw Error(subject, where + ": ZSTD data is corrupt (" + ZSTD_getErrorName(got) + ")");
      }
      if (got != uncompressed_size) throw Error(subject, where + ": " + size_mismatch("ZSTD", got, uncompressed_size));
      return out;
    }
    default:
      break;
  }
  throw Error(subject, where + ": compression codec " + std::string(parquet_codec_name(codec)) +
                           " is not supported (tinyq reads UNCOMPRESSED, SNAPPY, GZIP and ZSTD)");
}

}  // namespace tinyq::calib
