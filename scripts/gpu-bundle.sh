#!/usr/bin/env bash
# Packs the Debian build dependencies that the lent GPU machine lacks into one
# git-ignored folder that a `device` run can carry (no network there):
#   scripts/gpu-bundle.sh [DIR]        (default: gpu-bundle/)
# DIR/deps.tar.gz holds the packages unpacked with `dpkg -x` (headers, CMake
# package files, OpenBLAS with the Fortran runtime it needs), trimmed of docs
# and static libraries; DIR/MANIFEST.txt lists the packages and versions.
# bench/gpu_check.sh unpacks it and configures with -DCTGRAD_DEPS_PREFIX=...
# The GPU machine's own compiler (and its libgomp) builds; nothing here is a
# binary of ours: everything is built there.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-gpu-bundle}
limit_mib=40
pkgs=(doctest-dev nlohmann-json3-dev libcli11-dev libstb-dev zlib1g-dev zlib1g
      libopenblas0-openmp libopenblas-openmp-dev libgfortran5 libquadmath0)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/debs" "$work/root"
chmod 755 "$work"; chmod 777 "$work/debs"  # apt-get download runs as _apt
if [ "$(id -u)" -eq 0 ] && [ -z "$(find /var/lib/apt/lists -name '*Packages*' -print -quit 2>/dev/null)" ]; then
  apt-get update -qq
fi
echo "gpu-bundle: downloading ${pkgs[*]}"
(cd "$work/debs" && apt-get download -qq "${pkgs[@]}") || {
  echo "gpu-bundle: apt-get download failed (run 'apt-get update' as root first)" >&2
  exit 1
}
: > "$work/MANIFEST.txt"
for deb in "$work"/debs/*.deb; do
  dpkg -x "$deb" "$work/root"
  dpkg-deb -W --showformat='${Package} ${Version}\n' "$deb" >> "$work/MANIFEST.txt"
done
# What the build does not need: documentation, static archives, LAPACK.
r=$work/root
rm -rf "$r/usr/share/doc" "$r/usr/share/man" "$r/usr/share/lintian" "$r/usr/share/gcc"
find "$r" -name '*.a' -delete
find "$r" \( -name 'liblapack.so*' -o -name 'libblas.so*' \) -delete
# Debian's cblas.h is an alternatives link (/etc/alternatives), absent after
# dpkg -x: the OpenMP build's own header is in its folder, which CMake searches.
tar -C "$r" -czf "$work/deps.tar.gz" .
size=$(du -m "$work/deps.tar.gz" | cut -f1)
if [ "$size" -gt "$limit_mib" ]; then
  echo "gpu-bundle: deps.tar.gz is ${size} MiB, over the ${limit_mib} MiB limit" >&2
  exit 1
fi
rm -rf "$out"
mkdir -p "$out"
mv "$work/deps.tar.gz" "$work/MANIFEST.txt" "$out/"
echo "gpu-bundle: $out/deps.tar.gz (${size} MiB, $(wc -l < "$out/MANIFEST.txt") packages); carry '$out' in the device run"
