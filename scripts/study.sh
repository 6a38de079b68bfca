#!/usr/bin/env bash
# `make study`: the study's protocol (`ctgrad study`) on the built-in synthetic cohort.
#
#   1. a MosMed-like cohort (ctgrad synth), once
#   2. ctgrad study: every (net, learning rate, optimiser) a run folder under
#      $OUT/<SIZE>px/runs/, scored on validation and test; the best run of each
#      family by validation AUC; $OUT/<SIZE>px/report.html (Slika 3-5, Table 1,
#      Figures 6-8 for the best runs, the own-scan check on one volume from
#      outside the cohort, or OWN_SCAN=my_ct.nii.gz)
#
# The default is the reduced study, sized for two CPU cores (at most ~15 min):
# 250 patients (50 per grade), 128² volumes of 32 slices, all seven nets at
# 64² inputs, two learning rates (1e-3, 1e-4), Adam, 6 epochs.
# SIZE=512 (with DEVICE=cuda) is the study's protocol: 114 patients per grade,
# of which --per-class 226 keeps the report's 226 + 226 (272 / 90 / 90), 512²
# volumes of 40 slices, learning rates 5e-3, 1e-3, 1e-4, Adam and SGD, batch
# 15, 30 epochs. WEIGHTS=resnet18.pth (torchvision's file) or an imported
# .safetensors adds ResNet18*. Every size is an environment variable below.
# Running it again resumes (finished runs are only re-scored); delete the
# folder to start over.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-runs/study}
source scripts/common.sh  # SIZE, DEVICE, WEIGHTS, BUILD, CTGRAD; step, make_cohort, resolve_imagenet_weights
NETS=${NETS:-dense20,dense50,dense100,dense100x100,cnn1,cnn2,resnet18}
if [ "$SIZE" -ge 512 ]; then
  PATIENTS=${PATIENTS:-114}; MATRIX=${MATRIX:-512}; SLICES=${SLICES:-40}; PER_CLASS=${PER_CLASS:-226}
  LRS=${LRS:-5e-3,1e-3,1e-4}; OPTIMIZERS=${OPTIMIZERS:-adam,sgd}; EPOCHS=${EPOCHS:-30}; BATCH=${BATCH:-15}
else
  PATIENTS=${PATIENTS:-50}; MATRIX=${MATRIX:-128}; SLICES=${SLICES:-32}; PER_CLASS=${PER_CLASS:-0}
  LRS=${LRS:-1e-3,1e-4}; OPTIMIZERS=${OPTIMIZERS:-adam}; EPOCHS=${EPOCHS:-6}; BATCH=${BATCH:-15}
fi
COHORT="$OUT/cohort_${MATRIX}"
STUDY="$OUT/${SIZE}px"
make_cohort

# The own-scan check: a volume from outside the cohort (another synthetic
# seed; its true grade is its folder), or OWN_SCAN=my_ct.nii.gz.
OWN_SCAN=${OWN_SCAN:-}
if [ -z "$OWN_SCAN" ]; then
  [ -d "$OUT/own_scan_${MATRIX}" ] || "$CTGRAD" synth --out "$OUT/own_scan_${MATRIX}" --patients 1 --size "$MATRIX" \
    --slices "$SLICES" --seed 99 > /dev/null
  OWN_SCAN=$(ls "$OUT/own_scan_${MATRIX}"/studies/CT-3/*.nii.gz | head -n 1)
fi

init=()
if [ -n "$WEIGHTS" ]; then
  resolve_imagenet_weights
  init=(--init-resnet18 "$IMAGENET_INIT")
fi

step "2. ctgrad study: nets $NETS × lrs $LRS × $OPTIMIZERS, $EPOCHS epochs, ${SIZE}² inputs"
"$CTGRAD" study --data "$COHORT" --out "$STUDY" --nets "$NETS" --lrs "$LRS" --optimizers "$OPTIMIZERS" \
  --epochs "$EPOCHS" --batch "$BATCH" --size "$SIZE" --per-class "$PER_CLASS" --device "$DEVICE" --workers 2 \
  --own-scan "$OWN_SCAN" "${init[@]}" | grep -E "^(best |report:)"

echo
echo "done in $(( $(date +%s) - t_start )) s. Report: $STUDY/report.html"
