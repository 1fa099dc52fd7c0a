// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent

// `tinyq build-calibration-set`: a calibration .npz (one array named --input-name, a stack of
// samples) from a Parquet or CSV feature table or from raw YUV video; optionally records it as
// a registry entry's quant_calibration_set.

#include <filesystem>
#include <iostream>
#include <memory>

#include "cli/cli_util.h"
#include "cli/command.h"
#include "common/file_util.h"
#include "common/sha256.h"
#include "tinyq/calibration.h"
#include "tinyq/model_io.h"
#include "tinyq/registry.h"

namespace tinyq::cli {
namespace {

struct Args {
  std::string out, input_name;
  std::string parquet, csv, yuv;
  std::vector<std::string> columns;
  bool drop_null = false;
  bool allow_nonfinite = false;
  std::string size, format = "yuv420p", frames, crop, resize;
  int64_t n = -1;
  uint64_t seed = 0;
  std::string sample = "first";
  std::string by;
  int64_t bins = 10;
  bool compress = false;
  std::string registry, model, root = ".";
};

/// `out` relative to `root`, refusing a path outside it (the registry records repo-relative
/// paths only).
std::string path_in_root(const std::string& out, const std::string& root) {
  namespace fs = std::filesystem;
  const fs::path abs_out = weakly_canonical_path(out), abs_root = weakly_canonical_path(root);
  std::string rel = abs_out.lexically_relative(abs_root).generic_string();
  if (rel.empty() || !path_stays_inside(rel))
    throw Error("--out", "'" + out + "' is not inside the repo root '" + root +
                             "', so the registry cannot record it (see --root)");
  return rel;
}

/// Checks, before anything is written, that the registry edit can go ahead: the entry exists,
/// and for an int8 mode the sibling still has the digest the registry trusts (recording a
/// calibration set rewrites int8_sha256 from the file, which must not bless changed bytes).
const RegistryEntry* precheck_registry(const Args& a, Registry& reg) {
  RegistryOptions opts;
  opts.root = a.root;
  reg = load_registry(a.registry, opts);
  const RegistryEntry& e = reg.at(a.model);
  if (e.quant_mode != QuantMode::Fp32) {
    std::string sibling = reg.int8_path(e);
    std::string digest = sha256_hex(read_file_bounded(sibling, LoadLimits{}.max_file_bytes));
    if (digest != e.int8_sha256)
      throw Error(sibling, "sha256 " + digest + " differs from the registry's int8_sha256 " + e.int8_sha256 +
                               "; refusing to record a calibration set for model '" + a.model + "'");
  }
  return &e;
}

int build(const Args& a) {
  CalibrationSetSpec spec;
  const int sources = !a.parquet.empty() + !a.csv.empty() + !a.yuv.empty();
  if (sources != 1) throw Error("build-calibration-set", "give exactly one of --parquet FILE, --csv FILE or --yuv FILE");
  const bool table = a.yuv.empty();
  auto only_for = [](bool ok, bool given, const char* opt, const char* sources_text) {
    if (!ok && given) throw Error(opt, std::string("is only used with ") + sources_text);
  };
  only_for(table, !a.columns.empty(), "--columns", "--parquet or --csv");
  only_for(table, a.drop_null, "--drop-null", "--parquet or --csv");
  only_for(!table, !a.size.empty(), "--size", "--yuv");
  only_for(!table, !a.frames.empty(), "--frames", "--yuv");
  only_for(!table, !a.crop.empty(), "--crop", "--yuv");
  only_for(!table, !a.resize.empty(), "--resize", "--yuv");
  if (!a.registry.empty() != !a.model.empty()) throw Error("--registry", "--registry and --model go together");

  spec.input_name = a.input_name;
  spec.allow_nonfinite = a.allow_nonfinite;
  spec.sample.mode = parse_sample_mode(a.sample);
  spec.sample.n = a.n;
  spec.sample.seed = a.seed;
  spec.sample.bins = a.bins;
  spec.by_column = a.by;
  if (table) {
    spec.source = a.parquet.empty() ? CalibrationSetSpec::Source::Csv : CalibrationSetSpec::Source::Parquet;
    spec.path = a.parquet.empty() ? a.csv : a.parquet;
    if (a.columns.empty()) throw Error("--columns", "name the feature columns, e.g. --columns adm2,vif_scale0,motion2");
    for (const auto& c : a.columns)
      if (c.empty()) throw Error("--columns", "a column name is empty");
    spec.columns = a.columns;
    spec.drop_null = a.drop_null;
  } else {
    spec.source = CalibrationSetSpec::Source::Yuv;
    spec.path = a.yuv;
    if (a.size.empty()) throw Error("--size", "raw YUV needs the frame size, e.g. --size 1920x1080");
    auto [w, h] = parse_size_spec(a.size, "--size");
    spec.yuv = {w, h, parse_yuv_format(a.format)};
    if (!a.frames.empty()) spec.frames = parse_frame_list(a.frames);
    if (!a.crop.empty() && !a.resize.empty()) throw Error("--crop", "use either --crop or --resize, not both");
    if (!a.crop.empty()) {
      auto [cw, ch] = parse_size_spec(a.crop, "--crop");
      spec.geometry = {LumaGeometry::Mode::CenterCrop, cw, ch};
    } else if (!a.resize.empty()) {
      auto [rw, rh] = parse_size_spec(a.resize, "--resize");
      spec.geometry = {LumaGeometry::Mode::Resize, rw, rh};
    }
  }
  require_file(spec.path);
  if (same_file(a.out, spec.path)) throw Error(a.out, "--out would overwrite the source file");

  std::string recorded;
  Registry reg;
  if (!a.registry.empty()) {
    recorded = path_in_root(a.out, a.root);
    precheck_registry(a, reg);
  }

  CalibrationSet set = build_calibration_set(spec);
  write_npz(a.out, set.arrays, a.compress);
  const Tensor& t = set.arrays.front().second;
  std::cout << a.out << ": '" << a.input_name << "' " << dtype_name(t.dtype()) << " " << shape_to_string(t.shape())
            << " from " << set.picked.size() << " of " << set.source_rows << (table ? " rows" : " frames") << " of "
            << spec.path;
  if (set.dropped_null_rows) std::cout << " (" << set.dropped_null_rows << " rows with nulls dropped)";
  std::cout << ", sample " << a.sample;
  if (!a.by.empty()) std::cout << " by " << a.by;
  if (spec.sample.mode != SampleMode::First) std::cout << ", seed " << a.seed;
  std::cout << "\n";

  if (!a.registry.empty()) {
    RegistryUpdate up;
    up.quant_mode = reg.at(a.model).quant_mode;  // unchanged: only the calibration set is recorded
    up.calibration_set = recorded;
    RegistryOptions opts;
    opts.root = a.root;
    RegistryUpdateResult r = update_registry_entry(a.registry, a.model, up, opts);
    if (!r.written)
      throw Error(a.registry, "not updated, the edit would make it invalid: " +
                                  (r.problems.empty() ? std::string("unknown problem") : r.problems.front()));
    std::cout << a.registry << ": " << a.model << " quant_calibration_set = " << recorded << "\n";
  }
  return 0;
}

}  // namespace

CommandAction setup_build_calibration_set(CLI::App& app) {
  auto a = std::make_shared<Args>();
  app.add_option("--out", a->out, "The .npz to write (atomically)")->required();
  app.add_option("--input-name", a->input_name, "The model input the samples feed (the array's name)")->required();
  app.add_option("--parquet", a->parquet, "Source: an Apache Parquet feature table");
  app.add_option("--csv", a->csv, "Source: a CSV feature table with a header row");
  app.add_option("--yuv", a->yuv, "Source: raw planar YUV 4:2:0 video");
  app.add_option("--columns", a->columns, "Parquet/CSV: feature columns, in the order the model takes them")
      ->delimiter(',');
  app.add_flag("--drop-null", a->drop_null, "Parquet/CSV: drop rows with a null (default: refuse them)");
  app.add_flag("--allow-nonfinite", a->allow_nonfinite, "Keep NaN/Inf feature values (default: refuse them)");
  app.add_option("--size", a->size, "YUV: frame size WIDTHxHEIGHT");
  app.add_option("--format", a->format, "YUV: yuv420p or yuv420p10le")->capture_default_str();
  app.add_option("--frames", a->frames, "YUV: frames to use, e.g. 0,10,20 or 0:300:10 (default: all)");
  app.add_option("--crop", a->crop, "YUV: centre-crop the luma plane to WIDTHxHEIGHT");
  app.add_option("--resize", a->resize, "YUV: resize the luma plane to WIDTHxHEIGHT (bilinear, half-pixel)");
  app.add_option("--n", a->n, "Samples to take (default: all)")->check(CLI::Range(int64_t{1}, INT64_MAX));
  app.add_option("--seed", a->seed, "Seed for random and stratified sampling")->capture_default_str();
  app.add_option("--sample", a->sample, "first, random or stratified")->capture_default_str();
  app.add_option("--by", a->by, "Stratified: the column whose values define the strata");
  app.add_option("--bins", a->bins, "Stratified on a numeric column: equal-count bins when it has more distinct values")
      ->check(CLI::Range(int64_t{1}, int64_t{1000000}))
      ->capture_default_str();
  app.add_flag("--compress", a->compress, "Deflate the .npz members (like numpy.savez_compressed)");
  app.add_option("--registry", a->registry, "Also record the set as --model's quant_calibration_set in this registry");
  app.add_option("--model", a->model, "Registry model id (with --registry)");
  app.add_option("--root", a->root, "Repo root that quant_calibration_set paths are relative to")
      ->capture_default_str();
  return [a] { return build(*a); };
}

}  // namespace tinyq::cli
