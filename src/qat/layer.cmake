# tinyq — int8 quantisation toolkit and runtime for tiny ONNX models.
# SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
# Quantisation-aware training on libtorch (Debian's libtorch-dev). Optional: without libtorch,
# or with -DTINYQ_WITH_QAT=OFF, the layer and the `tinyq qat` command are left out.
if(TINYQ_WITH_QAT)
  find_package(Torch QUIET PATHS /usr/lib/x86_64-linux-gnu/cmake/Torch /usr/share/cmake/Torch)
  find_package(yaml-cpp QUIET)
  if(Torch_FOUND AND yaml-cpp_FOUND)
    tinyq_layer(qat DEPS tinyq_quant tinyq_calib ${TORCH_LIBRARIES} yaml-cpp)
    # Whatever links the layer (the CLI through tinyq_all, the tests) sees the command.
    target_compile_definitions(tinyq_qat PUBLIC TINYQ_WITH_QAT)
    message(STATUS "tinyq: QAT layer on (libtorch ${Torch_VERSION})")
  else()
    message(STATUS "tinyq: QAT layer off (libtorch-dev or libyaml-cpp-dev not found)")
  endif()
endif()
