"""A crash between the files of one checkpoint (while they are renamed into place, uploaded to the
artifact store or downloaded from it) leaves a whole checkpoint to resume from, never a job that
can only fail on a "torn checkpoint"; downloads leave no partial file and take turns."""

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

import core.store.artifacts as artifacts
import core.training.checkpoint as checkpoint
from core.contract.checkpoint import META_FILE, MODEL_FILE
from core.data.loaders import dataset_files_present
from core.store.artifacts import ArtifactStore
from core.training.checkpoint import load_checkpoint, save_checkpoint


class Crash(Exception):
    pass


def model_and_optimizer() -> tuple[nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    return model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)


def step(model, opt) -> None:
    opt.zero_grad()
    model(torch.randn(8, 4)).square().mean().backward()
    opt.step()


def save_epoch(folder: Path, model, opt, epoch: int) -> dict[str, torch.Tensor]:
    """Train one step, checkpoint it as `epoch`; the weights saved."""
    step(model, opt)
    save_checkpoint(folder, model, opt, {"epoch": epoch}, kind="classifier")
    return {k: v.clone() for k, v in model.state_dict().items()}


def loaded(folder: Path) -> tuple[int, dict[str, torch.Tensor]]:
    model, opt = model_and_optimizer()
    meta = load_checkpoint(folder, model, opt)
    return meta["epoch"], model.state_dict()


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def save_crashing(folder: Path, model, opt, epoch: int, monkeypatch, *, into: Path, after: int) -> None:
    """`save_epoch`, crashing at the rename into `into` that comes after `after` of them."""
    calls, real_replace = [], os.replace

    def replace(src, dst):
        if Path(dst).parent == into:
            calls.append(dst)
            if len(calls) > after:
                raise Crash()
        real_replace(src, dst)

    monkeypatch.setattr(checkpoint.os, "replace", replace)
    with pytest.raises(Crash):
        save_epoch(folder, model, opt, epoch)
    monkeypatch.undo()


@pytest.mark.parametrize("renamed", [1, 2])
def test_a_crash_between_the_renames_resumes_from_the_epoch_before(tmp_path, monkeypatch, renamed):
    model, opt = model_and_optimizer()
    first = save_epoch(tmp_path, model, opt, 1)
    save_crashing(tmp_path, model, opt, 2, monkeypatch, into=tmp_path, after=renamed)
    assert not same(load_file(tmp_path / MODEL_FILE), first)  # the new weights are in place, their JSON is not
    epoch, weights = loaded(tmp_path)
    assert epoch == 1 and same(weights, first)

    # resumed from epoch 1, the next save crashes the same way: epoch 1 is still whole
    model, opt = model_and_optimizer()
    load_checkpoint(tmp_path, model, opt)
    save_crashing(tmp_path, model, opt, 2, monkeypatch, into=tmp_path, after=renamed)
    assert loaded(tmp_path)[0] == 1
    second = save_epoch(tmp_path, model, opt, 2)
    epoch, weights = loaded(tmp_path)
    assert epoch == 2 and same(weights, second)


@pytest.mark.parametrize("kept", range(3))
def test_a_crash_while_the_epoch_before_is_kept_leaves_it_whole(tmp_path, monkeypatch, kept):
    model, opt = model_and_optimizer()
    first = save_epoch(tmp_path, model, opt, 1)
    save_epoch(tmp_path, model, opt, 2)
    shutil.copy(tmp_path / ".prev" / META_FILE, tmp_path / META_FILE)  # epoch 2's JSON never landed
    assert loaded(tmp_path)[0] == 1  # epoch 1 is whole: its JSON here, its tensors in .prev/
    save_crashing(tmp_path, model, opt, 3, monkeypatch, into=tmp_path / ".prev", after=kept)
    epoch, weights = loaded(tmp_path)
    assert epoch == 1 and same(weights, first)


def test_files_that_match_no_json_are_refused_as_torn(tmp_path):
    model, opt = model_and_optimizer()
    save_epoch(tmp_path, model, opt, 1)
    save_epoch(tmp_path, model, opt, 2)
    for place in (tmp_path, tmp_path / ".prev"):
        (place / MODEL_FILE).unlink()
        (place / MODEL_FILE).write_bytes(b"not the weights")
    with pytest.raises(ValueError, match="torn checkpoint"):
        loaded(tmp_path)


@pytest.mark.parametrize("uploaded", range(6))
def test_an_upload_cut_short_leaves_a_whole_checkpoint_in_the_store(tmp_path, monkeypatch, uploaded):
    store = ArtifactStore(str(tmp_path / "store"))
    model, opt = model_and_optimizer()
    weights = {1: save_epoch(tmp_path / "run", model, opt, 1)}
    store.upload_folder(tmp_path / "run", "jobs/j/checkpoint")
    weights[2] = save_epoch(tmp_path / "run", model, opt, 2)
    put, calls = store.put_bytes, []

    def cut_short(key, data):
        calls.append(key)
        if len(calls) > uploaded:
            raise Crash()
        return put(key, data)

    monkeypatch.setattr(store, "put_bytes", cut_short)
    with pytest.raises(Crash):
        store.upload_folder(tmp_path / "run", "jobs/j/checkpoint")
    monkeypatch.undo()
    order = [f"{place}/{n}" for place in (".prev", "") for n in (MODEL_FILE, "train_state.safetensors", META_FILE)]
    assert calls == [f"jobs/j/checkpoint/{key}".replace("//", "/") for key in order][: uploaded + 1]

    assert store.download_folder("jobs/j/checkpoint", tmp_path / "other-node")
    epoch, got = loaded(tmp_path / "other-node")
    assert epoch in (1, 2) and same(got, weights[epoch])


def test_a_download_cut_short_leaves_no_partial_file(tmp_path, monkeypatch):
    store = ArtifactStore(str(tmp_path / "store"))
    store.put_bytes("datasets/d/dataset.json", json.dumps({"files": ["a.safetensors"]}).encode())
    store.put_bytes("datasets/d/a.safetensors", b"x" * (3 << 20))
    copy = artifacts.shutil.copyfileobj

    def cut_short(src, dst, length=0):
        if Path(dst.name).name.startswith(".a.safetensors"):
            dst.write(src.read(1 << 20))
            raise Crash()
        copy(src, dst, length)

    monkeypatch.setattr(artifacts.shutil, "copyfileobj", cut_short)
    with pytest.raises(Crash):
        store.download_folder("datasets/d", tmp_path / "local")
    assert not (tmp_path / "local" / "a.safetensors").exists()
    assert not dataset_files_present(tmp_path / "local")
    monkeypatch.undo()
    store.download_folder("datasets/d", tmp_path / "local")
    assert dataset_files_present(tmp_path / "local")
    assert (tmp_path / "local" / "a.safetensors").stat().st_size == 3 << 20


def test_a_put_into_a_local_store_is_whole_or_absent(tmp_path, monkeypatch):
    store = ArtifactStore(str(tmp_path / "store"))
    store.put_bytes("k/file.bin", b"old")
    monkeypatch.setattr(artifacts.os, "replace", lambda src, dst: (_ for _ in ()).throw(Crash()))
    with pytest.raises(Crash):
        store.put_bytes("k/file.bin", b"new bytes")
    assert store.get_bytes("k/file.bin") == b"old"


def test_fetches_of_the_same_files_take_turns(tmp_path):
    import threading
    import time

    from core.jobs.context import one_at_a_time

    order = []

    def fetch(name: str) -> None:
        with one_at_a_time(tmp_path / ".d.lock"):
            order.append(f"{name} in")
            time.sleep(0.2)
            order.append(f"{name} out")

    threads = [threading.Thread(target=fetch, args=(n,)) for n in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert order in (["a in", "a out", "b in", "b out"], ["b in", "b out", "a in", "a out"]), order


def test_a_finished_training_folder_holds_one_epoch_and_imports_upload_one(tmp_path):
    from core.training import train
    from tests.conftest import tiny_spec

    train(tiny_spec(epochs=2), tmp_path / "run")
    assert not (tmp_path / "run" / ".prev").exists()

    model, opt = model_and_optimizer()  # an interrupted run's folder: .prev/ still there
    save_epoch(tmp_path / "cut", model, opt, 1)
    save_epoch(tmp_path / "cut", model, opt, 2)
    store = ArtifactStore(str(tmp_path / "store"))
    store.upload_folder(tmp_path / "cut", "imports/x/checkpoint", previous=False)
    assert not any(".prev" in key for key in store.all_keys())


@pytest.mark.parametrize("local, stored, kept", [(3, 5, 5), (5, 3, 5)], ids=["store newer", "local newer"])
def test_a_job_back_on_a_node_resumes_from_the_newest_checkpoint(tmp_path, local, stored, kept):
    """A job moved A → B → A after crashes: A's own copy is older than what B uploaded; the newer
    of the two is the one resumed (before, A's stale copy won and B's epochs were trained again)."""
    from core.jobs.context import JobContext

    store = ArtifactStore(str(tmp_path / "store"))
    ctx = JobContext(job_id="j", session=None, store=store, work_dir=tmp_path / "work", models=None, device="cpu")
    folder = tmp_path / "work" / "j"
    folder.mkdir(parents=True)
    (folder / MODEL_FILE).write_bytes(b"local")
    (folder / META_FILE).write_text(json.dumps({"epoch": local}))
    store.put_bytes(f"{ctx.checkpoint_prefix}/{MODEL_FILE}", b"stored")
    store.put_bytes(f"{ctx.checkpoint_prefix}/{META_FILE}", json.dumps({"epoch": stored}).encode())
    assert ctx.checkpoint_folder() == folder
    assert json.loads((folder / META_FILE).read_text())["epoch"] == kept
    assert (folder / MODEL_FILE).read_bytes() == (b"stored" if kept == stored else b"local")
