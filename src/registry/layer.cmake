# The registry layer: registry.json parsing and validation (valijson, header-only, from
# /usr/include), the loader's redirect and trust checks (sha256, op allowlist, path safety,
# sidecars).
tinyq_layer(registry DEPS tinyq_runtime nlohmann_json::nlohmann_json)
# valijson reports a schema it cannot use (a bad "type", a broken "pattern", running out of
# memory) by calling abort() unless it is built to throw; schema.cpp turns the throw into an
# error line naming the schema.
target_compile_definitions(tinyq_registry PRIVATE VALIJSON_USE_EXCEPTIONS=1)
