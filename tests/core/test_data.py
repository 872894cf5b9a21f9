import gzip
import hashlib
import http.server
import pickle
import struct
import threading
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core.contract.datasets import DATASET_INFO
from core.contract.specs import DataSpec
from core.data import candidate_dirs, load_dataset
from core.data.cifar import read_batch
from core.data.download import fetch
from core.data.idx import read_idx

FASHION = Path("/usr/share/datasets/fashion-mnist")


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)


def make_idx_dataset(folder: Path, n_train=20, n_test=10) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    write_idx(folder / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (n_train, 28, 28)))
    write_idx(folder / "train-labels-idx1-ubyte.gz", rng.integers(0, 10, n_train))
    write_idx(folder / "t10k-images-idx3-ubyte", rng.integers(0, 256, (n_test, 28, 28)))
    write_idx(folder / "t10k-labels-idx1-ubyte", rng.integers(0, 10, n_test))


def test_digits_shapes_and_range():
    ds = load_dataset(DataSpec(name="digits"))
    assert ds.x_train.shape == (1500, 1, 8, 8) and ds.x_test.shape == (297, 1, 8, 8)
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    assert ds.x_train.min() >= 0 and ds.x_train.max() == 1.0
    assert ds.num_classes == 10


def test_fashion_mnist_from_debian_package():
    ds = load_dataset(DataSpec(name="fashion-mnist", test_subset=100))
    assert ds.x_train.shape == (60_000, 1, 28, 28) and ds.x_test.shape == (100, 1, 28, 28)
    assert ds.classes[0] == "T-shirt/top"
    assert set(ds.y_train.unique().tolist()) == set(range(10))


def test_subsets_are_fixed_by_seed():
    a = load_dataset(DataSpec(name="digits", train_subset=100, seed=3))
    b = load_dataset(DataSpec(name="digits", train_subset=100, seed=3))
    c = load_dataset(DataSpec(name="digits", train_subset=100, seed=4))
    assert torch.equal(a.x_train, b.x_train) and not torch.equal(a.x_train, c.x_train)
    assert len(a.x_train) == 100 and len(a.x_test) == 297


def test_missing_dataset_says_where_it_looked_and_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("ROBUSTLAB_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(FileNotFoundError) as err:
        load_dataset(DataSpec(name="mnist", root=str(tmp_path / "nowhere")))
    message = str(err.value)
    assert str(tmp_path / "nowhere") in message and str(tmp_path / "data" / "mnist") in message
    assert "download" in message


def test_idx_folder_and_env_lookup(tmp_path, monkeypatch):
    make_idx_dataset(tmp_path / "mnist")
    monkeypatch.setenv("ROBUSTLAB_DATA_DIR", str(tmp_path))
    assert candidate_dirs("mnist", None) == [tmp_path / "mnist"]
    ds = load_dataset(DataSpec(name="mnist"))
    assert ds.x_train.shape == (20, 1, 28, 28) and ds.x_test.shape == (10, 1, 28, 28)


def test_idx_rejects_truncated_file(tmp_path):
    path = tmp_path / "bad-idx"
    write_idx(path, np.zeros((4, 28, 28)))
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ValueError, match="payload"):
        read_idx(path)


def test_cifar_batches_read_without_trusting_pickle(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), b"labels": [0, 1, 2, 3]}
        (folder / name).write_bytes(pickle.dumps(batch))
    ds = load_dataset(DataSpec(name="cifar10", root=str(tmp_path)))
    assert ds.x_train.shape == (20, 3, 32, 32) and ds.x_test.shape == (4, 3, 32, 32)
    assert ds.classes[0] == "airplane"


def test_cifar_reader_refuses_code_in_the_pickle(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}))
    with pytest.raises(ValueError, match="builtins.print"):
        read_batch(path)


def test_folder_dataset(tmp_path):
    for split, n in (("train", 3), ("test", 2)):
        for cls, value in (("cat", 0), ("dog", 255)):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(n):
                Image.new("L", (12, 12), value).save(tmp_path / split / cls / f"{i}.png")
    ds = load_dataset(DataSpec(name="folder", root=str(tmp_path)))
    assert ds.classes == ["cat", "dog"]
    assert ds.x_train.shape == (6, 1, 12, 12) and ds.y_test.tolist() == [0, 0, 1, 1]
    assert ds.x_train[-1].min() == 1.0


@pytest.fixture
def http_server(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_download_verifies_checksum(http_server, tmp_path):
    served, url = http_server
    (served / "file.bin").write_bytes(b"robustlab" * 100)
    md5 = hashlib.md5(b"robustlab" * 100).hexdigest()
    dest = fetch(f"{url}/file.bin", tmp_path / "got" / "file.bin", md5=md5)
    assert dest.read_bytes() == b"robustlab" * 100
    with pytest.raises(ValueError, match="does not match"):
        fetch(f"{url}/file.bin", tmp_path / "got" / "other.bin", md5="0" * 32)
    assert not (tmp_path / "got" / "other.bin").exists()


def test_load_dataset_downloads_idx_files(http_server, tmp_path, monkeypatch):
    served, url = http_server
    make_idx_dataset(served)
    for raw in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (served / f"{raw}.gz").write_bytes(gzip.compress((served / raw).read_bytes()))
    sums = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in served.glob("*.gz")}
    monkeypatch.setitem(DATASET_INFO, "mnist", replace(DATASET_INFO["mnist"], checksums=sums))
    ds = load_dataset(DataSpec(name="mnist", root=str(tmp_path / "mnist")), download=True, url=url)
    assert ds.x_train.shape == (20, 1, 28, 28)
    assert sorted(p.name for p in (tmp_path / "mnist").iterdir()) == sorted(sums)


def test_every_dataset_name_has_a_loader_and_reading_idx_needs_no_torch():
    import subprocess
    import sys

    from core.contract.names import DATASETS
    from core.data.loaders import LOADERS

    assert set(LOADERS) == set(DATASETS)
    code = "import sys, core.data.idx, core.data.catalogue; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_dataset_table_knows_every_name_and_the_size_of_every_named_one():
    from core.contract.names import DATASETS, NAMED_DATASETS

    assert set(DATASET_INFO) == set(DATASETS)
    for name in NAMED_DATASETS:
        info = DATASET_INFO[name]
        assert None not in (info.train, info.test, info.channels, info.side, info.mean, info.std), name
        assert len(info.mean) == len(info.std) == info.channels, name
