// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// The path helpers tinyq writes on strings instead of std::filesystem (common/file_util.h):
// the same answers as libstdc++'s lexically_normal and weakly_canonical.

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "common/file_util.h"
#include "test_support.h"

namespace tinyq {
namespace {

namespace fs = std::filesystem;

// std's answer without a trailing separator (normal_path drops it).
std::string std_normal(const std::string& p) {
  std::string s = fs::path(p).lexically_normal().string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s.empty() && !p.empty() ? "." : s;
}

TEST(FileUtil, NormalPathIsLexicallyNormal) {
  const char* cases[] = {"a/b/c", "a/./b", "./a", "a/", "a//b", "a/b/..", "a/b/../c", "a/..", "../a", "../../a/..",
                         "a/../../b", "/a/../..", "/..", "/", "/./a/b/../../c", "x/./registry.schema.json", ".", "..",
                         "a/b/c/../../..", "a/.b/..c/...", "/a//b///c/"};
  for (const char* c : cases) EXPECT_EQ(normal_path(c), std_normal(c)) << c;
  EXPECT_EQ(normal_path(""), "");
}

TEST(FileUtil, WeaklyCanonicalPathResolvesTheExistingPart) {
  const std::string dir = test::temp_dir();
  fs::create_directories(dir + "/real/sub");
  fs::create_directory_symlink(dir + "/real/sub", dir + "/link");
  const std::string cases[] = {dir, dir + "/real/sub", dir + "/link", dir + "/link/../x", dir + "/link/new/file.onnx",
                               dir + "/real/./sub/../sub/f", dir + "/missing/../real", "/", "relative/name"};
  for (const std::string& c : cases) {
    std::error_code ec;
    EXPECT_EQ(weakly_canonical_path(c), fs::weakly_canonical(fs::absolute(c), ec).string()) << c;
  }
  EXPECT_TRUE(same_file(dir + "/link/f.onnx", dir + "/real/sub/f.onnx"));
  EXPECT_FALSE(same_file(dir + "/link/f.onnx", dir + "/real/f.onnx"));
}

}  // namespace
}  // namespace tinyq
