"""The dataset catalogue and uploads: no paths in specs, and archives that try to escape, link,
explode or smuggle non-images are refused before anything is decoded or written outside the store."""

from __future__ import annotations

import io
import stat
import struct
import zipfile
import zlib

import pytest
from PIL import Image

from core.data.archive import ArchiveError, ArchiveLimits, members, read_archive


def png(value: int, size=(8, 8)) -> bytes:
    buf = io.BytesIO()
    Image.new("L", size, value).save(buf, format="PNG")
    return buf.getvalue()


def tiff() -> bytes:
    buf = io.BytesIO()
    Image.new("L", (8, 8), 5).save(buf, format="TIFF")
    return buf.getvalue()


def class_folders_zip(entries: dict[str, bytes] | None = None) -> bytes:
    entries = entries or {f"{c}/{i}.png": png(40 * i) for c in ("cat", "dog") for i in range(5)}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_class_folders_are_read_and_split_by_a_seeded_draw():
    arrays = read_archive(class_folders_zip())
    assert arrays["classes"] == ["cat", "dog"]
    assert arrays["x_train"].shape == (8, 1, 8, 8) and arrays["x_test"].shape == (2, 1, 8, 8)
    assert sorted(arrays["y_test"].tolist()) == [0, 1]  # a fifth of each class
    split = class_folders_zip({f"{s}/{c}/{i}.png": png(i) for s in ("train", "test") for c in "ab" for i in range(2)})
    arrays = read_archive(split)
    assert len(arrays["x_train"]) == len(arrays["x_test"]) == 4
    wrapped = class_folders_zip({f"mine/{c}/{i}.png": png(i) for c in "ab" for i in range(3)})
    assert read_archive(wrapped)["classes"] == ["a", "b"]


def symlink_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a/1.png", png(1))
        link = zipfile.ZipInfo("a/2.png")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
    return buf.getvalue()


def bomb_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a/1.png", png(1))
        zf.writestr("b/1.png", b"\0" * 50_000_000)
    return buf.getvalue()


def lying_size_zip() -> bytes:
    """A member that declares the size and checksum of a small PNG but inflates to 1 MiB more: zipfile
    stops quietly at the declared size (the PNG decodes); robustlab inflates it and refuses it."""
    image = png(3)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a/1.png", png(1))
        zf.writestr("b/1.png", image + b"\0" * (1 << 20))
    data = bytearray(buf.getvalue())
    fields = struct.pack("<I", zlib.crc32(image)), struct.pack("<I", len(image))
    for signature, crc_at, size_at in ((b"PK\x03\x04", 14, 22), (b"PK\x01\x02", 16, 24)):
        at = data.rfind(signature)  # the second member's header: the last of its kind
        data[at + crc_at : at + crc_at + 4], data[at + size_at : at + size_at + 4] = fields
    return bytes(data)


HOSTILE = {
    "traversal": (class_folders_zip({"../../etc/cron.d/x.png": png(1), "a/1.png": png(2)}), "leaves the archive"),
    "absolute": (class_folders_zip({"/tmp/x.png": png(1), "a/1.png": png(2)}), "leaves the archive"),
    "symlink": (symlink_zip(), "a link"),
    "bomb": (bomb_zip(), "zip bomb"),
    "non-image": (class_folders_zip({"a/1.png": png(1), "b/notes.txt": b"hello"}), "is not an image"),
    "fake image": (class_folders_zip({"a/1.png": png(1), "b/1.png": b"not a png at all"}), "not a readable image"),
    "not a zip": (b"PK\x03\x04 but then nothing", "not a zip archive"),
    "one class": (class_folders_zip({"a/1.png": png(1), "a/2.png": png(2)}), "at least two class folders"),
    "lying size": (lying_size_zip(), "inflates to more than the"),
    "train only": (class_folders_zip({"train/a/1.png": png(1), "train/b/1.png": png(2)}), "no test/ folder"),
    "test classes differ": (
        class_folders_zip(
            {f"train/{c}/1.png": png(1) for c in "ab"} | {"test/a/1.png": png(1), "test/c/1.png": png(2)}
        ),
        "different class folders",
    ),
    "ignored name that leaves": (
        class_folders_zip({"__MACOSX/../../x.png": png(1), "a/1.png": png(1), "b/1.png": png(2)}),
        "leaves the archive",
    ),
    "one image in a class": (class_folders_zip({"a/1.png": png(1), "a/2.png": png(2), "b/1.png": png(3)}), "one image"),
    "class only in test": (
        class_folders_zip({"train/a/1.png": png(1), "test/a/1.png": png(1), "test/b/1.png": png(2)}),
        "class 'b' has no training images",
    ),
    "side below 8": (class_folders_zip({"a/1.png": png(1, (3, 200)), "b/1.png": png(2)}), "a side of at least 8"),
    "tiff named png": (class_folders_zip({"a/1.png": tiff(), "b/1.png": png(2)}), "not a readable image"),
    "ignored name under ..": (
        class_folders_zip({"../../.DS_Store": b"x", "a/1.png": png(1), "b/1.png": png(2)}),
        "leaves the archive",
    ),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_archives_are_refused_with_the_reason(name):
    data, reason = HOSTILE[name]
    with pytest.raises(ArchiveError, match=reason):
        read_archive(data)


def test_small_images_scaled_up_to_a_large_first_one_are_bounded_before_they_decode():
    """The first image sets the side all take: one large image, then thousands of 1-pixel ones,
    would decode to far more than the archive holds."""
    big = io.BytesIO()
    Image.new("RGB", (1024, 1024), (1, 2, 3)).save(big, format="PNG")
    entries = {"a/0000.png": big.getvalue()} | {
        f"{c}/{i}.png": png(i % 250, (1, 1)) for c in "ab" for i in range(1, 400)
    }
    with pytest.raises(ArchiveError, match="799 images of 256×256×3 .* decode to 150 MiB; the limit is 50 MiB"):
        read_archive(class_folders_zip(entries), ArchiveLimits(max_decoded=50 << 20))
    arrays = read_archive(
        class_folders_zip({"a/1.png": big.getvalue(), "a/2.png": png(1), "b/1.png": png(2), "b/2.png": png(3)})
    )
    assert arrays["x_train"].shape[1:] == (3, 256, 256)  # larger than a model takes: scaled down to 256


def test_too_many_files_are_refused_from_the_directory_alone():
    many = class_folders_zip({f"{c}/{i}.png": b"x" for c in "ab" for i in range(600)})
    with pytest.raises(ArchiveError, match="1200 files; the limit is 1000"):
        members(many, ArchiveLimits(max_files=1000))


def upload(api, data: bytes, **form):
    return api.post(
        "/v1/datasets",
        files={"archive": ("d.zip", data, "application/zip")},
        data={"name": "mine", "wait": "0", **form},
    )


@pytest.mark.parametrize(
    "name", ["traversal", "symlink", "bomb", "non-image", "not a zip", "train only", "ignored name that leaves"]
)
def test_the_api_refuses_hostile_archives_before_storing_anything(api, name, tmp_path):
    data, reason = HOSTILE[name]
    r = upload(api, data)
    assert r.status_code == 422 and reason in r.json()["detail"] and not api.queue.sent
    assert not (tmp_path / "artifacts" / "uploads").exists()


def test_a_good_archive_becomes_a_dataset_upload_job_and_specs_take_no_paths(api):
    r = upload(api, class_folders_zip())
    assert r.status_code == 202 and r.json()["kind"] == "dataset_upload"
    spec = {"data": {"name": "folder", "root": "/etc"}, "model": {"image_size": 8}}
    r = api.post("/v1/jobs", json={"kind": "adversarial_training", "spec": spec})
    assert r.status_code == 422 and "takes no paths" in r.json()["detail"]
    r = api.post("/v1/jobs", json={"kind": "adversarial_training", "spec": {"data": {"name": "folder", "folder": "x"}}})
    assert r.status_code == 404 and "no folder 'x'" in r.json()["detail"]
    r = api.post(
        "/v1/jobs", json={"kind": "adversarial_training", "spec": {"data": {"name": "uploaded", "dataset_id": "nope"}}}
    )
    assert r.status_code == 404
    assert [d["name"] for d in api.get("/v1/datasets").json()["named"]] == [
        "fashion-mnist",
        "mnist",
        "cifar10",
        "digits",
    ]


def test_an_archive_of_100k_tiny_files_is_refused_from_its_directory(api):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for i in range(100_001):
            zf.writestr(f"c{i % 2}/{i}.png", b"")
    r = upload(api, buf.getvalue())
    assert r.status_code == 422 and "100001 files; the limit is 50000" in r.json()["detail"] and not api.queue.sent
