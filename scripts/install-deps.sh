#!/usr/bin/env bash
# Install the Debian packages ctgrad builds against, when any is missing.
# Run as root (CI and the dev machines are); otherwise prints the command.
set -euo pipefail
pkgs=(cmake g++ make doctest-dev libstb-dev libopenblas-dev libopenblas0-openmp nlohmann-json3-dev libcli11-dev zlib1g-dev libopenmpi-dev openmpi-bin)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "ctgrad: installing missing packages: ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "ctgrad: not root; run: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}"
