#!/usr/bin/env bash
# `make demo`: the study's main job end to end on the built-in synthetic cohort.
#
#   1. a MosMed-like cohort (ctgrad synth), once
#   2. its slice cache (preprocessing, once; `ctgrad train --data DIR` makes it)
#   3. Dense(20), CNN2, ResNet18 — and ResNet18* from ImageNet weights when
#      WEIGHTS=resnet18.pth (torchvision's file) or an imported .safetensors is given
#   4. per-patient evaluation on the test split (10 slices and central only),
#      and `ctgrad explain` on each run's TP/FP/FN cases and mild/severe examples
#   4c. a short timing study (bench timing: workers 0 and 2, cache and NIfTI)
#   5. runs/demo/report.html, and the own-scan check on one held-out volume
#
# Sizes (environment variables): the default is sized for two CPU cores —
# 250 patients (50 per grade), 128² volumes of 32 slices, 64² network
# inputs, 16/16/10 epochs; SIZE=512 runs the study's protocol (90 patients per
# grade ≈ the report's 452, 512² inputs, 30 epochs) and wants a GPU.
# Runs live in runs/demo/<SIZE>px/<net>; running the demo again resumes them
# (a finished run is only re-scored; delete the folder to retrain).
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-runs/demo}
source scripts/common.sh  # SIZE, DEVICE, WEIGHTS, BUILD, CTGRAD; step, make_cohort, resolve_imagenet_weights
if [ "$SIZE" -ge 512 ]; then
  PATIENTS=${PATIENTS:-90}; MATRIX=${MATRIX:-512}; SLICES=${SLICES:-40}
  EPOCHS_SMALL=${EPOCHS:-30}; EPOCHS_RESNET=${EPOCHS:-30}
else
  PATIENTS=${PATIENTS:-50}; MATRIX=${MATRIX:-128}; SLICES=${SLICES:-32}
  EPOCHS_SMALL=${EPOCHS:-16}; EPOCHS_RESNET=${EPOCHS:-10}
fi
COHORT="$OUT/cohort_${MATRIX}"
RUNS="$OUT/${SIZE}px"   # runs of another input size never mix with these
make_cohort

# train NAME RUN EPOCHS [extra flags]: a run with a committed epoch is resumed
# (a finished one just re-scores its validation patients).
train() {
  local net=$1 run=$2 epochs=$3; shift 3
  if [ -f "$run/last.state.safetensors" ]; then
    "$CTGRAD" train --out "$run" --resume --device "$DEVICE" --epochs "$epochs" | grep -E "^(best_|train_seconds)"
  else
    "$CTGRAD" train --net "$net" --data "$COHORT" --out "$run" --size "$SIZE" --epochs "$epochs" \
      --device "$DEVICE" --workers 2 "$@" | grep -E "^(best_|train_seconds)"
  fi
}

step "2-3. preprocessing (once) and training on the central slice of each training patient"
# Dense(20) at the study's lr 5e-3 dies in its first epoch here: Adam moves
# each of the S² input weights by ~lr per step, so a hidden unit's input jumps
# by ~S²·lr/4 and every ReLU ends up dead (val AUC exactly 0.5). 1e-4 trains.
runs=()
step "train dense20"; train dense20 "$RUNS/dense20" "$EPOCHS_SMALL" --lr 1e-4; runs+=("$RUNS/dense20")
step "train cnn2"; train cnn2 "$RUNS/cnn2" "$EPOCHS_SMALL"; runs+=("$RUNS/cnn2")
step "train resnet18"; train resnet18 "$RUNS/resnet18" "$EPOCHS_RESNET"; runs+=("$RUNS/resnet18")
if [ -n "$WEIGHTS" ]; then
  step "train resnet18* from $WEIGHTS"
  resolve_imagenet_weights
  train resnet18 "$RUNS/resnet18_imagenet" "$EPOCHS_RESNET" --init "$IMAGENET_INIT"; runs+=("$RUNS/resnet18_imagenet")
else
  echo
  echo "note: no WEIGHTS given, so ResNet18* (ImageNet initialisation) is left out and three nets are trained;"
  echo "      WEIGHTS=resnet18.pth make demo adds it (README: how to get torchvision's resnet18 weights)."
fi

step "4. evaluation per patient on the test split (mean of 10 slices; central slice only for Figure 8)"
for run in "${runs[@]}"; do
  "$CTGRAD" eval --run "$run" --split test --device "$DEVICE" | grep -E "^(auc|f1|mcc):" | paste -sd' ' | sed "s|^|$run: |"
  "$CTGRAD" eval --run "$run" --split test --slices central --device "$DEVICE" > /dev/null
done

# Section 5 of the study: what the nets learned. Per run, in RUN/explain/:
# the test TP/FP/FN (at the validation-chosen threshold) and a mild and a
# severe example, each with saliency, occlusion, integrated gradients,
# feature maps, the head map (ResNet18) and the preprocessing view; the
# first conv layer's filters. At 64² occlusion's 16/8 windows (49 per slice)
# and 50 Gauss-Legendre steps cost a few seconds per run on two cores.
step "4b. explain: TP/FP/FN cases and mild/severe examples (filters, feature maps, head maps, attributions)"
for run in "${runs[@]}"; do
  if ! "$CTGRAD" explain --run "$run" --cases tp,fp,fn --examples mild,severe --method all --device "$DEVICE" \
      > "$run/explain.log" 2>&1; then
    cat "$run/explain.log"; exit 1
  fi
  echo "$run: $(grep -c '^explain: .* -> ' "$run/explain.log") inputs explained, $(grep -c 'skipped$' "$run/explain.log") cases absent -> $run/explain"
done

step "4c. a short timing study (Figure 2): ResNet18 steps split into phases, workers 0 and 2, cache and NIfTI sources"
devices=cpu; [ "$DEVICE" = cuda ] && devices=cpu,cuda
"$CTGRAD" bench timing --data "$COHORT" --net resnet18 --batch 9 --size "$SIZE" --devices "$devices" \
  --workers 0,2 --source cache,nifti --pin-memory on,off --steps 3 --warmup 1 --out "$OUT/timing_${SIZE}" \
  | grep -E "^(\[|bench timing: [0-9]+ rows)"

step "5. report"
"$CTGRAD" report "${runs[@]}" --timing "$OUT/timing_${SIZE}/timing.csv" --out "$OUT"

step "own-scan check on one held-out test volume (its true grade is in the file's folder)"
scan=$(awk -F, 'NR > 1 && $4 == "test" { print $5; exit }' "$COHORT/ctgrad_cache_${SIZE}.bin.split.csv")
"$CTGRAD" predict $(printf -- '--run %s ' "${runs[@]}") --device "$DEVICE" "$scan"

echo
echo "done in $(( $(date +%s) - t_start )) s. Report: $OUT/report.html"
