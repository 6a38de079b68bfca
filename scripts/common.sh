# Sourced (not run) by scripts/demo.sh and scripts/study.sh, from the
# repository root, after they set OUT: the settings and helpers both share.
# Every setting is an environment variable with the default below.
SIZE=${SIZE:-64}          # network input side; ≥ 512 selects the study's protocol
DEVICE=${DEVICE:-auto}
WEIGHTS=${WEIGHTS:-}      # torchvision's resnet18.pth, or an imported .safetensors: adds ResNet18*
BUILD=${BUILD:-build}
CTGRAD="$BUILD/ctgrad"
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}  # robust when other processes share the cores
t_start=$(date +%s)
step() { echo; echo "== [$(( $(date +%s) - t_start ))s] $*"; }

# Step 1: the MosMed-like cohort in $COHORT ($PATIENTS per grade, ${MATRIX}²
# volumes of $SLICES slices), generated once and reused.
make_cohort() {
  mkdir -p "$OUT"
  step "1. synthetic cohort: $PATIENTS patients per grade CT-0..CT-4, ${MATRIX}² × $SLICES slices"
  if [ -f "$COHORT/synth.csv" ]; then
    echo "reusing $COHORT (delete it to regenerate)"
  else
    "$CTGRAD" synth --out "$COHORT" --patients "$PATIENTS" --size "$MATRIX" --slices "$SLICES" --seed 1 | tail -n 3
  fi
}

# IMAGENET_INIT: $WEIGHTS as a ctgrad checkpoint: a torchvision .pth/.pt is
# imported once into $OUT/resnet18_imagenet.safetensors (conv1 summed over
# RGB for the one CT channel); a .safetensors is used as it is.
resolve_imagenet_weights() {
  IMAGENET_INIT="$WEIGHTS"
  case "$WEIGHTS" in
    *.pth|*.pt)
      IMAGENET_INIT="$OUT/resnet18_imagenet.safetensors"
      [ -f "$IMAGENET_INIT" ] || "$CTGRAD" import --from "$WEIGHTS" --net resnet18 --out "$IMAGENET_INIT" --conv1 sum | tail -n 3 ;;
  esac
}
