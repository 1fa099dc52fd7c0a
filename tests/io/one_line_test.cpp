// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
//
// one_line (common/one_line.h): the escaping every error message goes through on its way out.

#include <gtest/gtest.h>

#include <string>

#include "common/one_line.h"

namespace tinyq {
namespace {

TEST(OneLine, EscapesControlsAndBrokenUtf8KeepsTheRest) {
  const struct {
    std::string in, out;
  } cases[] = {
      {"plain text: a/b.onnx", "plain text: a/b.onnx"},
      {"two\nlines\r\n\tand a tab", "two\\nlines\\r\\n\\tand a tab"},
      {std::string("nul\0x", 5), "nul\\x00x"},
      {"bell\x07 del\x7f esc\x1b", "bell\\x07 del\\x7f esc\\x1b"},
      {"back\\slash", "back\\\\slash"},
      {"caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x99\x82", "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x99\x82"},
      {"lone \xff and \xc3", "lone \\xff and \\xc3"},
      {"overlong \xc0\xaf, surrogate \xed\xa0\x80, past U+10FFFF \xf4\x90\x80\x80",
       "overlong \\xc0\\xaf, surrogate \\xed\\xa0\\x80, past U+10FFFF \\xf4\\x90\\x80\\x80"},
      {"cut \xe6\x97", "cut \\xe6\\x97"},
      {"", ""},
  };
  for (const auto& c : cases) EXPECT_EQ(one_line(c.in), c.out) << c.in;
}

}  // namespace
}  // namespace tinyq
