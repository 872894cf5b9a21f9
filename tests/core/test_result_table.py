"""The table a command prints for a person, and the JSON it prints for scripts with --json."""

from __future__ import annotations

import json
import re
from argparse import Namespace
from pathlib import Path

from core.cli.result_table import print_result, result_table

EVALUATION = Path(__file__).resolve().parents[2] / "docs" / "data" / "fmnist-pgdat-relu-e5" / "eval-standard.json"
FLOAT_NOISE = re.compile(r"\d\.\d{5,}")


def rows(table: str) -> dict[str, str]:
    """Each row's label and value (continuation lines, indented, are left out)."""
    return dict(re.split(r"\s{2,}", line, maxsplit=1) for line in table.splitlines() if not line.startswith(" "))


def test_an_evaluation_is_its_headline_its_protocol_and_each_attack_in_per_cent():
    result = json.loads(EVALUATION.read_text())  # a real `robustlab evaluate --out` file
    table = result_table({**result, "checkpoint": "runs/fmnist-pgdat-relu-e5"})
    lines = table.splitlines()
    assert rows(table)["clean"] == "80.4%" and rows(table)["robust"] == "66.9%"  # 0.8040000200271606, 0.669...
    assert rows(table)["protocol"] == result["protocol_label"]
    assert lines[3:6] == [
        "breakdown   apgd-ce100-linf   67.9%  (125 broken)",
        "            apgd-t100-linf    67.2%  (7 broken)",
        "            square5000-linf   66.9%  (3 broken)",
    ]
    assert rows(table)["warnings"] == result["warnings"][0] and rows(table)["checkpoint"] == "runs/fmnist-pgdat-relu-e5"
    assert not {"spec", "broken by", "sanity", "checks", "eps"} & set(rows(table))  # in --json and --out
    assert len(lines) <= 12 and not FLOAT_NOISE.search(table)


def test_a_watched_training_job_names_its_model_and_where_its_weights_are():
    job = {
        "id": "j1",
        "status": "succeeded",
        "result": {
            "model_id": "m1",
            "checkpoint_artifact_id": "a1",
            "final": {"epoch": 5, "train_loss": 0.52345678, "clean_acc": 0.777999997138977, "robust_acc": 0.6120000123},
            "clean_acc": 0.7760000228881836,
            "robust_acc": 0.5820000171661377,
            "eps": 0.1,
            "protocol_label": "standard (apgd-ce100, apgd-t100, fab-t100, square5000), L∞ ε=0.1, 1000 images, seed 0",
            "chosen": None,
        },
        "error": None,
    }
    shown = rows(result_table(job))
    assert list(shown) == ["id", "status", "clean", "robust", "protocol", "model id", "checkpoint", "per-epoch check"]
    assert shown["clean"] == "77.6%" and shown["robust"] == "58.2%" and shown["model id"] == "m1"
    assert shown["checkpoint"] == "/v1/artifacts/a1"
    assert shown["per-epoch check"] == "epoch 5 · train loss 0.5235 · clean 77.8% · robust 61.2%"


def test_a_failed_job_shows_its_error_and_an_empty_warning_list_says_none():
    assert rows(result_table({"id": "j2", "status": "failed", "result": None, "error": "ValueError: bad"})) == {
        "id": "j2",
        "status": "failed",
        "error": "ValueError: bad",
    }
    assert rows(result_table({"clean_acc": 1.0, "warnings": [], "keys": list("abcdef"), "migrated": True})) == {
        "clean": "100.0%",
        "warnings": "none",
        "keys": "6 items",
        "migrated": "yes",
    }


def test_json_prints_the_result_as_the_commands_always_did(capsys):
    doc = {"status": "succeeded", "final": {"clean_acc": 0.777999997138977}, "chosen": None}
    print_result(doc, Namespace(json=True))
    assert capsys.readouterr().out == json.dumps(doc, indent=1) + "\n"
    print_result(doc, Namespace(json=True), indent=None, also={"checkpoint": "runs/x"})  # `also`: the table's only
    assert capsys.readouterr().out == json.dumps(doc) + "\n"
    print_result(doc, Namespace(json=False), also={"checkpoint": "runs/x"})
    table = rows(capsys.readouterr().out)
    assert table == {"status": "succeeded", "checkpoint": "runs/x", "per-epoch check": "clean 77.8%"}
