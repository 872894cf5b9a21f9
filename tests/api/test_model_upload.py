"""POST /v1/models: what the API checks before a worker loads anything (the worker's checks are
tested in tests/core/test_jobs.py and tests/core/test_state_dict_upload.py, the whole path in the
integration tests)."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

SPEC = json.dumps({"arch": "small_cnn", "image_size": 8, "width": 8})


def safetensors_bytes(header: dict, body: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return len(raw).to_bytes(8, "little") + raw + body


GOOD = safetensors_bytes({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8)


def upload(api, data: bytes, spec: str = SPEC, dataset: str = "digits", **form):
    files = {"weights": ("model.safetensors", data, "application/octet-stream")}
    return api.post("/v1/models", files=files, data={"spec": spec, "dataset": dataset, "wait": "0", **form})


def test_a_structurally_valid_upload_becomes_a_model_upload_job(api):
    r = upload(api, GOOD, name="mine")
    assert r.status_code == 202, r.text  # no worker here: the job waits on the interactive queue
    assert r.json()["kind"] == "model_upload" and api.queue.sent[-1] == (r.json()["id"], "interactive")
    spec = r.json()["spec"]
    assert spec["data"]["name"] == "digits" and spec["name"] == "mine" and spec["model"]["width"] == 8
    assert api.get(f"/v1/artifacts/{spec['weights_artifact_id']}").content == GOOD


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"PK\x03\x04 a zip, say", "not a PyTorch file (a broken zip archive"),  # a zip is taken for torch.save's
        (b"\x02\x00\x00\x00\x00\x00\x00\x00[]", "header is not an object"),
        (
            safetensors_bytes({"w": {"dtype": "PICKLE", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8),
            "unknown dtype",
        ),
        (
            safetensors_bytes({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 80]}}, b"\0" * 8),
            "outside the file",
        ),
        (safetensors_bytes({"w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"\0" * 8), "gaps"),
        (safetensors_bytes({}, b""), "no tensors"),
    ],
)
def test_what_is_not_safetensors_is_422_and_nothing_is_queued(api, data, reason):
    r = upload(api, data)
    assert r.status_code == 422 and reason in r.json()["detail"] and not api.queue.sent


def test_a_bad_spec_or_dataset_is_422_naming_the_field(api):
    r = upload(api, GOOD, spec=json.dumps({"arch": "vit", "image_size": 8}))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][:3] == ["body", "spec", "arch"]
    assert upload(api, GOOD, spec="{not json").status_code == 422
    r = upload(api, GOOD, dataset="folder")
    assert r.status_code == 422 and "name a folder of the data root" in json.dumps(r.json()["detail"])
    assert upload(api, GOOD, dataset="/etc").status_code == 422
    assert not api.queue.sent


def test_weights_over_the_limit_are_413(api):
    api.settings.max_model_bytes = 100
    r = upload(api, GOOD + b"\0" * 200)
    assert r.status_code == 413 and not api.queue.sent


def test_uploading_needs_a_key(api):
    files = {"weights": ("m.safetensors", GOOD)}
    r = api.post("/v1/models", files=files, data={"spec": SPEC, "dataset": "digits"}, headers={"Authorization": ""})
    assert r.status_code == 401


def torch_save_bytes(obj, legacy: bool = False) -> bytes:
    import torch  # the test writes the file; the API never imports torch (tests/test_layering.py)

    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=not legacy)
    return buf.getvalue()


def robustbench_file(legacy: bool = False) -> bytes:
    import torch

    return torch_save_bytes({"state_dict": {"module.conv1.weight": torch.zeros(4, 3, 3, 3)}, "epoch": 1}, legacy)


NORMALISED = json.dumps({"arch": "small_cnn", "image_size": 8, "width": 8, "mean": [0.0], "std": [1.0]})


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_a_pytorch_state_dict_file_becomes_a_model_upload_job_of_that_format(api, legacy):
    data = robustbench_file(legacy)
    r = upload(api, data, spec=NORMALISED)
    assert r.status_code == 202, r.text
    spec = r.json()["spec"]
    assert spec["weights_format"] == "pytorch" and spec["model"]["std"] == [1.0]
    assert api.get(f"/v1/artifacts/{spec['weights_artifact_id']}").content == data
    assert upload(api, GOOD).json()["spec"]["weights_format"] == "safetensors"


def test_a_pytorch_file_needs_its_normalisation_stated(api):
    r = upload(api, robustbench_file())
    assert r.status_code == 422 and "give mean and std" in r.json()["detail"] and not api.queue.sent


def _zip(entries: dict[str, bytes], compression=zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, body in entries.items():
            z.writestr(name, body)
    return buf.getvalue()


@pytest.mark.parametrize(
    "data, reason",
    [
        (_zip({"model/weights.bin": b"\0" * 8}), "not one torch.save wrote"),
        (_zip({"model/data.pkl": b"\x80\x02}q\x00." * 50}, zipfile.ZIP_DEFLATED), "is compressed"),
    ],
    ids=["no data.pkl", "deflated"],
)
def test_a_zip_that_torch_save_did_not_write_is_422_and_nothing_is_queued(api, data, reason):
    r = upload(api, data, spec=NORMALISED)
    assert r.status_code == 422 and reason in r.json()["detail"] and not api.queue.sent


def test_an_upload_whose_job_is_refused_leaves_no_bytes(api):
    """The upload is stored before its job is submitted; when the submission is refused (here the
    queued-job quota) its bytes go with the rolled-back row instead of waiting for `db gc`."""
    from core.store.artifacts import ArtifactStore

    store = ArtifactStore(api.settings.artifact_url)
    api.settings.max_queued_jobs_per_user = 1
    assert upload(api, GOOD).status_code == 202
    kept = [k for k in store.all_keys() if k.startswith("uploads/")]
    r = upload(api, GOOD)
    assert r.status_code == 429, r.text
    assert [k for k in store.all_keys() if k.startswith("uploads/")] == kept and len(kept) == 1


def test_a_name_with_a_nul_character_is_422_not_a_job_that_fails_writing_it(api):
    r = upload(api, GOOD, name="a\x00b")
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "name"], r.text
    assert not api.queue.sent
