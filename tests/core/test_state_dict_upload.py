"""The model_upload job with PyTorch state-dict files (what `POST /v1/models` queues for them) and
`robustlab models import FILE`: a RobustBench- or torchvision-layout file registers a model that
serves the logits of the network it was saved from, with its weights as safetensors; a hostile or
unfitting file fails naming the problem and leaves nothing behind."""

from __future__ import annotations

import json
import time

import pytest
import torch
from safetensors.torch import load

from core.contract.job_specs import ModelUploadSpec
from core.contract.specs import DataSpec, ModelSpec
from core.jobs.model_cache import ModelCache
from core.store.artifacts import ArtifactStore, record_artifact
from core.store.db import session_scope
from core.store.orm import Artifact, RegisteredModel
from core.store.registry import get_model
from tests.core.test_jobs import Lab
from tests.core.test_state_dicts import Gadget, _module_prefixed, torch_file, trained_net

DIGITS = {"in_channels": 1, "image_size": 8, "mean": [0.0], "std": [1.0]}
WRN = ModelSpec(arch="wide_resnet", depth=10, widen_factor=2, width=4, **DIGITS)
RESNET = ModelSpec(arch="resnet18", width=4, stem="cifar", **DIGITS)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    return Lab(tmp_path_factory.mktemp("state_dict_jobs"))


def _upload(lab: Lab, data: bytes) -> str:
    with session_scope(lab.settings.database_url) as s:
        return record_artifact(s, lab.store, key=f"uploads/test/{time.time_ns()}.pt", data=data, type="upload").id


def _run(lab: Lab, data: bytes, model: ModelSpec) -> tuple[dict, str]:
    upload = _upload(lab, data)
    spec = ModelUploadSpec(
        weights_artifact_id=upload, weights_format="pytorch", model=model, data=DataSpec(name="digits")
    )
    return lab.run("model_upload", spec), upload


@pytest.mark.parametrize(
    "model, publish, legacy",
    [
        (WRN, lambda sd: {"state_dict": _module_prefixed(sd), "epoch": 76}, False),  # RobustBench's
        (RESNET, lambda sd: sd, True),  # torchvision's layout, in torch.save's legacy format
    ],
    ids=["robustbench-wrn", "torchvision-resnet18-legacy"],
)
def test_a_published_state_dict_registers_a_model_with_the_same_logits(lab, model, publish, legacy):
    source = trained_net(model)
    job, upload = _run(lab, torch_file(publish(source.net.state_dict()), legacy=legacy), model)
    assert job["status"] == "succeeded", job["error"]
    assert job["result"]["clean_images"] == 297 and 0 <= job["result"]["clean_acc"] <= 1
    with session_scope(lab.settings.database_url) as s:
        row = get_model(s, model_id=job["result"]["model_id"])
        assert row.architecture == model.arch and s.get(Artifact, upload) is None
        uri = row.checkpoint_uri
    stored = load(lab.store.get_bytes(f"{uri}/model.safetensors"))  # the registry keeps safetensors
    assert set(stored) == set(source.state_dict())
    served = ModelCache(2).get(row.id, uri, lab.store, torch.device("cpu"))
    x = torch.rand(8, 1, 8, 8)
    with torch.no_grad():  # served in channels_last memory: equal up to float rounding
        torch.testing.assert_close(served(x), source(x), rtol=1e-5, atol=1e-5)


def test_a_hostile_file_fails_by_weights_only_never_runs_and_leaves_nothing(lab, tmp_path):
    marker = tmp_path / "pwned"
    data = torch_file({"state_dict": trained_net(WRN).net.state_dict(), "x": Gadget(str(marker))})
    with session_scope(lab.settings.database_url) as s:
        before = s.query(RegisteredModel).count()
    job, upload = _run(lab, data, WRN)
    assert job["status"] == "failed" and "refused by torch.load(weights_only=True)" in job["error"]
    assert "posix.system" in job["error"] and not marker.exists()
    with session_scope(lab.settings.database_url) as s:
        assert s.query(RegisteredModel).count() == before and s.get(Artifact, upload) is None


def test_weights_of_another_network_fail_naming_the_names(lab):
    job, upload = _run(lab, torch_file(trained_net(RESNET).net.state_dict()), WRN)
    assert (
        job["status"] == "failed"
        and "weights do not fit wide_resnet (width 4, depth 10, widen_factor 2" in job["error"]
    )
    assert "missing net.block1.layer.0.bn1.bias" in job["error"]
    with session_scope(lab.settings.database_url) as s:
        assert s.get(Artifact, upload) is None


def test_the_command_line_imports_a_state_dict_file(tmp_path, monkeypatch, capsys):
    from core.cli.main import main
    from core.settings import get_settings

    source = trained_net(WRN)
    path = tmp_path / "Carmon2019Unlabeled.pt"
    path.write_bytes(torch_file({"state_dict": _module_prefixed(source.net.state_dict())}))
    db, artifacts = f"sqlite:///{tmp_path / 'cli.db'}", str(tmp_path / "artifacts")
    monkeypatch.setenv("DATABASE_URL", db)
    monkeypatch.setenv("ARTIFACT_URL", artifacts)
    get_settings.cache_clear()
    try:
        no_norm = WRN.model_copy(update={"mean": None, "std": None}).model_dump_json()
        assert main(["models", "import", str(path), "--model", no_norm, "--dataset", "digits"]) == 2
        assert "give the model's mean and std" in capsys.readouterr().err
        assert main(["models", "import", str(path)]) == 2
        assert "give --model" in capsys.readouterr().err
        args = ["models", "import", str(path), "--model", WRN.model_dump_json(), "--dataset", "digits", "--json"]
        assert main(args) == 0
    finally:
        get_settings.cache_clear()
    out = json.loads(capsys.readouterr().out)
    assert out["name"] == "digits-import-wide_resnet" and out["dataset"] == "digits"
    with session_scope(db) as s:
        row = get_model(s, model_id=out["id"])
        assert row.summary["clean_images"] == 297 and row.summary["imported_from"] == str(path)
        uri = row.checkpoint_uri
    served = ModelCache(2).get(out["id"], uri, ArtifactStore(artifacts), torch.device("cpu"))
    x = torch.rand(8, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(served(x), source(x), rtol=1e-5, atol=1e-5)
