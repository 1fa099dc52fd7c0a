// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include "test_support.h"

#include <sys/wait.h>

#include <array>
#include <cctype>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <unistd.h>

namespace fs = std::filesystem;

namespace tinyq::test {

std::string source_dir() { return TINYQ_SOURCE_DIR; }
std::string binary_dir() { return TINYQ_BINARY_DIR; }
std::string cli_path() { return binary_dir() + "/tinyq"; }

std::string shared_dir() {
  if (const char* env = std::getenv("TINYQ_SHARED")) return fs::is_directory(env) ? env : "";
  fs::path p = fs::path(source_dir()).parent_path() / "shared";
  return fs::is_directory(p / "models") ? p.string() : "";
}

std::string temp_dir() {
  static std::atomic<int> counter{0};
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = info ? std::string(info->test_suite_name()) + "." + info->name() : "tinyq";
  for (char& c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.') c = '_';
  fs::path p = fs::temp_directory_path() / ("tinyq_test_" + std::to_string(::getpid()) + "_" +
                                            std::to_string(counter++) + "_" + name);
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

static std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

CommandResult run_command(const std::string& command_line) {
  std::string dir = temp_dir();
  std::string out = dir + "/stdout", err = dir + "/stderr";
  std::string full = command_line + " >" + out + " 2>" + err + " </dev/null";
  int status = std::system(full.c_str());
  CommandResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = slurp(out);
  r.err = slurp(err);
  fs::remove_all(dir);
  return r;
}

CommandResult run_cli(const std::string& args) { return run_command(cli_path() + " " + args); }

static std::string ort_dir() { return source_dir() + "/tests/ort"; }

bool ort_available() {
  static const bool ok = fs::exists(ort_dir() + "/node_modules/onnxruntime-node/package.json") &&
                         std::system("node --version >/dev/null 2>&1") == 0;
  return ok;
}

static std::string hex(const std::string& s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

static std::string unhex(const std::string& h) {
  std::string out;
  for (size_t i = 0; i + 1 < h.size(); i += 2) out += static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16));
  return out;
}

NamedTensors ort_run(const std::string& model_path, const NamedTensors& feeds) {
  std::string dir = temp_dir();
  fs::create_directories(dir + "/in");
  for (const auto& [name, t] : feeds) write_npy(dir + "/in/" + hex(name) + ".npy", t);
  CommandResult r = run_command("node " + ort_dir() + "/run_ort.js '" + model_path + "' " + dir + "/in " + dir + "/out");
  if (r.exit_code != 0) {
    fs::remove_all(dir);
    throw std::runtime_error("onnxruntime: " + r.err);
  }
  NamedTensors out;
  for (const auto& entry : fs::directory_iterator(dir + "/out")) {
    std::string stem = entry.path().stem().string();
    out.emplace_back(unhex(stem), read_npy(entry.path().string()));
  }
  fs::remove_all(dir);
  return out;
}

static std::vector<double> as_doubles(const Tensor& t) { return tensor_to_doubles(t); }

double max_abs_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(shape_to_string(a.shape()), shape_to_string(b.shape()));
  if (a.numel() != b.numel()) return INFINITY;
  std::vector<double> x = as_doubles(a), y = as_doubles(b);
  double m = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    double d = std::fabs(x[i] - y[i]);
    if (std::isnan(d)) return INFINITY;
    m = std::max(m, d);
  }
  return m;
}

double max_abs(const Tensor& a) {
  double m = 0;
  for (double v : as_doubles(a)) m = std::max(m, std::fabs(v));
  return m;
}

}  // namespace tinyq::test
