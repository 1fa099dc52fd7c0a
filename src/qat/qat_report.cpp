// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

#include "qat/qat_report.h"

namespace tinyq::qat {

nlohmann::ordered_json qat_report_json(const QatConfig& c, const QatResult& r) {
  nlohmann::ordered_json j;
  j["format"] = "tinyq-qat-report";
  j["version"] = 1;
  j["fp32"] = r.fp32_path;
  j["int8"] = r.int8_path;
  nlohmann::ordered_json args;
  if (c.model == "mlp") {
    args = {{"hidden", c.hidden}, {"squeeze", c.squeeze}};
  } else if (c.model == "onnx") {
    args = {{"path", c.model_path}};
  } else {
    args = {{"channels", r.sample_shape.empty() ? c.channels : r.sample_shape[0]}, {"width", c.width},
            {"num_blocks", c.num_blocks}};
  }
  j["model"] = {{"architecture", c.model}, {"args", args}, {"parameters", r.parameters},
                {"sample_shape", r.sample_shape}, {"features", r.features}, {"outputs_per_row", r.outputs_per_row}};
  j["data"] = {{"cache", r.smoke ? "" : c.cache}, {"smoke", r.smoke}, {"train_rows", r.train_rows},
               {"val_rows", r.val_rows}, {"test_rows", r.test_rows}, {"seed", c.seed}};
  j["settings"] = {{"loss", c.loss}, {"batch_size", c.batch_size}, {"lr", c.lr},
                   {"lr_qat", c.lr_qat > 0 ? c.lr_qat : c.lr / 10.0}, {"distill", r.distilled}, {"teacher", c.teacher},
                   {"epochs_fp32", r.epochs_fp32}, {"epochs_qat", r.epochs_qat},
                   {"recalibrate", c.recalibrate}, {"n_calibration", c.n_calibration},
                   {"weights", "int8 symmetric per-channel"},
                   {"activations", "int8 asymmetric per-tensor"}, {"observer", c.observer}, {"exclude_nodes", c.exclude_nodes}};
  nlohmann::ordered_json phases;
  phases["fp32"] = {{"epochs", 0}, {"seconds", r.fp32_seconds}, {"train_loss", nlohmann::json::array()},
                    {"val_loss", nlohmann::json::array()}};
  phases["qat"] = {{"epochs", 0}, {"seconds", r.qat_seconds}, {"train_loss", nlohmann::json::array()},
                   {"val_loss", nlohmann::json::array()}};
  for (const auto& e : r.epochs) {
    auto& p = phases[e.phase];
    p["epochs"] = p["epochs"].get<int>() + 1;
    p["train_loss"].push_back(e.train_loss);
    p["val_loss"].push_back(e.val_loss);
  }
  j["phases"] = phases;
  j["export_seconds"] = r.export_seconds;
  j["ranges_source"] = r.ranges_source;
  nlohmann::ordered_json weights = nlohmann::ordered_json::array();
  for (const auto& [name, axis] : r.fake_quant_weights) weights.push_back({{"weight", name}, {"axis", axis}});
  j["fake_quant"] = {{"activations", r.fake_quant_activations}, {"weights", weights},
                     {"weights_in_int8_file", r.weights_quantised}};
  nlohmann::ordered_json acts = nlohmann::ordered_json::array();
  for (const auto& a : r.activations)
    acts.push_back({{"tensor", a.tensor}, {"min", a.min}, {"max", a.max}, {"scale", a.scale},
                    {"zero_point", a.zero_point}, {"shared_with", a.shared_with}});
  j["activations"] = acts;
  j["held_out"] = {{"loss_fp32", r.test_loss_fp32}, {"loss_int8", r.test_loss_int8},
                   {"plcc_fp32", r.test_plcc_fp32}, {"plcc_int8", r.test_plcc_int8},
                   {"int8_vs_fp32_plcc", r.int8_vs_fp32_plcc}, {"int8_vs_fp32_max_abs", r.int8_vs_fp32_max_abs},
                   {"int8_vs_qat_max_abs", r.int8_vs_qat_max_abs},
                   {"plcc_warm_fp32", r.test_plcc_warm_fp32}, {"plcc_static_ptq", r.test_plcc_static_ptq}, {"plcc_teacher", r.test_plcc_teacher}};
  j["warnings"] = r.warnings;
  return j;
}

}  // namespace tinyq::qat
