#!/usr/bin/env bash
# Prepares the LLVM bundle that burn's `cuda` feature needs at build time, without the download
# its build script would make (cubecl-llvm -> tracel-llvm-bundler fetches an LLVM 23.1 archive).
#
# PyPI's mlc-llvm-static wheels hold the same LLVM release as static libraries, headers and an
# `llvm-config` that answers every query the bundler makes. Unpacked where the bundler looks
# ($XDG_DATA_HOME/tracel/tracel-llvm-23.1.0-4, default ~/.local/share) with its marker file, the
# bundler uses them and skips the download. Needs python3 with pip and access to PyPI (or
# WHEEL_DIR pointing at the two wheels already downloaded). About 400 MB on disk.
#
# Then build:  CUDARC_CUDA_VERSION=13000 cargo build --release --features cuda
set -euo pipefail

VERSION=23.1.1.post0
DEST="${XDG_DATA_HOME:-$HOME/.local/share}/tracel/tracel-llvm-23.1.0-4"
if [[ -f "$DEST/.tracel-llvm-installed" ]]; then
    echo "LLVM bundle already prepared in $DEST"
    exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
wheels="${WHEEL_DIR:-$work/whl}"
if [[ -z "${WHEEL_DIR:-}" ]]; then
    python3 -m pip download --no-deps -d "$wheels" \
        "mlc-llvm-static==$VERSION" "mlc-llvm-static-extra-targets==$VERSION"
fi
shopt -s nullglob
found=("$wheels"/mlc_llvm_static*-"$VERSION"-*.whl)
if (( ${#found[@]} != 2 )); then
    echo "error: expected the two mlc-llvm-static $VERSION wheels in $wheels, found ${#found[@]}" >&2
    exit 1
fi
for w in "${found[@]}"; do
    python3 -m zipfile -e "$w" "$work/unz"
done
static="$work/unz/mlc_llvm_static/static"
if [[ ! -x "$static/bin/llvm-config" && ! -f "$static/bin/llvm-config" ]]; then
    echo "error: $static/bin/llvm-config missing: the wheels' layout changed" >&2
    exit 1
fi
mkdir -p "$DEST"
cp -a "$static/." "$DEST/"
chmod +x "$DEST/bin/llvm-config"
"$DEST/bin/llvm-config" --version >/dev/null
touch "$DEST/.tracel-llvm-installed"
echo "LLVM $("$DEST/bin/llvm-config" --version) prepared in $DEST"
echo "now: CUDARC_CUDA_VERSION=13000 cargo build --release --features cuda"
