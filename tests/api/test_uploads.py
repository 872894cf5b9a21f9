import io

import pytest
from PIL import Image


def image_bytes(fmt: str, size=(16, 16), mode="L") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, 128).save(buf, format=fmt)
    return buf.getvalue()


def post(api, data: bytes, name="x.png", **form):
    return api.post("/v1/attacks", files={"image": (name, data)}, data={"model_id": api.model_id, **form})


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "BMP"])
def test_accepted_formats_become_a_job(api, fmt):
    r = post(api, image_bytes(fmt, mode="RGB"))
    assert r.status_code == 202  # no worker here; the integration tests see it finish
    job = r.json()
    assert job["kind"] == "image_attack" and job["spec"]["model_id"] == api.model_id
    assert api.queue.sent[-1] == (job["id"], "interactive")
    upload = api.get(f"/v1/artifacts/{job['spec']['input_artifact_id']}")
    assert Image.open(io.BytesIO(upload.content)).size == (8, 8)  # converted to the model's input


def test_too_large_upload_is_413(api):
    r = post(api, b"\x89PNG" + b"0" * 300_000)
    assert r.status_code == 413 and "larger than 200000 bytes" in r.json()["detail"]


def test_too_many_pixels_is_413(api):
    r = post(api, image_bytes("PNG", size=(1200, 1000)))
    assert r.status_code == 413 and "pixels" in r.json()["detail"]


@pytest.mark.parametrize("data,name", [(b"GIF89a" + b"\0" * 40, "x.gif"), (b"hello world", "x.txt")])
def test_other_formats_are_415(api, data, name):
    if name == "x.gif":
        buf = io.BytesIO()
        Image.new("L", (4, 4)).save(buf, format="GIF")
        data = buf.getvalue()
    r = post(api, data, name=name)
    assert r.status_code == 415 and "PNG" in r.json()["detail"]


def test_truncated_file_is_422(api):
    data = image_bytes("PNG", size=(64, 64))
    r = post(api, data[: len(data) // 2])
    assert r.status_code == 422 and "truncated or corrupt" in r.json()["detail"]


def test_empty_upload_is_422(api):
    assert post(api, b"").status_code == 422


def test_bad_attack_spec_is_422(api):
    r = post(api, image_bytes("PNG"), attack='{"eps": -3}')
    assert r.status_code == 422 and "eps" in r.json()["detail"]


def test_unknown_model_is_404(api):
    r = api.post("/v1/attacks", files={"image": ("x.png", image_bytes("PNG"))}, data={"model_id": "nope"})
    assert r.status_code == 404


def test_a_label_that_is_not_a_class_of_the_model_is_422(api):
    r = post(api, image_bytes("PNG"), label="10")  # the model has 10 classes, 0 to 9
    assert r.status_code == 422 and "spec.label: 10 is not a class of model" in r.json()["detail"], r.text
    r = api.post("/v1/attacks", data={"model_id": api.model_id, "test_index": "0", "label": "10"})
    assert r.status_code == 422 and not api.queue.sent
    assert post(api, image_bytes("PNG"), label="9").status_code == 202
