# The C API: a static layer like the others (so C++ tests can reach it) and libtinyq.so, one
# shared library holding the C API and every layer under it, exporting only tinyq_* symbols.
tinyq_layer(capi DEPS tinyq_registry)

file(GLOB TINYQ_CAPI_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/capi/*.cpp)
add_library(tinyq_shared SHARED ${TINYQ_CAPI_SOURCES})
set_target_properties(tinyq_shared PROPERTIES
  OUTPUT_NAME tinyq
  VERSION ${PROJECT_VERSION}
  SOVERSION ${PROJECT_VERSION_MAJOR}
  CXX_VISIBILITY_PRESET hidden
  VISIBILITY_INLINES_HIDDEN ON)
target_include_directories(tinyq_shared
  PUBLIC $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include> $<INSTALL_INTERFACE:include>
  PRIVATE ${PROJECT_SOURCE_DIR}/src)
target_link_libraries(tinyq_shared PRIVATE tinyq_registry)
# The static layers were built with default visibility; keep their C++ symbols out of the
# shared library's interface so only the C API is exported.
target_link_options(tinyq_shared PRIVATE "LINKER:--exclude-libs,ALL")
tinyq_warnings(tinyq_shared)
