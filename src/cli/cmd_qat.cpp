// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// `tinyq qat`: quantisation-aware training on libtorch (a thin wrapper over qat::run_qat).
// Only compiled into the command table when the QAT layer was built (TINYQ_WITH_QAT).

#ifdef TINYQ_WITH_QAT

#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include "cli/cli_util.h"
#include "cli/command.h"
#include "common/file_util.h"
#include "common/provenance.h"
#include "qat/qat_report.h"
#include "tinyq/qat.h"

namespace tinyq::cli {
namespace {

struct Args {
  std::string config, output, report;
  int epochs_fp32 = -1, epochs_qat = -1, n_calibration = -1;
  double lr_qat = -1.0;
  long long seed = -1;
  bool smoke = false, recalibrate = false, distill = false;
};

std::string fmt_seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fs", s);
  return buf;
}

int qat(const Args& a) {
  require_file(a.config);
  qat::QatConfig c = qat::load_qat_config(a.config);
  c.output = a.output;
  if (a.epochs_fp32 >= 0) c.epochs_fp32 = a.epochs_fp32;
  if (a.epochs_qat >= 0) c.epochs_qat = a.epochs_qat;
  if (a.lr_qat > 0) c.lr_qat = a.lr_qat;
  if (a.n_calibration > 0) c.n_calibration = a.n_calibration;
  if (a.seed >= 0) c.seed = static_cast<uint64_t>(a.seed);
  if (a.smoke) c.smoke = true;
  if (a.recalibrate) c.recalibrate = true;
  if (a.distill) c.distill = true;
  // One line per epoch: redrawn in place on a terminal, plain lines in logs.
  const bool tty = isatty(fileno(stderr)) != 0;
  bool open_line = false;
  c.on_epoch = [&](const std::string& phase, int epoch, int epochs, double loss, double elapsed) {
    double eta = epoch > 0 ? elapsed / epoch * (epochs - epoch) : 0.0;
    char buf[160];
    std::snprintf(buf, sizeof buf, "%-4s epoch %d/%d  loss %.6f  elapsed %s  eta %s", phase.c_str(), epoch,
                  epochs, loss, fmt_seconds(elapsed).c_str(), fmt_seconds(eta).c_str());
    if (tty) {
      std::cerr << "\r" << buf << "\033[K" << (epoch == epochs ? "\n" : "") << std::flush;
      open_line = epoch != epochs;
    } else {
      std::cerr << buf << "\n";
    }
  };
  qat::QatResult r;
  try {
    r = qat::run_qat(c);
  } catch (...) {
    if (open_line) std::cerr << "\n";
    throw;
  }
  for (const auto& w : r.warnings) std::cerr << "warning: " << w << "\n";
  std::cout << "fp32: " << r.fp32_path << "\nint8: " << r.int8_path << " (ranges: " << r.ranges_source
            << ")\nmodel: " << r.architecture << ", parameters: " << r.parameters << "\nheld-out plcc fp32 " << r.test_plcc_fp32 << ", int8 "
            << r.test_plcc_int8 << "; int8 vs fp32 plcc " << r.int8_vs_fp32_plcc << "\n";
  if (!a.report.empty()) {
    nlohmann::ordered_json report = qat::qat_report_json(c, r);
    std::vector<std::string> inputs = {a.config};
    if (!r.smoke && !c.cache.empty()) inputs.push_back(c.cache);
    report["run_provenance"] = run_provenance(command_line(), inputs, {r.fp32_path, r.int8_path});
    write_file_atomic(a.report, report.dump(2) + "\n");
  }
  return 0;
}

}  // namespace

CommandAction setup_qat(CLI::App& app) {
  auto a = std::make_shared<Args>();
  app.add_option("--config", a->config,
                 "YAML config (model: mlp | learned_filter | nr_metric | onnx, model_args, cache, qat: {...})")
      ->required();
  app.add_option("--output", a->output, "int8 QDQ model to write; the fp32 graph goes to <basename>.qat.fp32.onnx")
      ->required();
  app.add_option("--epochs-fp32", a->epochs_fp32, "fp32 warm-start epochs (overrides qat.epochs_fp32)");
  app.add_option("--epochs-qat", a->epochs_qat, "QAT epochs (overrides qat.epochs_qat)");
  app.add_option("--lr-qat", a->lr_qat, "QAT learning rate (default: lr / 10)");
  app.add_option("--n-calibration", a->n_calibration, "Samples for --recalibrate (default 64)");
  app.add_flag("--smoke", a->smoke, "Synthetic data, one epoch per phase");
  app.add_option("--seed", a->seed, "Seed for splits, initialisation and shuffling");
  app.add_option("--report-out", a->report, "Write a JSON report (losses, times, ranges, run provenance)");
  app.add_flag("--recalibrate", a->recalibrate, "Discard the learned ranges and re-calibrate (the seed's behaviour)");
  app.add_flag("--distill", a->distill, "Train the fake-quant student on the fp32 teacher's outputs");
  return [a] { return qat(*a); };
}

}  // namespace tinyq::cli

#endif  // TINYQ_WITH_QAT
