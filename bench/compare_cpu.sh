#!/usr/bin/env bash
# ctgrad vs PyTorch, one training step (forward, BCE loss, backward, Adam), on
# this machine's CPU, same batch, size and thread count, run side by side:
# for each net, ctgrad then PyTorch, back to back, so both see the same load.
# Prints one table row per net with the ratio (PyTorch ms / ctgrad ms; > 1
# means ctgrad is faster).
#   bench/compare_cpu.sh [BATCH] [SIZE] [THREADS] [STEPS] [NETS...]
set -euo pipefail
cd "$(dirname "$0")/.."
batch=${1:-9}; size=${2:-512}; threads=${3:-2}; steps=${4:-5}
shift $(( $# < 4 ? $# : 4 )) || true
nets=("$@"); [ ${#nets[@]} -gt 0 ] || nets=(dense20 cnn1 cnn2 resnet18)
py=/usr/bin/python3
echo "# $(date -u +%F) $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "# batch $batch, size $size, threads $threads, median of $steps steps after 2 warm-up"
printf "| %-8s | %12s | %12s | %8s |\n" net "ctgrad ms" "PyTorch ms" ratio
printf "|%s|%s|%s|%s|\n" ---------- -------------- -------------- ----------
for net in "${nets[@]}"; do
  ours=$(./build/ctgrad bench step --net "$net" --batch "$batch" --size "$size" --threads "$threads" \
           --steps "$steps" --warmup 2 2>/dev/null | awk '/^ms_per_step/{print $2}')
  theirs=$("$py" bench/compare_pytorch.py --net "$net" --batch "$batch" --size "$size" --threads "$threads" \
             --steps "$steps" --warmup 2 2>/dev/null | awk '/^ms_per_step/{print $2}')
  ratio=$(awk -v a="$ours" -v b="$theirs" 'BEGIN{printf "%.2f", b/a}')
  printf "| %-8s | %12s | %12s | %8s |\n" "$net" "$ours" "$theirs" "$ratio"
done
