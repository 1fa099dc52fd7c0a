# tinyq — int8 quantisation for tiny ONNX models.
# SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#
# Benchmark executables (not tests): bench/bench.sh runs them.
add_executable(tinyq_bench_mlp ${PROJECT_SOURCE_DIR}/bench/bench_mlp.cpp)
target_link_libraries(tinyq_bench_mlp PRIVATE tinyq_all)
target_include_directories(tinyq_bench_mlp PRIVATE ${PROJECT_SOURCE_DIR}/src)
tinyq_warnings(tinyq_bench_mlp)
