# tinyq_layer(NAME DEPS ...): a static library from every .cpp under src/NAME (recursively).
# Public headers live in include/tinyq; private headers sit beside their sources and are
# included relative to src/ ("io/onnx_io.h").
set(TINYQ_LAYERS "" CACHE INTERNAL "")
function(tinyq_layer name)
  cmake_parse_arguments(ARG "" "" "DEPS;SOURCES" ${ARGN})
  file(GLOB_RECURSE srcs CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/${name}/*.cpp)
  if(NOT srcs AND NOT ARG_SOURCES)
    # A layer with no code yet still takes part in the dependency chain.
    add_library(tinyq_${name} INTERFACE)
    target_include_directories(tinyq_${name} INTERFACE $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>)
    target_link_libraries(tinyq_${name} INTERFACE ${ARG_DEPS})
    set(TINYQ_LAYERS ${TINYQ_LAYERS} tinyq_${name} CACHE INTERNAL "")
    return()
  endif()
  add_library(tinyq_${name} STATIC ${srcs} ${ARG_SOURCES})
  target_include_directories(tinyq_${name}
    PUBLIC $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include> $<INSTALL_INTERFACE:include>
    PRIVATE ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(tinyq_${name} PUBLIC ${ARG_DEPS})
  target_compile_definitions(tinyq_${name} PRIVATE TINYQ_VERSION_STRING="${PROJECT_VERSION}")
  tinyq_warnings(tinyq_${name})
  set(TINYQ_LAYERS ${TINYQ_LAYERS} tinyq_${name} CACHE INTERNAL "")
endfunction()
