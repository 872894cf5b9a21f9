"""A file in torch.save's legacy format is read only when every storage its object declares has
its bytes in the file: torch.load allocates each declared storage but fills only the listed ones,
so a file that leaves one out would hand back the worker's uninitialised memory as weights."""

from __future__ import annotations

import io
import pickle
import pickletools

import pytest
import torch

from core.contract.legacy_torch import check_legacy_file
from core.models.state_dicts import imported_weights


def legacy_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=False)
    return buf.getvalue()


def parts(data: bytes) -> tuple[bytes, list[str], bytes]:
    """(the first four pickles, the storage keys, the storages' bytes) of a legacy file."""
    f = io.BytesIO(data)
    for _ in range(4):
        for _op in pickletools.genops(f):
            pass
    head = data[: f.tell()]
    keys = [arg for op, arg, _ in pickletools.genops(f) if op.name == "BINUNICODE"]
    return head, keys, data[f.tell() :]


WEIGHTS = {"w": torch.arange(6.0).reshape(2, 3), "b": torch.ones(6)}  # two storages of 6 floats
RECORD = 8 + 6 * 4  # a storage's count and its bytes


def test_a_legacy_file_as_torch_writes_it_passes_and_loads():
    data = legacy_bytes(
        {"state_dict": {"module.w": WEIGHTS["w"], "module.v": WEIGHTS["w"][0], "module.b": WEIGHTS["b"]}}
    )
    check_legacy_file(data)
    loaded = imported_weights(data, "pytorch")
    assert torch.equal(loaded["net.w"], WEIGHTS["w"]) and torch.equal(loaded["net.v"], WEIGHTS["w"][0])


def test_a_storage_left_out_of_the_key_list_is_refused_before_torch_allocates_it():
    data = legacy_bytes(WEIGHTS)
    head, keys, tail = parts(data)
    assert len(keys) == 2 and len(tail) == 2 * RECORD
    hostile = head + pickle.dumps(keys[:1], protocol=2) + tail[:RECORD]
    with pytest.raises(ValueError, match="declares 2 storages but holds the bytes of 1"):
        imported_weights(hostile, "pytorch")
    padded = hostile + b"\0" * RECORD  # the missing bytes as junk after the last storage
    with pytest.raises(ValueError, match="declares 2 storages but holds the bytes of 1"):
        check_legacy_file(padded)


def test_a_storage_listed_twice_or_cut_short_or_followed_by_junk_is_refused():
    data = legacy_bytes({"w": WEIGHTS["w"]})
    head, keys, tail = parts(data)
    with pytest.raises(ValueError, match="not a list of distinct keys"):
        check_legacy_file(head + pickle.dumps(keys * 2, protocol=2) + tail + tail)
    with pytest.raises(ValueError, match="does not hold the 6 elements it declares"):
        check_legacy_file(data[:-30])
    with pytest.raises(ValueError, match="end before the end of the file"):
        check_legacy_file(data + b"junk")
    lying = tail[:8].replace(b"\x06", b"\x05", 1) + tail[8:]  # the count says 5 of the 6 declared
    with pytest.raises(ValueError, match="does not hold the 6 elements"):
        check_legacy_file(head + pickle.dumps(keys, protocol=2) + lying)


def test_a_huge_declared_storage_is_refused_without_allocating_it():
    data = legacy_bytes({"w": torch.zeros(3)})
    head, keys, tail = parts(data)
    huge = head.replace(pickle.dumps(3, protocol=2)[2:-1] + b"N", pickle.dumps(10**9, protocol=2)[2:-1] + b"N", 1)
    assert huge != head
    with pytest.raises(ValueError, match="does not hold the 1000000000 elements"):
        imported_weights(huge + pickle.dumps(keys, protocol=2) + tail, "pytorch")


def test_a_pickle_of_millions_of_opcodes_is_refused_at_the_bound():
    data = legacy_bytes({"w": torch.zeros(3)})
    head, keys, tail = parts(data)
    f = io.BytesIO(data)
    for _ in range(3):
        for _op in pickletools.genops(f):
            pass
    padded = data[: f.tell()] + b"\x80\x02" + b"N0" * 600_000 + head[f.tell() + 2 :]  # NONE, POP, again and again
    with pytest.raises(ValueError, match="more than 1,000,000 pickle opcodes"):
        check_legacy_file(padded + pickle.dumps(keys, protocol=2) + tail)
