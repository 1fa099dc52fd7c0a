// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// Shared helpers for the test tiers: where ../shared and the built CLI are, running the CLI,
// and ONNX Runtime (npm onnxruntime-node) as a peer.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tinyq/npz.h"

namespace tinyq::test {

/// ../shared beside the checkout (or $TINYQ_SHARED), "" when absent.
std::string shared_dir();
/// Skips the current test with a reason when ../shared is absent.
#define TINYQ_REQUIRE_SHARED()                                                   \
  do {                                                                          \
    if (::tinyq::test::shared_dir().empty()) GTEST_SKIP() << "../shared is absent"; \
  } while (0)

std::string source_dir();
std::string binary_dir();
/// build/tinyq.
std::string cli_path();
/// A fresh, empty temporary folder for this test.
std::string temp_dir();

struct CommandResult {
  int exit_code = -1;
  std::string out;  ///< stdout
  std::string err;  ///< stderr
};
/// Runs a shell command line, capturing stdout and stderr.
CommandResult run_command(const std::string& command_line);
/// Runs build/tinyq with the given argument string.
CommandResult run_cli(const std::string& args);

/// True when node and tests/ort/node_modules/onnxruntime-node are usable.
bool ort_available();
#define TINYQ_REQUIRE_ORT()                                                                     \
  do {                                                                                         \
    if (!::tinyq::test::ort_available())                                                       \
      GTEST_SKIP() << "onnxruntime-node is not installed (scripts/test.sh installs it)";         \
  } while (0)

/// Runs a model in ONNX Runtime on the given feeds; returns its outputs by name.
/// Throws std::runtime_error with ORT's message when ORT refuses the model.
NamedTensors ort_run(const std::string& model_path, const NamedTensors& feeds);

/// max |a - b| over two float tensors of the same shape (fails the test on a shape mismatch).
double max_abs_diff(const Tensor& a, const Tensor& b);
double max_abs(const Tensor& a);

}  // namespace tinyq::test
