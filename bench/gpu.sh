#!/usr/bin/env bash
# The GPU figures in one run, for a lent GPU machine (run it there through the device tool, with
# the wheels and data it lacks carried; see below). Every part writes into one folder
# (${OUT:-bench/results/gpu}); on a CPU the same script runs a small version of each part.
#
# Parts so far: the CUDA tests (pytest -m gpu), the evaluation ensemble's images/s on a PreAct
# ResNet-18 in fp32 and bf16 (bench/eval_speed.py), and diffusion for robustness (issue 13:
# generated images/s, purified predictions/s, an adaptive attack step's cost; batch 512, fp32 and
# bf16; bench/purification_speed.py). Still to add (issue 15): PGD-10 AT images/s, DDPM-1000 /
# DDIM-50 samples/s, two-process DDP.
#
# On the device machine (python3 with torch, numpy, safetensors; no pydantic, no diffusers, no
# Fashion-MNIST): `bench/gpu_carry.sh` here fills .whl/ and .data/ (both ignored by git); carry
# them and run: `bash bench/gpu.sh`.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${OUT:-bench/results/gpu}
mkdir -p "$OUT_DIR"
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site:$PWD
fi
[ -d .data/fashion-mnist ] && export ROBUSTLAB_DATA_DIR=$PWD/.data
PY=${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
export PYTHONUNBUFFERED=1
status=0
"$PY" -m pytest -q -m gpu tests -p no:cacheprovider > "$OUT_DIR/pytest_gpu.log" 2>&1
code=$?; [ $code -eq 5 ] && code=0  # 5: no test selected (none marked gpu yet)
[ $code -ne 0 ] && status=1
timeout 360 "$PY" -m bench.eval_speed --out "$OUT_DIR/eval_speed.json" 2>&1 | tee "$OUT_DIR/eval_speed.log" || status=1
PURIFY_ARGS=$("$PY" -c "import torch; print('--batch 512 --generate 1024 --bf16' if torch.cuda.is_available() else '--batch 16 --generate 16 --repeats 1')")
# shellcheck disable=SC2086
timeout 240 "$PY" -m bench.purification_speed $PURIFY_ARGS --out "$OUT_DIR/purification_speed.json" 2>&1 \
  | tee "$OUT_DIR/purification_speed.log" || status=1
exit $status
