#!/usr/bin/env bash
# The checks that need a CUDA GPU, in one go (a few minutes): the GPU tests, then the GPU figures
# for benchmarks/RESULTS.md (feature map inversion batched vs one at a time, MDAN's step, pruned
# against unpruned ResNet-50 latency, the training loop with the real DataLoader against in-memory batches).
# Logs land in $OUT (default runs/gpu_checks); PYTHON picks the interpreter (default .venv/bin/python).
#   make gpu                                   # or: bash benchmarks/gpu_checks.sh
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-runs/gpu_checks}
py=${PYTHON:-.venv/bin/python}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/device.csv" || exit 1
status=0
check() {  # check NAME SECONDS COMMAND...: run with a time limit, keep its log, remember a failure
    local name=$1 limit=$2
    shift 2
    echo "== $name: $*"
    timeout "$limit" "$@" 2>&1 | tee "$out/$name.txt" || status=1
}
check tests 300 "$py" -m pytest -q -p no:cacheprovider -m gpu tests/gpu
check inversion 240 "$py" benchmarks/inversion.py --device cuda --iterations 20
check mdan_step 180 "$py" benchmarks/mdan_step.py --device cuda
check mdan_step_webemo 180 "$py" benchmarks/mdan_step.py --device cuda --taxonomy webemo
check pruning_speedup 240 "$py" benchmarks/pruning_speedup.py --device cuda --batches 1 64 --repeats 20 --bf16
check loader_gpu 300 "$py" benchmarks/loader_gpu.py --device cuda --workers "$(( $(nproc) > 3 ? $(nproc) - 2 : 1 ))" --csv "$out/loader_gpu.csv"
exit $status
