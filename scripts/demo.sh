#!/usr/bin/env bash
# `make demo`: the main job on the built-in synthetic cohort.
# The data pipeline and the train/eval/report commands land with their issues;
# until then the demo shows the study's networks as the engine builds them.
set -euo pipefail
cd "$(dirname "$0")/.."
cat <<'TXT'
ctgrad demo — what it will do once the data and training commands land:
  1. generate a synthetic MosMed-like cohort   (ctgrad synth)
  2. preprocess it into a slice cache           (ctgrad prep)
  3. train Dense(20), CNN2, ResNet18 [, ResNet18* with ImageNet weights]  (ctgrad train)
  4. evaluate per patient on the test split and write runs/demo/report.html  (ctgrad eval / report)
Available now: the engine and the study's networks. Their Table 1 figures:
TXT
for net in dense20 dense50 dense100 dense100x100 cnn1 cnn2 resnet18; do
  echo "== $net"
  ./build/ctgrad summary --net "$net" --no-measure | tail -n 3
done
