"""Memory admission's estimate (`core.contract.memory`) against the peak resident
memory of the real thing: each training preset (classifier and DDPM; smoke, cpu, gpu) trains in a
fresh process, as a job's child does, and its peak RSS (`ru_maxrss` from `wait4`) is compared with
the estimate. Only one epoch of one or two batches runs (peak memory is reached by the first
backward pass: the whole dataset is loaded, the batch is the preset's); the held-out check runs
on 64 images. On a CPU machine everything lives in RSS; on a GPU machine the activations live on
the GPU, so run it on CPU for the figures admission uses.

    .venv/bin/python -m bench.memory_estimate [--kinds train,ddpm] [--presets smoke,cpu,gpu]

Writes bench/results/memory_estimate.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import machine
from core.contract.memory import ddpm_train_bytes, train_bytes
from core.contract.presets import ddpm_preset, train_preset

OUT = Path("bench/results/memory_estimate.json")
MIB = 2**20
CHILD = """
import json, sys
from core.contract.specs import TrainSpec
from core.contract.diffusion_specs import DDPMTrainSpec
kind, spec, out = sys.argv[1], sys.argv[2], sys.argv[3]
if kind == "train":
    from core.training import train
    train(TrainSpec.model_validate_json(spec), out)
else:
    from core.diffusion.ddpm import train_ddpm
    train_ddpm(DDPMTrainSpec.model_validate_json(spec), out)
"""


def short_run(kind: str, preset: str):
    """The preset, cut to one epoch of at most two batches (its batch size kept)."""
    if kind == "train":
        spec = train_preset(preset)
        data = spec.data.model_copy(update={"train_subset": 2 * spec.batch_size, "test_subset": 64})
        return spec.model_copy(update={"epochs": 1, "data": data, "eval_subset": 64})
    spec = ddpm_preset(preset)
    data = spec.data.model_copy(update={"train_subset": 2 * spec.batch_size})
    return spec.model_copy(update={"epochs": 1, "data": data})


def peak_rss(kind: str, spec) -> tuple[int, float]:
    """(peak resident bytes, seconds) of a fresh process training `spec`."""
    with tempfile.TemporaryDirectory() as out:
        started = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-c", CHILD, kind, spec.model_dump_json(), out])
        _, status, usage = os.wait4(proc.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"{kind} {spec} failed")
        return usage.ru_maxrss * 1024, time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", default="train,ddpm")
    parser.add_argument("--presets", default="smoke,cpu,gpu")
    args = parser.parse_args()
    rows = []
    for kind in args.kinds.split(","):
        for preset in args.presets.split(","):
            spec = short_run(kind, preset)
            measured, seconds = peak_rss(kind, spec)
            # of the run measured (its subsets are the preset's minus a little)
            estimate = (train_bytes if kind == "train" else ddpm_train_bytes)(spec)
            row = {
                "kind": kind,
                "preset": preset,
                "batch_size": spec.batch_size,
                "measured_mib": round(measured / MIB),
                "estimate_mib": round(estimate / MIB),
                "error_pct": round(100 * (estimate - measured) / measured, 1),
                "seconds": round(seconds, 1),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"machine": machine(), "rows": rows}, indent=1))
    print("| job | preset | batch | peak RSS (MiB) | estimate (MiB) | error |\n|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['kind']} | {r['preset']} | {r['batch_size']} | {r['measured_mib']} | {r['estimate_mib']} "
            f"| {r['error_pct']:+.1f} % |"
        )


if __name__ == "__main__":
    main()
