# The registry layer: registry.json parsing and validation (valijson, header-only, from
# /usr/include), the loader's redirect and trust checks (sha256, op allowlist, path safety,
# sidecars).
tinyq_layer(registry DEPS tinyq_runtime nlohmann_json::nlohmann_json)
