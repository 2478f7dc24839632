#!/usr/bin/env bash
# One-command burst of perceptual super-resolution training, on CPU or on a borrowed GPU machine (torch with
# CUDA, no internet, no TensorRT). Continues the run in runs/ when its checkpoint is there (carry runs/ to
# the machine), stops at a checkpoint before the time is up, and copies the checkpoint and the weights to
# $OUT (the device tool brings that folder back).
#
#   infra/gpu/train-sr.sh MODEL_ID MINUTES [extra retouch train flags]
#   e.g. infra/gpu/train-sr.sh retouch-sr-x4-perceptual 8 --batch 64
#
# Needs RETOUCH_EVAL_DATA (the folder holding products/train) and RETOUCH_TEACHER (RealESRGAN_x4plus.pth).
set -euo pipefail
model_id=${1:?model id, e.g. retouch-sr-x4-perceptual}
minutes=${2:?minutes of training}
shift 2
: "${RETOUCH_EVAL_DATA:?set RETOUCH_EVAL_DATA to the folder holding products/train}"
: "${RETOUCH_TEACHER:?set RETOUCH_TEACHER to RealESRGAN_x4plus.pth}"
python=${PYTHON:-python}
if "$python" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  device=(--device cuda)
else
  device=(--device cpu --bf16)  # bf16 pays only with AMX-BF16 / AVX512-BF16; the trainer warns otherwise
fi
resume=()
[ -f "runs/$model_id/last.pt" ] && resume=(--resume)
"$python" -m worker.cli train "$model_id" --teacher "$RETOUCH_TEACHER" --out-dir runs "${device[@]}" \
  --max-minutes "$minutes" "${resume[@]}" "$@"
if [ -n "${OUT:-}" ]; then
  mkdir -p "$OUT/runs/$model_id"
  cp "runs/$model_id/last.pt" "runs/$model_id/log.jsonl" "runs/$model_id/$model_id.safetensors" "$OUT/runs/$model_id/"
fi
