# tinyq — int8 quantisation for tiny ONNX models.
# SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#
# The fast kernels' build settings (ISA flags per file, oneDNN) and the benchmark executables,
# included from CMakeLists.txt right after the kernels layer is defined.
include(${CMAKE_CURRENT_LIST_DIR}/x86/kernels_x86.cmake)
include(${CMAKE_CURRENT_LIST_DIR}/onednn/onednn.cmake)
include(${PROJECT_SOURCE_DIR}/bench/bench.cmake)
