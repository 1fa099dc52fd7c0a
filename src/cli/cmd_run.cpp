// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#include <iostream>

#include "cli/cli_util.h"
#include "cli/command.h"
#include "tinyq/npz.h"
#include "tinyq/session.h"

namespace tinyq::cli {
namespace {

int run(const std::string& model_path, const std::string& input, const std::string& output, int threads) {
  require_onnx_file(model_path);
  require_file(input);
  SessionOptions opts;
  opts.threads = threads;
  Session session = Session::from_file(model_path, opts);
  NamedTensors feeds = read_npz(input);
  NamedTensors results;
  try {
    results = session.run(feeds);
  } catch (const Error& e) {
    throw Error(input, e.message());
  }
  write_npz(output, results);
  for (const auto& [name, t] : results)
    std::cout << name << " " << dtype_name(t.dtype()) << " " << shape_to_string(t.shape()) << "\n";
  return 0;
}

}  // namespace

CommandAction setup_run(CLI::App& app) {
  struct Args {
    std::string model, input, output;
    int threads = 1;
  };
  auto a = std::make_shared<Args>();
  app.add_option("model", a->model, "ONNX model file")->required();
  app.add_option("--input", a->input, ".npz with one array per graph input name")->required();
  app.add_option("--output", a->output, ".npz to write, one array per graph output name")->required();
  app.add_option("--threads", a->threads, "Worker threads")->check(CLI::Range(1, 256));
  return [a] { return run(a->model, a->input, a->output, a->threads); };
}

}  // namespace tinyq::cli
