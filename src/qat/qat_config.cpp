// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// The YAML config, in the seed's shape (model, model_args, cache, batch_size, val_frac,
// test_frac, seed, loss, qat: {...}).

#include <yaml-cpp/yaml.h>

#include <filesystem>

#include "tinyq/error.h"
#include "tinyq/qat.h"

namespace tinyq::qat {

namespace {

template <typename T>
void read(const YAML::Node& node, const char* key, T& out, const std::string& subject) {
  const YAML::Node v = node[key];
  if (!v || v.IsNull()) return;
  try {
    out = v.as<T>();
  } catch (const YAML::Exception& e) {
    throw Error(subject, std::string("'") + key + "': " + e.what());
  }
}

}  // namespace

QatConfig load_qat_config(const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    throw Error(path, "cannot read the config file");
  } catch (const YAML::Exception& e) {
    throw Error(path, std::string("not valid YAML: ") + e.what());
  }
  if (!root.IsMap()) throw Error(path, "the config must be a YAML mapping");
  QatConfig c;
  read(root, "model", c.model, path);
  if (const YAML::Node args = root["model_args"]) {
    if (!args.IsMap()) throw Error(path, "'model_args' must be a mapping");
    read(args, "hidden", c.hidden, path);
    read(args, "squeeze", c.squeeze, path);
    read(args, "lr", c.lr, path);
    read(args, "channels", c.channels, path);
    read(args, "width", c.width, path);
    read(args, "num_blocks", c.num_blocks, path);
    read(args, "path", c.model_path, path);
  }
  read(root, "cache", c.cache, path);
  read(root, "features", c.features, path);
  read(root, "target", c.target, path);
  read(root, "batch_size", c.batch_size, path);
  read(root, "val_frac", c.val_frac, path);
  read(root, "test_frac", c.test_frac, path);
  read(root, "seed", c.seed, path);
  read(root, "loss", c.loss, path);
  read(root, "distill", c.distill, path);
  read(root, "teacher", c.teacher, path);
  if (const YAML::Node q = root["qat"]) {
    if (!q.IsMap()) throw Error(path, "'qat' must be a mapping");
    read(q, "epochs_fp32", c.epochs_fp32, path);
    read(q, "epochs_qat", c.epochs_qat, path);
    read(q, "lr_qat", c.lr_qat, path);
    read(q, "input_shape", c.input_shape, path);
    read(q, "input_name", c.input_name, path);
    read(q, "output_name", c.output_name, path);
    read(q, "smoke", c.smoke, path);
    read(q, "distill", c.distill, path);
    read(q, "teacher", c.teacher, path);
    read(q, "n_calibration", c.n_calibration, path);
    read(q, "observer", c.observer, path);
    read(q, "exclude_nodes", c.exclude_nodes, path);
  }
  // Relative cache and model paths are also looked up beside the config file, so configs can
  // travel with their data.
  for (std::string* p : {&c.cache, &c.model_path, &c.teacher}) {
    if (p->empty() || !std::filesystem::path(*p).is_relative() || std::filesystem::exists(*p)) continue;
    std::filesystem::path beside = std::filesystem::path(path).parent_path() / *p;
    if (std::filesystem::exists(beside)) *p = beside.string();
  }
  return c;
}

}  // namespace tinyq::qat
