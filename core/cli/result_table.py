"""What a command prints when it is done: a short table for a person, or with `--json` the result
as JSON for scripts (exactly what the commands printed before the table).

The table is one for every command: its rows are the result's own fields, the ones a person looks
for first (clean and robust accuracy, the protocol, each attack's share, the warnings, the model
and where its checkpoint is) on top, accuracies in per cent with one decimal, other numbers to four
significant digits; what another row already says (the protocol's fields, said by its label) and
what is too long for a terminal (the spec, the history, the per-point record) is left to `--json`.
"""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

FIRST = (
    "id",
    "status",
    "error",
    "clean_acc",
    "robust_acc",
    "protocol_label",
    "breakdown",
    "curve",
    "warnings",
    "model_id",
    "checkpoint",
    "checkpoint_artifact_id",
)
LEFT_OUT = frozenset(
    {"protocol", "eps", "norm", "images", "spec", "history", "sanity", "checks", "broken_by", "predictions", "radii"}
)
LABELS = {
    "clean_acc": "clean",
    "robust_acc": "robust",
    "protocol_label": "protocol",
    "model_id": "model id",
    "checkpoint_artifact_id": "checkpoint",
    "final": "per-epoch check",  # the last epoch's monitor, not the protocol's number
    "chosen": "weights chosen",
}
LONGEST_LIST = 4  # a longer list is shown by its length


def add_json_flag(parser) -> None:
    parser.add_argument("--json", action="store_true", help="print the result as JSON, for scripts (default: a table)")


def print_result(
    doc: dict, args, *, indent: int | None = 1, also: dict | None = None, file: TextIO | None = None
) -> None:
    """`doc` as JSON (`json.dumps(doc, indent=indent)`) with `--json`, else as `result_table`, with
    the table-only rows `also` (what the command knows beside its result: the folder it read)."""
    text = json.dumps(doc, indent=indent) if args.json else result_table({**doc, **(also or {})})
    print(text, file=file or sys.stdout)


def result_table(doc: dict) -> str:
    """The rows of `doc` (a job's `result` is spread among its job's fields), two aligned columns."""
    fields = {**(doc.get("result") or {}), **{k: v for k, v in doc.items() if k != "result"}}
    order = [k for k in FIRST if k in fields] + [k for k in fields if k not in FIRST]
    rows = [(LABELS.get(k, k.replace("_", " ")), _lines(k, fields[k])) for k in order if _shown(k, fields[k])]
    width = max((len(label) for label, _ in rows), default=0)
    out = []
    for label, lines in rows:
        out.append(f"{label:<{width}}  {lines[0]}")
        out.extend(f"{'':<{width}}  {line}" for line in lines[1:])
    return "\n".join(out)


def _shown(key: str, value: Any) -> bool:
    """Whether a row is worth a line: not left out, not empty, and not a URL the API added beside an
    artifact id (the id's own row shows it)."""
    url = key.endswith(("_url", "_urls"))
    return key not in LEFT_OUT and not url and value is not None and (value != [] or key == "warnings")


def _lines(key: str, value: Any) -> list[str]:
    if key == "breakdown":  # each attack of the ensemble, in the order it ran
        width = max(len(row["attack"]) for row in value)
        return [f"{row['attack']:<{width}}  {row['robust_acc']:6.1%}  ({row['broken']} broken)" for row in value]
    if key == "curve" and value and "radius" in value[0]:  # a certification: certified (and empirical) per radius
        return [_radius_point(point) for point in value]
    if key == "curve":
        return [" · ".join(f"ε {point['eps']:g}: {point['robust_acc']:.1%}" for point in value)]
    if key == "warnings":
        return list(value) or ["none"]
    if key.endswith("_artifact_id"):
        return [f"/v1/artifacts/{value}"]
    return [_cell(key, value)]


def _radius_point(point: dict) -> str:
    empirical = point.get("empirical_acc")
    beside = f"  (empirical {empirical:.1%})" if empirical is not None else ""
    return f"r {point['radius']:g}: {point['certified_acc']:.1%} certified{beside}"


def _cell(key: str, value: Any, accuracy: bool = False) -> str:
    """One value on one line: a dict as `name value · ...`, a long list by its length."""
    accuracy = accuracy or "acc" in key.split("_")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.1%}" if accuracy else f"{value:.4g}"
    if isinstance(value, dict):
        shown = {k: v for k, v in value.items() if _shown(k, v)}
        return " · ".join(f"{LABELS.get(k, k.replace('_', ' '))} {_cell(k, v, accuracy)}" for k, v in shown.items())
    if isinstance(value, list):
        if len(value) > LONGEST_LIST or any(isinstance(v, dict | list) for v in value):
            return f"{len(value)} items"
        return ", ".join(_cell(key, v, accuracy) for v in value)
    return str(value)
