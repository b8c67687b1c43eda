#!/usr/bin/env bash
# The GPU check (issue 6): correctness, images/s alone and packed, and the paper-scale Fig. 1 estimate, in
# about 5 minutes on one CUDA card. Needs only the image's python3 with torch (no install): shattering runs
# from src/. Results: gpu_check.json in $OUT (the device tool's output folder) or the current folder.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export SHATTERING_DATA="${SHATTERING_DATA:-$(mktemp -d)}" SHATTERING_NO_DOWNLOAD=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
exec timeout 470 python3 bench/gpu_check.py --device cuda --out "${OUT:-.}" "$@"
