"""Memory admission's estimate: it grows with what costs memory, and stays in range on the presets
(its error against measured peak RSS is in docs/benchmarks.md, from bench/memory_estimate.py)."""

from __future__ import annotations

from core.contract.kinds import JOB_KINDS
from core.contract.memory import ddpm_train_bytes, train_bytes
from core.contract.presets import ddpm_preset, train_preset

GIB = 2**30


def test_the_estimate_grows_with_batch_width_and_precision():
    spec = train_preset("gpu")
    base = train_bytes(spec)
    assert train_bytes(spec.model_copy(update={"batch_size": 512})) > base
    wider = spec.model_copy(update={"model": spec.model.model_copy(update={"width": 128})})
    assert train_bytes(wider) > base
    assert train_bytes(spec.model_copy(update={"amp": False})) > base  # fp32 activations take twice bf16's
    ddpm = ddpm_preset("gpu")
    assert ddpm_train_bytes(ddpm.model_copy(update={"batch_size": 512})) > ddpm_train_bytes(ddpm)


def test_the_presets_fit_a_small_machine_and_a_monster_does_not():
    for name in ("smoke", "cpu", "gpu"):
        assert 0.4 * GIB < train_bytes(train_preset(name)) < 8 * GIB
        assert 0.4 * GIB < ddpm_train_bytes(ddpm_preset(name)) < 8 * GIB
    monster = train_preset("gpu").model_copy(update={"batch_size": 8192})
    monster = monster.model_copy(update={"model": monster.model.model_copy(update={"width": 512})})
    assert train_bytes(monster) > 64 * GIB
    assert JOB_KINDS["adversarial_training"].memory_fields == "batch_size, model.width or model.arch"


def test_a_multi_process_job_counts_every_process():
    spec, ddpm = train_preset("cpu"), ddpm_preset("cpu")
    for one, estimate in ((spec, train_bytes), (ddpm, ddpm_train_bytes)):
        two = one.model_copy(update={"gpus": 2})
        assert 1.5 * estimate(one) < estimate(two) < 2 * estimate(one)  # each its half batch
