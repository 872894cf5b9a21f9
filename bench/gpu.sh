#!/usr/bin/env bash
# The GPU figures in one run, for a lent GPU machine (run it there through the device tool, with
# the wheels and data it lacks carried; see below). Every part writes into one folder
# (${OUT:-bench/results/gpu}); on a CPU the same script runs a small version of each part.
#
# At most 10 minutes in all (each part has its own timeout), ending in one JSON file, gpu.json, that
# holds every part's result. Parts: the CUDA tests (pytest -m gpu); PGD-10 AT images/s of a PreAct
# ResNet-18 in fp32 and bf16 + channels_last with a profile, DDPM-1000 / DDIM-50 samples/s at batch
# 256 in fp32 and bf16, two-process DDP if the node has two GPUs (bench/gpu_figures.py); the
# evaluation ensemble's images/s (bench/eval_speed.py); diffusion for robustness (generated
# images/s, purified predictions/s, an adaptive attack step's cost; bench/purification_speed.py).
#
# On the device machine (python3 with torch, numpy, safetensors; no pydantic, no diffusers, no
# Fashion-MNIST): `bench/gpu_carry.sh` here fills .whl/ and .data/ (both ignored by git); carry
# them and run: `bash bench/gpu.sh`.
#
# Issue 25's certification: noisy samples/s of randomized smoothing for the small CNN and PreAct
# ResNet-18, fp32 and bf16, and the hours of a 500-image certification (bench/certify_speed.py).
#
# Issue 23's networks: PGD-10 AT images/s of PreAct ResNet-18 and WRN-34-10 at 32 px and ResNet-50
# at 224 px, fp32 and bf16, with each preset's hours at that rate (bench/network_speed.py).
#
# `bash bench/gpu.sh stack` runs the GPU path of the whole service instead (bench/gpu_stack.py:
# embedded Redis, API, Celery workers on CUDA, one short CIFAR-shaped PGD-10 run submitted over
# HTTP), into gpu_stack.json; carry .whl-stack/ (`bash bench/gpu_carry.sh stack`), not .whl/.
#
# `bash bench/gpu.sh ddpm-fd` runs the one long measurement instead (bench/ddpm_fd.py, no time limit:
# the gpu preset's DDPM trained to its end, then DDIM-50's Fréchet distance against DDPM-1000's;
# a GPU machine lent for longer than 15 minutes; the smoke preset on a CPU), into ddpm_fd.json.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${OUT:-bench/results/gpu}
mkdir -p "$OUT_DIR"
WHEELS=.whl
[ "${1:-}" = stack ] && WHEELS=.whl-stack
if [ -d "$WHEELS" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHEELS"/*.whl \
    && export PYTHONPATH=/tmp/site:$PWD
fi
[ -d .data/fashion-mnist ] && export ROBUSTLAB_DATA_DIR=$PWD/.data
PY=${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
export PYTHONUNBUFFERED=1
if [ "${1:-}" = ddpm-fd ]; then
  PRESET=$("$PY" -c "import torch; print('gpu --n 1000' if torch.cuda.is_available() else 'smoke --n 100')")
  # shellcheck disable=SC2086
  exec "$PY" -m bench.ddpm_fd --preset $PRESET --out "${RUNS:-runs}/ddpm-fd" --json "$OUT_DIR/ddpm_fd.json"
fi
if [ "${1:-}" = stack ]; then
  exec timeout 400 "$PY" -m bench.gpu_stack --out "$OUT_DIR/gpu_stack.json"
fi
rm -f "$OUT_DIR"/*.json  # no stale part from an earlier run in gpu.json
status=0
# the limits are sized for a GPU (10 minutes in all); the small CPU version gets three times as long
X=$("$PY" -c "import torch; print(1 if torch.cuda.is_available() else 3)")
# only the files that hold CUDA tests: the rest import the service's packages, which the image lacks
mapfile -t GPU_TESTS < <(grep -rl "pytest.mark.gpu" tests --include="test_*.py")
if [ ${#GPU_TESTS[@]} -gt 0 ]; then
  timeout $((60 * X)) "$PY" -m pytest -q -m gpu "${GPU_TESTS[@]}" -p no:cacheprovider > "$OUT_DIR/pytest_gpu.log" 2>&1
  code=$?; [ $code -eq 5 ] && code=0  # 5: no test selected
  [ $code -ne 0 ] && status=1
else
  echo "no test file marks a test gpu" > "$OUT_DIR/pytest_gpu.log"
fi
timeout $((170 * X)) "$PY" -m bench.gpu_figures --out "$OUT_DIR/gpu_figures.json" 2>&1 | tee "$OUT_DIR/gpu_figures.log" || status=1
timeout $((130 * X)) "$PY" -m bench.eval_speed --out "$OUT_DIR/eval_speed.json" 2>&1 | tee "$OUT_DIR/eval_speed.log" || status=1
timeout $((120 * X)) "$PY" -m bench.network_speed --out "$OUT_DIR/network_speed.json" 2>&1 \
  | tee "$OUT_DIR/network_speed.log" || status=1
timeout $((60 * X)) "$PY" -m bench.certify_speed --out "$OUT_DIR/certify_speed.json" 2>&1 \
  | tee "$OUT_DIR/certify_speed.log" || status=1
PURIFY_ARGS=$("$PY" -c "import torch; print('--batch 512 --generate 1024 --bf16' if torch.cuda.is_available() else '--batch 16 --generate 16 --repeats 1')")
# shellcheck disable=SC2086
timeout $((110 * X)) "$PY" -m bench.purification_speed $PURIFY_ARGS --out "$OUT_DIR/purification_speed.json" 2>&1 \
  | tee "$OUT_DIR/purification_speed.log" || status=1
"$PY" - "$OUT_DIR" <<'MERGE'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
merged = {}
for p in sorted(out.glob("*.json")):
    try:
        merged[p.stem] = json.loads(p.read_text())
    except ValueError as e:  # a part cut short by its time limit
        merged[p.stem] = {"unreadable": str(e)}
tail = (out / "pytest_gpu.log").read_text().strip().splitlines()[-1:] if (out / "pytest_gpu.log").is_file() else []
merged["pytest_gpu"] = tail[0] if tail else "no log"
(out / "gpu.json").write_text(json.dumps(merged, indent=1))
print("wrote", out / "gpu.json")
MERGE
exit $status
