#!/usr/bin/env bash
# The one script to run on a GPU machine (the device tool): build with nvcc,
# run the test suite natively on the GPU, compute-sanitizer memcheck and
# racecheck on the CUDA kernel tests, then the benchmarks. Everything goes to
# $OUT (or ./gpu_out) so the results come back; paste them into RESULTS.md.
#   bench/gpu_check.sh            (about 8-10 minutes on an H100)
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu_out}; mkdir -p "$out"
log() { echo "== $*" | tee -a "$out/summary.txt"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
bash scripts/install-deps.sh > "$out/deps.log" 2>&1
log "configure + build (nvcc, sm_90)"
cmake -S . -B build-gpu -DCTGRAD_CUDA=on -DCTGRAD_GPU_TESTS=ON -DCMAKE_CUDA_ARCHITECTURES=90 > "$out/configure.log" 2>&1 \
  && cmake --build build-gpu -j "$(nproc)" > "$out/build.log" 2>&1 || { log "build FAILED"; tail -50 "$out/build.log"; exit 1; }
log "tests on the GPU (native twin) and on the emulation"
(cd build-gpu && ctest -j 8 --output-on-failure > "../$out/ctest.log" 2>&1); tail -3 "$out/ctest.log" | tee -a "$out/summary.txt"
san=/usr/local/cuda/bin/compute-sanitizer
if [ -x "$san" ]; then
  for tool in memcheck racecheck; do
    log "compute-sanitizer --tool $tool on the CUDA kernel tests"
    timeout 300 "$san" --tool "$tool" --error-exitcode 9 ./build-gpu/ctgrad_tests_gpu -tc='cuda vs cpu*' \
      -tce='*trains identically*' > "$out/sanitizer_$tool.log" 2>&1
    echo "exit $? ; $(grep -c 'ERROR SUMMARY' "$out/sanitizer_$tool.log") summaries: $(grep 'ERROR SUMMARY' "$out/sanitizer_$tool.log" | sort | uniq -c | head -3)" \
      | tee -a "$out/summary.txt"
  done
fi
log "bench step (batch 9, 512x512): ctgrad native, ctgrad cuBLAS/cuDNN, PyTorch"
for net in dense20 cnn1 cnn2 resnet18; do
  ./build-gpu/ctgrad bench step --net $net --batch 9 --size 512 --device cuda --steps 10 --warmup 3 2>/dev/null \
    | grep -E '^(net|ms_per_step)' | tr '\n' ' ' | tee -a "$out/summary.txt"; echo | tee -a "$out/summary.txt"
done
if python3 -c 'import torch' 2>/dev/null; then
  python3 bench/compare_pytorch.py --device cuda --batch 9 --size 512 --steps 10 --warmup 3 \
    --net dense20 --net cnn1 --net cnn2 --net resnet18 2>&1 | tee -a "$out/summary.txt"
fi
log "bench kernels (ResNet18 shapes, batch 15, 512x512)"
./build-gpu/ctgrad bench kernels --batch 15 --size 512 2>&1 | tee "$out/bench_kernels.txt" | tail -40
log "the main job on the GPU: demo at 128² inputs (ResNet18, 10 epochs) — training time and test AUCs"
(SIZE=128 DEVICE=cuda OUT=/tmp/ctgrad_demo BUILD=build-gpu timeout 420 bash scripts/demo.sh > "$out/demo.log" 2>&1; \
  echo "demo exit $?"; cp /tmp/ctgrad_demo/report.html "$out/demo_report.html") | tee -a "$out/summary.txt"
grep -E "auc:|done in|train_seconds" "$out/demo.log" | tee -a "$out/summary.txt"
