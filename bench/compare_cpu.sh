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
# CTGRAD_ISA=avx2: time both engines as an AVX2 machine (no AVX-512) would
# run them — ctgrad built with -DCTGRAD_MARCH=x86-64-v3 (CTGRAD_BIN; the
# script refuses a binary compiled for AVX-512) on its AVX2 GEMM kernel,
# PyTorch with oneDNN capped at AVX2 (ONEDNN_MAX_CPU_ISA=AVX2) and ATen's
# AVX2 kernels (ATEN_CPU_CAPABILITY=avx2).
set -euo pipefail
cd "$(dirname "$0")/.."
batch=${1:-9}; size=${2:-512}; threads=${3:-2}; steps=${4:-5}
shift $(( $# < 4 ? $# : 4 )) || true
nets=("$@"); [ ${#nets[@]} -gt 0 ] || nets=(dense20 cnn1 cnn2 resnet18)
py=/usr/bin/python3
bin=${CTGRAD_BIN:-./build/ctgrad}
isa=${CTGRAD_ISA:-}
ours_flags=()
case "$isa" in
  "") ;;
  avx2)
    code=$("$bin" bench step --net dense20 --batch 1 --size 16 --steps 1 --warmup 0 2>/dev/null | sed -n 's/^code: //p')
    case "$code" in
      *"AVX2 + FMA"*) ;;
      *) echo "compare_cpu.sh: CTGRAD_ISA=avx2 needs a ctgrad built for AVX2 (cmake -B build-avx2 -DCTGRAD_MARCH=x86-64-v3; CTGRAD_BIN=build-avx2/ctgrad); $bin is $code" >&2
         exit 2 ;;
    esac
    ours_flags=(--cpu-gemm avx2)
    export ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 ;;
  *) echo "compare_cpu.sh: CTGRAD_ISA: expected avx2 or nothing, got '$isa'" >&2; exit 2 ;;
esac
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)
fam=$(grep -m1 'cpu family' /proc/cpuinfo | cut -d: -f2 | xargs); mod=$(grep -m1 '^model' /proc/cpuinfo | cut -d: -f2 | xargs)
simd=$(grep -m1 '^flags' /proc/cpuinfo | grep -o -w 'avx2\|avx512f\|avx512_bf16\|amx_tile' | xargs)
echo "# $(date -u +%F) $(nproc) cores, $cpu (family $fam model $mod; $simd)"
probe=$("$bin" bench step --net dense20 --batch 1 --size 16 --steps 1 --warmup 0 "${ours_flags[@]}" 2>/dev/null)
echo "# ctgrad BLAS: $(sed -n 's/^blas: //p' <<<"$probe"); $(sed -n 's/^code: //p' <<<"$probe")"
[ -z "$isa" ] || echo "# as an $isa machine: ctgrad ${ours_flags[*]}; PyTorch ONEDNN_MAX_CPU_ISA=$ONEDNN_MAX_CPU_ISA ATEN_CPU_CAPABILITY=$ATEN_CPU_CAPABILITY"
echo "# batch $batch, size $size, threads $threads, median of $steps steps after 2 warm-up"
printf "| %-8s | %12s | %12s | %8s |\n" net "ctgrad ms" "PyTorch ms" ratio
printf "|%s|%s|%s|%s|\n" ---------- -------------- -------------- ----------
for net in "${nets[@]}"; do
  ours=$("$bin" bench step --net "$net" --batch "$batch" --size "$size" --threads "$threads" \
           --steps "$steps" --warmup 2 "${ours_flags[@]}" 2>/dev/null | awk '/^ms_per_step/{print $2}')
  theirs=$("$py" bench/compare_pytorch.py --net "$net" --batch "$batch" --size "$size" --threads "$threads" \
             --steps "$steps" --warmup 2 2>/dev/null | awk '/^ms_per_step/{print $2}')
  ratio=$(awk -v a="$ours" -v b="$theirs" 'BEGIN{printf "%.2f", b/a}')
  printf "| %-8s | %12s | %12s | %8s |\n" "$net" "$ours" "$theirs" "$ratio"
done
