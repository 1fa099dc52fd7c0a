// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// Training rows for QAT, whatever the architecture: feature vectors ([rows, features]) or images
// ([rows, channels, height, width]), each row with an optional target of any size (one score, or
// a clean image for a filter). Loaded from a cache (.npz x/y, parquet features/target) or made
// up for smoke runs.

#include <cstdint>
#include <string>
#include <vector>

#include "tinyq/qat.h"
#include "tinyq/tensor.h"

namespace tinyq::qat {

struct Dataset {
  std::vector<float> x;              ///< rows x sample_size, row-major
  std::vector<float> y;              ///< rows x target_size; empty without labels
  int64_t rows = 0;
  std::vector<int64_t> sample_shape;  ///< one row of x: [features] or [channels, height, width]
  int64_t sample_size = 0;            ///< product of sample_shape
  int64_t target_size = 0;            ///< values per row of y (0 without labels)

  bool labelled() const { return target_size > 0; }
  /// x as a [rows, sample_shape...] tensor (a copy).
  Tensor input_tensor() const;
};

/// The rows `rows` of `d`, in that order.
Dataset take_rows(const Dataset& d, const std::vector<int64_t>& rows);
/// The first min(n, rows) rows.
Dataset first_rows(const Dataset& d, int64_t n);

/// Reads the cache named by the config: an .npz with `x` [N, ...] (float32/64) and optional `y`
/// [N, ...], or a parquet file with the config's `features` and `target` columns. Errors name
/// the file.
Dataset load_cache(const QatConfig& config);

/// Smoke rows of feature vectors: Gaussian features and a smooth non-linear score.
Dataset smoke_vectors(int64_t features, uint64_t seed);

/// What a smoke image row is labelled with.
enum class SmokeImageTarget {
  None,     ///< no labels (the fp32 model is the teacher)
  Clean,    ///< the clean image (x is it with noise added): a denoising filter's target
  Quality,  ///< a score falling with the noise level: a no-reference metric's target
};
/// Smoke rows of images: smooth random fields in [0, 1] with Gaussian noise of a random level.
Dataset smoke_images(int64_t channels, int64_t height, int64_t width, SmokeImageTarget target, uint64_t seed,
                     int64_t rows = 64);

}  // namespace tinyq::qat
