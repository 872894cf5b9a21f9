"""Weights from elsewhere: PyTorch files in the layouts torchvision, TRADES and RobustBench publish
(written here the way they write them) load strictly into robustlab's networks and give the same
logits; what is not a state dict, and every pickle that asks for more than tensors, is refused by
torch.load(weights_only=True) with a message that says so."""

from __future__ import annotations

import argparse
import io
import os
import pickle
import zipfile
from collections import OrderedDict

import pytest
import torch
from safetensors.torch import save

from core.contract.specs import ModelSpec
from core.contract.weights_files import check_pytorch_file, weights_format
from core.models import build_model
from core.models.bring_your_own import checked_classifier
from core.models.state_dicts import imported_weights, robustlab_names
from tests.core.test_networks import random_state_dict, trades_layout


def torch_file(obj, legacy: bool = False) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=not legacy)
    return buf.getvalue()


def trained_net(spec: ModelSpec, batch: int = 16) -> torch.nn.Module:
    """A classifier with batch-norm statistics that are not the initial ones."""
    model = build_model(spec).train()
    with torch.no_grad():
        model(torch.rand(batch, spec.in_channels, spec.image_size, spec.image_size))
    return model.eval()


def same_logits(spec: ModelSpec, source: torch.nn.Module, data: bytes) -> None:
    """`data` imports strictly into `spec` and the result computes what `source` computes."""
    imported = checked_classifier(spec, imported_weights(data, weights_format(data)))
    x = torch.rand(2, spec.in_channels, spec.image_size, spec.image_size)
    with torch.no_grad():
        assert torch.equal(imported(x), source(x))


RESNET = ModelSpec(arch="resnet18", in_channels=3, image_size=16, width=4, mean=[0.5] * 3, std=[0.25] * 3)
WRN = ModelSpec(arch="wide_resnet", depth=10, widen_factor=2, width=4, in_channels=3, image_size=16)


def _module_prefixed(sd: dict) -> OrderedDict:
    return OrderedDict((f"module.{k}", v) for k, v in sd.items())


LAYOUTS = {
    "torchvision: the state dict alone": lambda sd: sd,
    "DataParallel: module. before every name": _module_prefixed,
    "RobustBench: state_dict wrapper and module.": lambda sd: {"state_dict": _module_prefixed(sd), "epoch": 76},
    "a training script: model_state_dict beside the optimizer": lambda sd: {
        "model_state_dict": sd,
        "optimizer_state_dict": {"state": {}, "param_groups": [{"lr": 0.1, "params": [0, 1]}]},
        "epoch": 3,
        "best_acc": 0.53,
    },
    "a model wrapper": lambda sd: {"model": sd},
    "legacy torch.save (before PyTorch 1.6)": lambda sd: sd,
}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("spec", [RESNET, WRN], ids=["resnet18", "wrn-10-2"])
def test_every_published_layout_loads_strictly_with_the_same_logits(spec, layout):
    model = trained_net(spec)
    published = LAYOUTS[layout](model.net.state_dict())
    same_logits(spec, model, torch_file(published, legacy=layout.startswith("legacy")))


def test_a_trades_checkpoint_with_its_unused_sub_block1_loads_into_sub_block1_true():
    sd = random_state_dict(trades_layout(10, 2, width=4, sub_block1=True))
    data = torch_file(sd, legacy=True)  # TRADES' checkpoints predate the zip format
    with pytest.raises(ValueError, match="unexpected net.sub_block1.layer.0.bn1.bias"):
        checked_classifier(WRN, imported_weights(data, "pytorch"))
    model = checked_classifier(WRN.model_copy(update={"sub_block1": True}), imported_weights(data, "pytorch"))
    assert torch.equal(model.net.sub_block1.layer[0].conv1.weight, sd["sub_block1.layer.0.conv1.weight"])


def test_safetensors_with_the_public_names_map_too_and_robustlab_names_stay():
    model = trained_net(RESNET)
    same_logits(RESNET, model, save(model.net.state_dict()))  # timm publishes safetensors, torchvision's names
    assert list(robustlab_names(model.state_dict())) == list(model.state_dict())
    assert list(robustlab_names({"module.model.fc.weight": torch.zeros(1)})) == ["net.fc.weight"]


def test_a_state_dict_from_before_pytorch_0_4_1_loads_with_zero_batch_counts():
    model = trained_net(WRN)
    old = {k: v for k, v in model.net.state_dict().items() if not k.endswith("num_batches_tracked")}
    same_logits(WRN, model, torch_file(old))
    partly = {k: v for k, v in model.net.state_dict().items() if k != "bn1.num_batches_tracked"}
    with pytest.raises(ValueError, match="missing net.bn1.num_batches_tracked"):  # one of many: a broken file
        checked_classifier(WRN, imported_weights(torch_file(partly), "pytorch"))


class Gadget:
    """What a hostile checkpoint hides: unpickling it would run a command."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_a_reduce_gadget_is_refused_by_weights_only_and_never_runs(tmp_path, legacy):
    marker = tmp_path / "pwned"
    sd = trained_net(WRN).net.state_dict()
    data = torch_file({"state_dict": sd, "note": Gadget(str(marker))}, legacy=legacy)
    with pytest.raises(ValueError, match=r"refused by torch.load\(weights_only=True\): it asks for posix.system"):
        imported_weights(data, "pytorch")
    assert not marker.exists()


def test_a_whole_pickled_module_and_objects_of_other_classes_are_refused():
    data = torch_file(build_model(WRN).net)  # torch.save(model): a pickled module, not a state dict
    with pytest.raises(ValueError, match="it asks for core.models.wide_resnet.WideResNet"):
        imported_weights(data, "pytorch")
    sd = build_model(WRN).net.state_dict()
    with pytest.raises(ValueError, match="it asks for argparse.Namespace"):  # a script's arguments beside the weights
        imported_weights(torch_file({"state_dict": sd, "args": argparse.Namespace(lr=0.1)}), "pytorch")


@pytest.mark.parametrize(
    "obj, message",
    [
        ([torch.zeros(2)], "holds a list, not a state dict"),
        ({"state_dict": {"w": 3}}, "w is not tensors"),
        ({}, "holds a dict, not a state dict"),
        ({"epoch": 3, "weights": {"a": torch.zeros(1)}}, "looked for under state_dict, model_state_dict, model"),
    ],
)
def test_what_weights_only_reads_but_is_no_state_dict_is_refused_by_name(obj, message):
    with pytest.raises(ValueError, match=message):
        imported_weights(torch_file(obj), "pytorch")


def _zip(entries: dict[str, bytes], compression=zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


@pytest.mark.parametrize(
    "data, message",
    [
        (b"PK\x03\x04 a zip, say", "broken zip archive"),
        (_zip({"weights.bin": b"\0" * 8}), "holds 0 <name>/data.pkl"),
        (_zip({"a/data.pkl": pickle.dumps({}), "b/data.pkl": pickle.dumps({})}), "holds 2"),
        (_zip({"a/data.pkl": pickle.dumps({}) * 100}, zipfile.ZIP_DEFLATED), "a/data.pkl is compressed"),
    ],
)
def test_a_file_that_is_not_torch_save_s_is_refused_before_unpickling(data, message):
    assert weights_format(data) == "pytorch"
    with pytest.raises(ValueError, match=message):
        check_pytorch_file(data)
    with pytest.raises(ValueError, match=message):
        imported_weights(data, "pytorch")


def test_a_truncated_file_is_not_readable():
    data = torch_file(trained_net(WRN).net.state_dict(), legacy=True)
    with pytest.raises(ValueError, match="legacy file does not hold the .* elements it declares"):
        imported_weights(data[: len(data) // 2], "pytorch")
    assert weights_format(save({"w": torch.zeros(1)})) == "safetensors"
    assert weights_format(pickle.dumps({"w": 1})) == "safetensors"  # a bare pickle is not torch's: never unpickled


def test_result_resnet50_and_wrn_28_10_saved_as_published_import_strictly_with_identical_logits():
    """docs/results.md: full-size networks, saved as torchvision (the state dict alone) and
    RobustBench (a `state_dict` wrapper, DataParallel's `module.`) save them, imported through the
    path uploads take, give bit-identical logits."""
    cases = [
        (ModelSpec(arch="resnet50", in_channels=3, image_size=32, num_classes=1000), lambda sd: sd),
        (
            ModelSpec(arch="wrn28_10", in_channels=3, image_size=16, mean=[0.0] * 3, std=[1.0] * 3),
            lambda sd: {"state_dict": _module_prefixed(sd), "epoch": 100},
        ),
    ]
    for spec, publish in cases:
        source = trained_net(spec, batch=2)
        data = torch_file(publish(source.net.state_dict()))
        imported = checked_classifier(spec, imported_weights(data, weights_format(data)))
        assert sum(p.numel() for p in imported.parameters()) in (25_557_032, 36_479_194)
        x = torch.rand(2, 3, spec.image_size, spec.image_size)
        with torch.no_grad():
            assert torch.equal(imported(x), source(x))


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_cut_or_corrupted_files_fail_with_a_value_error_only(legacy):
    """Seeded mutants of a small file: each reads, or raises ValueError (a 4xx, a failed job with a
    message), never another exception."""
    import random
    import warnings

    good = torch_file({"state_dict": {"module.w": torch.zeros(4), "b": torch.ones(2, 2)}}, legacy=legacy)
    rng, outcomes = random.Random(0), {"read": 0, "refused": 0}
    for _ in range(400):
        data = bytearray(good)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        data = data[: rng.randrange(20, len(data))] if rng.random() < 0.3 else data
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                imported_weights(bytes(data), "pytorch")
            outcomes["read"] += 1
        except ValueError:
            outcomes["refused"] += 1
    assert outcomes["refused"] > 100 and outcomes["read"] > 10


def test_uploaded_names_are_quoted_safely_and_cut_in_messages():
    sd = dict(build_model(WRN).net.state_dict())
    hostile = {**sd, "a\x00b": torch.zeros(1), "k" * 1_000_000: torch.zeros(1)}
    with pytest.raises(ValueError) as refused:
        checked_classifier(WRN, imported_weights(torch_file(hostile), "pytorch"))
    message = str(refused.value)
    assert "'net.a\\x00b'" in message and "'net." + "k" * 76 + "'…" in message
    assert "\x00" not in message and len(message) < 2_000


@pytest.mark.parametrize(
    "tensor, message",
    [
        (lambda t: t.to(torch.float8_e4m3fn), "float8_e4m3fn; a floating-point tensor"),
        (lambda t: t.to_sparse(), "is a torch.sparse_coo tensor on cpu, not a plain one"),
        (lambda t: torch.full_like(t, 1e300, dtype=torch.float64), "values beyond the range of torch.float32"),
    ],
    ids=["float8", "sparse", "float64-overflowing-float32"],
)
def test_weights_of_other_kinds_or_past_float32_are_refused_by_name(tensor, message):
    sd = dict(build_model(WRN).net.state_dict())
    sd["bn1.running_var"] = tensor(sd["bn1.running_var"])
    with pytest.raises(ValueError, match=message):
        checked_classifier(WRN, imported_weights(torch_file(sd), "pytorch"))
