// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace tinyq {

/// The one error type tinyq throws for bad input: it names the file (or object) at fault and
/// what is wrong, so the CLI can print `error: <file>: <what>` and exit 2.
class Error : public std::runtime_error {
 public:
  Error(std::string subject, const std::string& what)
      : std::runtime_error(what), subject_(std::move(subject)) {}
  explicit Error(const std::string& what) : std::runtime_error(what) {}

  /// The file, model, node or argument the error is about (may be empty).
  const std::string& subject() const { return subject_; }
  /// `<subject>: <what>` or just `<what>`.
  std::string message() const { return subject_.empty() ? what() : subject_ + ": " + what(); }

 private:
  std::string subject_;
};

/// Error with a printf-free builder: TINYQ_CHECK(cond, subject, "text " << value).
#define TINYQ_CHECK(cond, subject, stream_expr)                 \
  do {                                                          \
    if (!(cond)) {                                              \
      std::ostringstream tinyq_check_os_;                       \
      tinyq_check_os_ << stream_expr;                           \
      throw ::tinyq::Error((subject), tinyq_check_os_.str());   \
    }                                                           \
  } while (0)

}  // namespace tinyq
