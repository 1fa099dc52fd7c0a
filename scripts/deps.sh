#!/usr/bin/env bash
# Installs the Debian 12 packages tinyq builds and tests with; skips what is already there and
# runs `apt-get update` once, only when something must be installed.
set -euo pipefail
packages=(
  build-essential cmake ninja-build ccache pkg-config
  libprotobuf-dev protobuf-compiler libonnx-dev
  nlohmann-json3-dev libcli11-dev libzip-dev zlib1g-dev libssl-dev
  libzstd-dev libsnappy-dev libvalijson-dev libyaml-cpp-dev
  libgtest-dev libbenchmark-dev
  libdnnl-dev libtorch-dev
  python3-numpy
  nodejs npm
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
# node and npm may come from outside Debian (e.g. NodeSource); accept any working ones.
if command -v node >/dev/null && command -v npm >/dev/null; then
  filtered=()
  for p in "${missing[@]}"; do [[ $p == nodejs || $p == npm ]] || filtered+=("$p"); done
  missing=("${filtered[@]}")
fi
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  sudo_cmd=""
  [[ $(id -u) -eq 0 ]] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
