"""Training under torchrun with gloo, two processes on the CPU: the same global batch gives the
weights one process gives, each rank attacks its own share, DDPM and TRADES train, a mixed batch
splits evenly. (A killed rank, a cancel and an error on every rank are tested through the service:
tests/integration/test_multi_process.py.)"""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import core.training.objectives as objectives
from core.contract.attack_specs import AttackSpec
from core.training import train
from tests.conftest import tiny_spec

SCRIPT = Path(__file__).with_name("ddp_train.py")
ROOT = Path(__file__).resolve().parents[2]


def torchrun(spec_file: Path, out: Path, *, procs: int = 2) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={procs}"]
    return subprocess.Popen([*cmd, str(SCRIPT), str(spec_file), str(out)], env=env, cwd=ROOT)


def spec_file(tmp_path: Path, spec) -> Path:
    path = tmp_path / "spec.json"
    path.write_text(spec.model_dump_json())
    return path


def ddp_spec(**update):
    # 250 images in batches of 63: every batch splits unevenly (32 + 31), the last is 61 (31 + 30);
    # no random start, so each image's adversarial example does not depend on which rank makes it
    attack = AttackSpec(eps=0.1, steps=2, random_start=False)
    return tiny_spec(method="pgd", attack=attack, batch_size=63, gpus=2, **update).model_copy(
        update={"data": tiny_spec().data.model_copy(update={"train_subset": 250})}
    )


def test_two_processes_reach_the_weights_of_one(tmp_path, monkeypatch):
    spec = ddp_spec()
    proc = torchrun(spec_file(tmp_path, spec), tmp_path / "ddp")
    assert proc.wait(timeout=300) == 0

    attacked: list[float] = []
    build = objectives.build_attack

    def recording_build(s):
        attack = build(s)
        return lambda model, x, y: attacked.extend(x.flatten(1).sum(1).tolist()) or attack(model, x, y)

    monkeypatch.setattr(objectives, "build_attack", recording_build)
    single = train(spec.model_copy(update={"gpus": 1}), tmp_path / "one")

    a, b = load_file(tmp_path / "one" / "model.safetensors"), load_file(tmp_path / "ddp" / "model.safetensors")
    assert a.keys() == b.keys()
    worst = max(((a[k] - b[k]).abs().max() / a[k].abs().max().clamp(min=1e-12)).item() for k in a)
    print(f"largest relative difference {worst:.2e}")
    assert worst < 1e-5, f"largest relative difference {worst:.2e}"  # float sums in another order, not bitwise
    assert not all(torch.equal(a[k], torch.zeros_like(a[k])) for k in a)
    meta = json.loads((tmp_path / "ddp" / "checkpoint.json").read_text())
    assert meta["epoch"] == 2 and meta["world_size"] == 2
    assert [round(r["train_loss"], 4) for r in meta["history"]] == [round(r["train_loss"], 4) for r in single.history]

    per_rank = [json.loads((tmp_path / "ddp" / f"attacked-{r}.json").read_text()) for r in (0, 1)]
    assert len(per_rank[0]) == (3 * 32 + 31) * 2 and len(per_rank[1]) == (3 * 31 + 30) * 2  # each its own share
    assert sorted(per_rank[0] + per_rank[1]) == sorted(attacked)  # together: the single process' images


@pytest.mark.parametrize("kind", ["diffusion", "trades"])
def test_ddpm_and_trades_train_in_two_processes(tmp_path, kind):
    from tests.core.test_diffusion import tiny

    spec = tiny(epochs=1, gpus=2) if kind == "diffusion" else tiny_spec(method="trades", epochs=1, gpus=2)
    path = tmp_path / "spec.json"
    path.write_text(
        json.dumps({"kind": "diffusion" if kind == "diffusion" else "classifier", **spec.model_dump(mode="json")})
    )
    assert torchrun(path, tmp_path / "out").wait(timeout=300) == 0
    meta = json.loads((tmp_path / "out" / "checkpoint.json").read_text())
    assert meta["epoch"] == 1 and all(math.isfinite(h["train_loss"]) for h in meta["history"])


def test_each_rank_gets_a_share_of_the_real_and_generated_images_together(monkeypatch):
    from core.contract.specs import DataSpec, GeneratedMixSpec
    from core.training import distributed as ddp
    from core.training.loop import epoch_plan
    from core.training.mixing import batch_plan, epoch_orders

    mix = GeneratedMixSpec(data=DataSpec(name="digits"), fraction=0.7)
    plan = batch_plan(8, 40, mix, 100)  # 8 images a batch: about 2 real and 6 generated
    orders = epoch_orders(plan, 0, 0)
    shares = []
    for rank in range(8):
        monkeypatch.setattr(ddp, "world", lambda r=rank: (r, 8))
        shares.append(epoch_plan(plan, orders, 8)[0])
    monkeypatch.setattr(ddp, "world", lambda: (0, 1))
    alone = epoch_plan(plan, orders, 1)[0]
    assert len(alone) == len(shares[0]) == plan.batches
    for b in range(plan.batches):
        sizes = [len(s[b].real) + len(s[b].generated) for s in shares]
        assert min(sizes) == max(sizes) == 1  # 8 images over 8 ranks: one each, none empty
        reals = torch.cat([s[b].real for s in shares])
        gens = torch.cat([s[b].generated for s in shares])
        assert torch.equal(reals, alone[b].real) and torch.equal(gens, alone[b].generated)


def test_a_worker_offers_no_more_gpus_than_it_has(monkeypatch, caplog):
    from core.device import owned_devices

    offered = owned_devices.__wrapped__  # uncached
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert (offered(0), offered(1), offered(2)) == (2, 1, 2)
    assert offered(8) == 2 and "ROBUSTLAB_DEVICES=8 but this machine has 2 CUDA devices" in caplog.text
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert (offered(0), offered(3)) == (1, 3)  # on the CPU: gloo processes, as many as set


def test_a_follower_fails_the_job_with_its_own_errors_only():
    from sqlalchemy.exc import OperationalError

    from core.data.folder import UnreadableImage
    from core.jobs.child import fails_the_job

    assert fails_the_job(UnreadableImage("/data/train/cat/1.png: not a readable image (truncated)"))
    assert fails_the_job(torch.OutOfMemoryError("CUDA out of memory"))
    assert not fails_the_job(RuntimeError("[../gloo/transport/tcp/pair.cc:534] Connection closed by peer"))
    assert not fails_the_job(OperationalError("SELECT 1", {}, Exception("server closed the connection")))
    assert not fails_the_job(ConnectionResetError("artifact store"))
