# tinyq — int8 quantisation for tiny ONNX models.
# SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#
# Per-file ISA flags of the x86 kernels. The files are part of tinyq_kernels (the layer globs
# them); only these translation units may use the ISA, and the dispatcher
# (src/kernels/dispatch.cpp) calls them only on CPUs that have it. Never -march=native.
# -ffp-contract=off: the epilogues multiply then add in separate roundings on purpose (the
# dynamic-quantisation paths reproduce Cast -> Mul -> Add bit for bit).
# -Wno-maybe-uninitialized on the AVX-512 files: GCC 12's own avx512fintrin.h trips it
# (GCC bug 105593), not tinyq's code.
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64|i[3-6]86)$")
  set(_x86 ${PROJECT_SOURCE_DIR}/src/kernels/x86)
  set_source_files_properties(
    ${_x86}/conv_f32_avx2_fma.cpp ${_x86}/qgemm_u8s8_avx2.cpp ${_x86}/quantize_avx2.cpp ${_x86}/winograd_f32_avx2_fma.cpp
    ${_x86}/chain_avx2.cpp
    PROPERTIES COMPILE_OPTIONS "-mavx2;-mfma;-ffp-contract=off")
  set_source_files_properties(
    ${_x86}/conv_f32_avx512.cpp ${_x86}/winograd_f32_avx512.cpp ${_x86}/reduce_f32_avx512.cpp ${_x86}/chain_avx512.cpp
    PROPERTIES COMPILE_OPTIONS "-mavx512f;-mavx512bw;-mavx512vl;-mavx2;-mfma;-ffp-contract=off;-Wno-maybe-uninitialized")
  set_source_files_properties(
    ${_x86}/qgemm_u8s8_avx512vnni.cpp ${_x86}/chain_avx512vnni.cpp
    PROPERTIES COMPILE_OPTIONS "-mavx512f;-mavx512bw;-mavx512vl;-mavx512vnni;-mavx2;-mfma;-ffp-contract=off;-Wno-maybe-uninitialized")
  target_compile_definitions(tinyq_kernels PUBLIC TINYQ_X86_KERNELS=1)
else()
  # Other architectures build the portable kernels only; the x86 files compile to nothing.
  file(GLOB _x86_sources ${PROJECT_SOURCE_DIR}/src/kernels/x86/*.cpp)
  set_source_files_properties(${_x86_sources} PROPERTIES HEADER_FILE_ONLY ON)
endif()
# The portable drivers: no ISA flags, but no FMA contraction either (see above).
file(GLOB _fast_sources ${PROJECT_SOURCE_DIR}/src/kernels/fast/*.cpp)
set_source_files_properties(${_fast_sources} PROPERTIES COMPILE_OPTIONS "-ffp-contract=off")
target_link_libraries(tinyq_kernels PUBLIC Threads::Threads)
