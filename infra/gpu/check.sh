#!/usr/bin/env bash
# Every built-in engine's CUDA path in fp16 and fp32 on a GPU machine (torch with CUDA; no TensorRT, no
# internet): agreement of fp16 with fp32, output MP/s and the share of the GPU's own measured GEMM peak.
# Bounded at 8 minutes; the report goes to $OUT/gpu-check.json when $OUT is set (the device tool brings
# that folder back), else to stdout only.
#
#   infra/gpu/check.sh [--sizes 512,1024] [--engines a,b]
set -euo pipefail
python=${PYTHON:-python}
report=()
[ -n "${OUT:-}" ] && report=(--json "$OUT/gpu-check.json")
exec timeout 480 "$python" -m engines.gpu_check --device cuda "${report[@]}" "$@"
