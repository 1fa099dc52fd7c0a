# tinyq — int8 quantisation toolkit and runtime for tiny ONNX models.
# SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
# Calibration data sources (Parquet, CSV, raw YUV) and the calibration-set builder.
# Parquet pages may be SNAPPY, GZIP or ZSTD compressed: Debian's libsnappy-dev ships a CMake
# package, libzstd-dev a pkg-config file (its CMake package is not in every Debian release).
find_package(Snappy REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(LIBZSTD REQUIRED IMPORTED_TARGET libzstd)
tinyq_layer(calib DEPS tinyq_runtime Snappy::snappy PkgConfig::LIBZSTD ZLIB::ZLIB)
