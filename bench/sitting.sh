#!/usr/bin/env bash
# One benchmark sitting: every benchmarked train step with each genforge binary given, then the
# PyTorch references, the whole repeated ROUNDS times with the order of the binaries reversed
# every other round (so drift in the machine does not favour one).
#
#   bash bench/sitting.sh target/release/genforge [OTHER_BINARY ...]   (ROUNDS=2 by default)
#
# The prior step reads code maps: CODES=DIR (default runs/vqvae2-mnist/codes, made by
# `genforge train vqvae2-mnist --run-dir runs/vqvae2-mnist --steps 1` and `genforge encode
# runs/vqvae2-mnist`; the step's time does not depend on how well the autoencoder is trained).
#
# Prints one line per measurement: `<label> <step> <s/step> <img/s> <peak RSS MiB>`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-2}
CODES=${CODES:-runs/vqvae2-mnist/codes}
binaries=("$@")
[ ${#binaries[@]} -gt 0 ] || { echo "usage: bench/sitting.sh GENFORGE_BINARY [...]" >&2; exit 2; }

# preset and its `genforge bench` arguments; the same step's PyTorch command.
steps=(
  "dcgan-mnist|--steps 3 --warmup 1|bench/torch_gan_step.py --model dcgan --steps 3 --threads 2"
  "sagan-mnist|--steps 3 --warmup 1|bench/torch_gan_step.py --model sagan --steps 3 --threads 2"
  "stylegan-mnist|--batch 32 --steps 8 --warmup 1|bench/torch_stylegan.py --preset mnist --batch 32 --steps 8 --warmup 1 --threads 2"
  "stylegan-emoji|--batch 32 --steps 8 --warmup 1|bench/torch_stylegan.py --preset emoji --batch 32 --steps 8 --warmup 1 --threads 2"
  "pggan-mnist|--batch 32 --steps 5 --warmup 1|bench/torch_pggan.py --preset mnist --batch 32 --steps 5 --warmup 1 --threads 2"
  "biggan-mnist|--steps 4 --warmup 1|bench/torch_biggan.py --preset mnist --batch 64 --steps 4 --warmup 1 --threads 2"
  "vitgan-cifar10|--batch 32 --steps 3 --warmup 1|bench/torch_vitgan.py --batch 32 --steps 3 --warmup 1 --threads 2"
  "vqvae2-mnist|--steps 5 --warmup 2|"
  "pixelcnn-mnist|--steps 5 --warmup 2 --set data.path=$CODES|bench/torch_vqvae2.py --steps 5 --warmup 2 --threads 2"
)

genforge_round() {
  local bin=$1 label=$2
  for s in "${steps[@]}"; do
    IFS='|' read -r preset args _ <<<"$s"
    # shellcheck disable=SC2086
    if line=$("$bin" bench "$preset" $args 2>&1); then
      line=$(grep -m1 's/step' <<<"$line")
      echo "$label $preset $(sed -E 's/.*: ([0-9.]+) s\/step +([0-9.]+) img\/s +peak RSS ([0-9]+) MiB.*/\1 \2 \3/' <<<"$line")"
    else
      echo "$label $preset failed: $(tail -1 <<<"$line")"
    fi
  done
}

torch_round() {
  for s in "${steps[@]}"; do
    IFS='|' read -r preset _ cmd <<<"$s"
    [ -n "$cmd" ] || continue
    # shellcheck disable=SC2086
    python3 $cmd 2>&1 | grep -E 's/step|sampling|peak RSS' | sed "s/^/pytorch $preset: /" || echo "pytorch $preset failed"
  done
}

echo "# $(date -u +%FT%TZ) $(lscpu | sed -n 's/^Model name: *//p') $(nproc) CPUs"
for b in "${binaries[@]}"; do echo "# $b: $("$b" --version)"; done
for ((r = 1; r <= ROUNDS; r++)); do
  order=("${binaries[@]}")
  if ((r % 2 == 0)); then
    order=()
    for ((i = ${#binaries[@]} - 1; i >= 0; i--)); do order+=("${binaries[i]}"); done
  fi
  for b in "${order[@]}"; do genforge_round "$b" "$(basename "$b")"; done
  torch_round
done
