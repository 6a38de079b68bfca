#!/usr/bin/env bash
# ctgrad vs PyTorch, one training step (forward, BCE loss, backward, Adam), on
# this machine's CPU, same batch, size and thread count, run side by side:
# for each net, ctgrad then PyTorch, back to back, so both see the same load.
# Prints one table row per net with the ratio (PyTorch ms / ctgrad ms; > 1
# means ctgrad is faster).
#   bench/compare_cpu.sh [BATCH] [SIZE] [THREADS] [STEPS] [NETS...]
# CTGRAD_BIN: the ctgrad binary (default ./build/ctgrad). The header names the
# CPU (model, family/model numbers, vector extensions) and the BLAS kernels
# ctgrad's GEMMs run (OPENBLAS_CORETYPE, when the machine sets it, is kept:
# run `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE bench/compare_cpu.sh …`
# to measure OpenBLAS's own choice, and say so with the figures).
set -euo pipefail
cd "$(dirname "$0")/.."
batch=${1:-9}; size=${2:-512}; threads=${3:-2}; steps=${4:-5}
shift $(( $# < 4 ? $# : 4 )) || true
nets=("$@"); [ ${#nets[@]} -gt 0 ] || nets=(dense20 cnn1 cnn2 resnet18)
py=/usr/bin/python3
bin=${CTGRAD_BIN:-./build/ctgrad}
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)
fam=$(grep -m1 'cpu family' /proc/cpuinfo | cut -d: -f2 | xargs); mod=$(grep -m1 '^model' /proc/cpuinfo | cut -d: -f2 | xargs)
simd=$(grep -m1 '^flags' /proc/cpuinfo | grep -o -w 'avx2\|avx512f\|avx512_bf16\|amx_tile' | xargs)
echo "# $(date -u +%F) $(nproc) cores, $cpu (family $fam model $mod; $simd)"
echo "# ctgrad BLAS: $("$bin" bench step --net dense20 --batch 1 --size 16 --steps 1 --warmup 0 2>/dev/null | sed -n 's/^blas: //p')"
echo "# batch $batch, size $size, threads $threads, median of $steps steps after 2 warm-up"
printf "| %-8s | %12s | %12s | %8s |\n" net "ctgrad ms" "PyTorch ms" ratio
printf "|%s|%s|%s|%s|\n" ---------- -------------- -------------- ----------
for net in "${nets[@]}"; do
  ours=$("$bin" bench step --net "$net" --batch "$batch" --size "$size" --threads "$threads" \
           --steps "$steps" --warmup 2 2>/dev/null | awk '/^ms_per_step/{print $2}')
  theirs=$("$py" bench/compare_pytorch.py --net "$net" --batch "$batch" --size "$size" --threads "$threads" \
             --steps "$steps" --warmup 2 2>/dev/null | awk '/^ms_per_step/{print $2}')
  ratio=$(awk -v a="$ours" -v b="$theirs" 'BEGIN{printf "%.2f", b/a}')
  printf "| %-8s | %12s | %12s | %8s |\n" "$net" "$ours" "$theirs" "$ratio"
done
