# Every dependency is a Debian 12 package (scripts/deps.sh installs them).
find_package(OpenSSL REQUIRED)
find_package(ZLIB REQUIRED)
find_package(Protobuf REQUIRED)
find_package(ONNX REQUIRED)
# libzip's CMake config names tools from another package (zipcmp); pkg-config is reliable.
find_package(PkgConfig REQUIRED)
pkg_check_modules(LIBZIP REQUIRED IMPORTED_TARGET libzip)
find_package(nlohmann_json REQUIRED)
find_package(CLI11 REQUIRED)
find_package(Threads REQUIRED)
if(TINYQ_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
