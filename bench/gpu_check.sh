#!/usr/bin/env bash
# The one script for a lent GPU machine (the `device` tool): every check of the
# CUDA path, staged, inside one run of at most 8 minutes.
#
#   bench/gpu_check.sh                 on the GPU machine (carry gpu-bundle/)
#   bench/gpu_check.sh --dry-run       here, without a GPU: the same stages on
#                                      the emulated build, small sizes (ctest runs it)
#   options: --build-dir DIR  --budget SECONDS (default 470; dry run 120)
#
# Stages (each with its own timeout and log; one that fails does not stop the
# ones that do not need it; every stage appends one line to summary.txt):
#   1 build      configure (sm_90, bundle deps) and build ctgrad + the native test twin with ninja
#   2 smoke      device name and memory; `ctgrad device --check` (kernels vs the CPU)
#   3 tests      the CUDA-vs-CPU tests on the GPU, each case under its own timeout
#   4 step       `ctgrad bench step` for Dense(20), CNN1, CNN2, ResNet18 at 512²,
#                batch 9 and 15: native kernels (FP32, and --precision tf32), native FP32 replayed
#                as one CUDA graph (--cuda-graph, impl "graph"), cuBLAS+cuDNN FP32, TF32
#   5 pytorch    bench/compare_pytorch.py on the same card, TF32 off and on
#   6 kernels    `ctgrad bench kernels --precision both` (ours vs cuBLAS/cuDNN, TF32 and FP32; fused BN/ReLU/add)
#   7 sanitizer  compute-sanitizer memcheck, initcheck, racecheck on a short subset
#   8 demo       SIZE=512 DEVICE=cuda demo, reduced, only with time left
# Results go to $OUT (the device tool brings it back) or ./gpu_out: summary.txt,
# step.csv, pytorch.csv, kernels.txt and logs.tar.gz (everything else) — at
# most 8 files. The exit code is the number of stages that failed.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

dry=0 budget="" bdir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry=1 ;;
    --build-dir) bdir=$2; shift ;;
    --budget) budget=$2; shift ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "gpu_check.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
case "$budget" in ''|*[!0-9]*) [ -n "$budget" ] && { echo "gpu_check.sh: --budget takes seconds, got '$budget'" >&2; exit 2; } ;; esac
if [ "$dry" = 1 ]; then budget=${budget:-120}; bdir=${bdir:-build}; else budget=${budget:-470}; bdir=${bdir:-build-gpu}; fi
case "$bdir" in /*) ;; *) bdir="$root/$bdir" ;; esac
out=${OUT:-$root/gpu_out}
mkdir -p "$out"
logs=$(mktemp -d)/logs
mkdir -p "$logs"
summary="$out/summary.txt"
: > "$summary"
t0=$(date +%s)
failed=0
export dry bdir out logs root

say() { echo "$*" | tee -a "$summary"; }
remaining() { echo $(( t0 + budget - $(date +%s) )); }

# stage NAME LIMIT FUNCTION: runs FUNCTION in a child bash under
# min(LIMIT, time left); its output goes to logs/NAME.log, whose last
# "figures:" line is the stage's key figures; a "skip:" line marks it skipped.
stage() {
  local name=$1 limit=$2 fn=$3 left
  left=$(remaining)
  if [ "$left" -lt 15 ]; then
    say "$(printf '%-9s | %-8s | %4ss | %s' "$name" skipped 0 "no time left in the ${budget}s budget")"
    return 3
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  local s e rc status figures
  s=$(date +%s.%N)
  timeout --kill-after=10 "$limit" bash -c "$fn" > "$logs/$name.log" 2>&1
  rc=$?
  e=$(date +%s.%N)
  figures=$(grep -E '^figures: ' "$logs/$name.log" | tail -1 | cut -c10-)
  if grep -qE '^skip: ' "$logs/$name.log"; then
    status=skipped
    figures=$(grep -E '^skip: ' "$logs/$name.log" | tail -1 | cut -c7-)
  elif [ $rc -eq 0 ]; then
    status=ok
  elif [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    status=TIMEOUT
    failed=$((failed + 1))
  else
    status="FAIL($rc)"
    failed=$((failed + 1))
    [ -z "$figures" ] && figures=$(grep -v '^\s*$' "$logs/$name.log" | tail -1 | cut -c1-160)
  fi
  say "$(printf '%-9s | %-8s | %4.0fs | %s' "$name" "$status" "$(awk "BEGIN{print $e - $s}")" "$figures")"
  [ $rc -eq 0 ]
}

# ------------------------------------------------------------------ stages
# Each runs in its own bash: everything it needs is exported or recomputed.
export CTGRAD_EMU_THREADS=${CTGRAD_EMU_THREADS:-2}
common='set -uo pipefail; cd "$root";
  ctg="$bdir/ctgrad";
  if [ "$dry" = 1 ]; then
    export CTGRAD_CUDA_EMULATE=1; tests="$bdir/ctgrad_tests"
    [ -x "$bdir/ctgrad_emu" ] && ctg="$bdir/ctgrad_emu"   # built when ctgrad itself is native (nvcc found)
  else tests="$bdir/ctgrad_tests_gpu"; fi
  [ -f /tmp/ctgrad-deps/.unpacked ] && export LD_LIBRARY_PATH="/tmp/ctgrad-deps/usr/lib/x86_64-linux-gnu/openblas-openmp${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}:/tmp/ctgrad-deps/usr/lib/x86_64-linux-gnu"
  [ -s "$bdir/cuda_lib_dirs.txt" ] && export LD_LIBRARY_PATH="$(head -1 "$bdir/cuda_lib_dirs.txt")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  '
export common

stage_build='eval "$common"
  export PATH="$PATH:/usr/local/cuda/bin"
  if [ "$dry" = 1 ]; then
    # The CUDA configure path, checked without building it (nvcc exists here, no GPU).
    if command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ]; then
      tmp=$(mktemp -d)
      PATH=$PATH:/usr/local/cuda/bin cmake -S . -B "$tmp" -DCTGRAD_CUDA=on -DCTGRAD_NATIVE=OFF > "$tmp.log" 2>&1 || { cat "$tmp.log"; exit 1; }
      grep -E "^-- ctgrad:" "$tmp.log"
      archs=$(grep -oE "CUDA architectures = [^ ]+" "$tmp.log" | cut -d" " -f4)
      [ "$archs" = 90 ] || { echo "default CUDA architectures are \"$archs\", expected 90"; exit 1; }
      grep -q "nvcc flags = .*use_fast_math" "$tmp.log" && { echo "nvcc builds with --use_fast_math by default"; exit 1; }
      rm -rf "$tmp" "$tmp.log"
      cfg="CUDA configure ok (architectures $archs)"
    else
      cfg="no nvcc: CUDA configure not checked"
    fi
    [ -x "$ctg" ] && [ -x "$tests" ] || cmake --build "$bdir" -j "$(nproc)" || exit 1
    echo "figures: $cfg; emulated build $bdir"
    exit 0
  fi
  deps=""
  if [ -f gpu-bundle/deps.tar.gz ]; then
    mkdir -p /tmp/ctgrad-deps && tar -xzf gpu-bundle/deps.tar.gz -C /tmp/ctgrad-deps && touch /tmp/ctgrad-deps/.unpacked || exit 1
    deps="-DCTGRAD_DEPS_PREFIX=/tmp/ctgrad-deps"
  fi
  gen=""; command -v ninja >/dev/null && gen="-G Ninja"
  cmake $gen -S . -B "$bdir" -DCTGRAD_CUDA=on -DCTGRAD_GPU_TESTS=ON -DCTGRAD_NATIVE=OFF $deps || exit 1
  cmake --build "$bdir" --target ctgrad ctgrad_tests_gpu -j "$(nproc)" || exit 1
  sass=$(cuobjdump --list-elf "$ctg" 2>/dev/null | grep -c sm_90)
  echo "figures: built in $bdir; sm_90 SASS images in ctgrad: $sass; $(grep -m1 "CUDA architectures" "$bdir/CMakeCache.txt" 2>/dev/null | cut -c1-60)"'

stage_smoke='eval "$common"
  if [ "$dry" = 0 ]; then nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv || exit 1; fi
  "$ctg" device --check | tee /tmp/smoke.log; [ ${PIPESTATUS[0]} -eq 0 ] || exit 1
  echo "figures: $(grep "^device:" /tmp/smoke.log | cut -c9-); $(grep -m1 "^check:" /tmp/smoke.log | cut -c8-100)"'

# Every CUDA-vs-CPU test case on its own, under its own timeout (a hang names its case).
stage_tests='eval "$common"
  mapfile -t cases < <("$tests" -ltc -tc="cuda vs cpu*" --no-intro 2>/dev/null | grep -vE "^(\[doctest\]|=+$)" | sed "s/^ *//" | grep -v "^$")
  [ ${#cases[@]} -gt 0 ] || { echo "no test cases found in $tests"; exit 1; }
  per=90; if [ "$dry" = 1 ]; then cases=("${cases[@]:0:2}"); per=40; fi
  pass=0; fail=0; slow=0
  for c in "${cases[@]}"; do
    pat=$(printf "%s" "$c" | sed "s/[][*?,]/?/g")
    s=$(date +%s)
    timeout "$per" "$tests" -tc="$pat" > /tmp/case.log 2>&1; rc=$?
    echo "== $c: exit $rc, $(( $(date +%s) - s ))s"; tail -3 /tmp/case.log
    if [ $rc -eq 0 ]; then pass=$((pass+1)); elif [ $rc -eq 124 ]; then slow=$((slow+1)); else fail=$((fail+1)); cat /tmp/case.log; fi
  done
  echo "figures: ${#cases[@]} cases: $pass passed, $fail failed, $slow timed out (${per}s each)"
  [ $fail -eq 0 ] && [ $slow -eq 0 ]'

stage_step='eval "$common"
  if [ "$dry" = 1 ]; then nets="dense20 cnn1"; batches="2"; size=32; steps="--steps 1 --warmup 0"; variants="native graph"
  else nets="dense20 cnn1 cnn2 resnet18"; batches="9 15"; size=512; steps="--steps 10 --warmup 3"; variants="native ours-tf32 graph fp32 tf32"; fi
  echo "net,batch,size,impl,ms_per_step,images_per_s" > "$out/step.csv"
  for net in $nets; do for b in $batches; do for v in $variants; do
    case $v in native) f="--precision fp32";; ours-tf32) f="--precision tf32";; graph) f="--precision fp32 --cuda-graph";; fp32) f="--gemm-impl cublas --conv-impl cudnn";; tf32) f="--gemm-impl cublas --conv-impl cudnn --allow-tf32";; esac
    r=$("$ctg" bench step --net $net --batch $b --size $size --device cuda $steps $f 2>>"$logs/step.stderr")
    ms=$(echo "$r" | grep "^ms_per_step:" | cut -d" " -f2); ips=$(echo "$r" | grep "^images_per_s:" | cut -d" " -f2)
    echo "$net,$b,$size,$v,${ms:-error},${ips:-error}" | tee -a "$out/step.csv"
  done; done; done
  n_err=$(grep -c error "$out/step.csv")
  # native ms per net at the largest batch, the graph replay beside it where it ran
  figs=$(awk -F, -v b="${batches##* }" "NR>1 && \$2==b && \$4==\"native\" {n[++k]=\$1; m[\$1]=\$5}
    NR>1 && \$2==b && \$4==\"graph\" {g[\$1]=\$5}
    END {for (i=1; i<=k; i++) printf \"%s %s ms%s; \", n[i], m[n[i]], (n[i] in g) ? \" (graph \" g[n[i]] \")\" : \"\"}" "$out/step.csv")
  echo "figures: ${figs}(native, batch ${batches##* }); $n_err errors"
  [ "$n_err" -eq 0 ]'

stage_pytorch='eval "$common"
  python3 -c "import torch" 2>/dev/null || { echo "skip: no PyTorch here (python3 -c \"import torch\" fails)"; exit 0; }
  if [ "$dry" = 1 ]; then dev=cpu; args="--batch 2 --size 32 --steps 1 --warmup 0 --net dense20"; batches="2"
  else dev=cuda; batches="9 15"; args="--size 512 --steps 10 --warmup 3 --net dense20 --net cnn1 --net cnn2 --net resnet18"; fi
  echo "net,batch,tf32,ms_per_step,images_per_s" > "$out/pytorch.csv"
  for b in $batches; do for t in off on; do
    [ "$dry" = 1 ] && [ $t = on ] && continue
    python3 bench/compare_pytorch.py --device $dev --tf32 $t $args --batch $b | tee /tmp/pt.log || exit 1
    awk -v b=$b -v t=$t "/^net:/{n=\$2} /^ms_per_step:/{m=\$2} /^images_per_s:/{print n\",\"b\",\"t\",\"m\",\"\$2}" /tmp/pt.log >> "$out/pytorch.csv"
  done; done
  echo "figures: $(head -1 /tmp/pt.log | cut -c3-60); $(awk -F, "NR>1 && \$3==\"off\" {printf \"%s@%s %s ms; \", \$1, \$2, \$4}" "$out/pytorch.csv")"'

stage_kernels='eval "$common"
  if [ "$dry" = 1 ]; then args="--batch 1 --size 32 --repeat 1 --warmup 0 --ops relu,add,maxpool2d,batchnorm2d"; else args="--batch 15 --size 512"; fi
  "$ctg" bench kernels $args --precision both > "$out/kernels.txt" 2>&1 || { cat "$out/kernels.txt"; exit 1; }  # tf32 and fp32 rows
  echo "figures: $(grep -c . "$out/kernels.txt") lines in kernels.txt"'

stage_sanitizer='eval "$common"
  [ "$dry" = 1 ] && { echo "skip: compute-sanitizer needs a GPU (dry run)"; exit 0; }
  san=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
  [ -x "$san" ] || { echo "skip: compute-sanitizer not found"; exit 0; }
  subset="cuda vs cpu: relu*,cuda vs cpu: maxpool2d forward*,cuda vs cpu: batchnorm2d saved*"
  res=""
  for tool in memcheck initcheck racecheck; do
    timeout 75 "$san" --tool $tool --error-exitcode 9 "$tests" -tc="$subset" > "$logs/sanitizer_$tool.log" 2>&1; rc=$?
    sum=$(grep -m1 "ERROR SUMMARY" "$logs/sanitizer_$tool.log" | sed "s/.*ERROR SUMMARY: //")
    if grep -qiE "not supported|unable to|error 999" "$logs/sanitizer_$tool.log" && [ -z "$sum" ]; then st="refused by the runtime"
    elif [ $rc -eq 124 ]; then st="timed out (75 s)"
    elif [ $rc -eq 0 ]; then st="clean (${sum:-no summary})"
    else st="exit $rc (${sum:-see log})"; fi
    echo "$tool: $st"; res="$res$tool $st; "
  done
  echo "figures: $res"'

stage_demo='eval "$common"
  [ "$dry" = 1 ] && { bash -n scripts/demo.sh || exit 1; echo "skip: the demo needs a GPU for SIZE=512 (dry run: syntax checked)"; exit 0; }
  # Reduced study protocol: 512² inputs on the GPU, 20 patients per grade, 3 epochs.
  SIZE=512 DEVICE=cuda PATIENTS=20 EPOCHS=3 OUT=/tmp/ctgrad_demo BUILD="$bdir" bash scripts/demo.sh || exit 1
  echo "figures: $(grep -E "auc|train_seconds" -h /tmp/ctgrad_demo/512px/*/summary.json 2>/dev/null | tr -s " \n" " " | cut -c1-200)"'

export stage_build stage_smoke stage_tests stage_step stage_pytorch stage_kernels stage_sanitizer stage_demo

say "# ctgrad gpu_check $( [ $dry = 1 ] && echo '(dry run, emulated)' ) $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
say "# machine: $(lscpu 2>/dev/null | grep -m1 'Model name' | sed 's/.*: *//'), $(nproc) cores; budget ${budget}s"
say "# stage     | status   | time  | key figures"
if stage build 300 "$stage_build"; then
  stage smoke 60 "$stage_smoke" && smoke_ok=1 || smoke_ok=0
  if [ "$smoke_ok" = 1 ]; then
    stage tests 150 "$stage_tests"
    stage step 150 "$stage_step"  # 40 runs: 4 nets x 2 batches x 5 variants
  else
    say "tests     | skipped  |    0s | the smoke test failed"
    say "step      | skipped  |    0s | the smoke test failed"
  fi
  stage pytorch 90 "$stage_pytorch"
  [ "$smoke_ok" = 1 ] && stage kernels 90 "$stage_kernels"
  [ "$smoke_ok" = 1 ] && stage sanitizer 280 "$stage_sanitizer"
  if [ "$dry" = 1 ]; then stage demo 30 "$stage_demo"
  elif [ "$smoke_ok" = 1 ] && [ "$(remaining)" -gt 120 ]; then stage demo $(( $(remaining) - 20 )) "$stage_demo"
  else say "demo      | skipped  |    0s | less than 120 s left (or the smoke test failed)"; fi
else
  say "(every other stage needs the build)"
fi
say "# done in $(( $(date +%s) - t0 ))s; $failed stage(s) failed"
tar -C "$(dirname "$logs")" -czf "$out/logs.tar.gz" logs 2>/dev/null
rm -rf "$(dirname "$logs")"
exit $failed
