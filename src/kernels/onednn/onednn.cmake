# tinyq — int8 quantisation for tiny ONNX models.
# SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#
# oneDNN (Debian's libdnnl-dev, 2.x API) for the convolutions where it beats tinyq's kernels.
# Off, or not installed: the adapter compiles to "unavailable" and dispatch never picks it.
if(TINYQ_WITH_ONEDNN)
  find_package(dnnl CONFIG QUIET PATHS /usr/lib/x86_64-linux-gnu/cmake/dnnl)
  if(dnnl_FOUND)
    message(STATUS "tinyq: oneDNN ${dnnl_VERSION} found, convolutions may use it")
    # Debian builds oneDNN on OpenMP; the adapter sets the thread count through it.
    find_package(OpenMP REQUIRED COMPONENTS CXX)
    target_link_libraries(tinyq_kernels PRIVATE DNNL::dnnl OpenMP::OpenMP_CXX)
    target_compile_definitions(tinyq_kernels PRIVATE TINYQ_HAVE_ONEDNN=1)
  else()
    message(STATUS "tinyq: oneDNN not found (libdnnl-dev); building without it")
  endif()
endif()
