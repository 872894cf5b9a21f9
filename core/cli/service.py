"""`robustlab submit | jobs | watch | cancel | keys create`: the command line against the API,
through the one client (`core.contract.client.Lab`).

The API's address and key come from `--api` / `--key`, else ROBUSTLAB_API_URL / ROBUSTLAB_API_KEY,
else http://127.0.0.1:8000 and the key `make up` wrote to var/api_key.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from core.cli.result_table import add_json_flag, print_result
from core.contract.client import Lab
from core.contract.kinds import JOB_KINDS, job_kind, spec_from_preset
from core.contract.names import JOB_STATUSES


def _lab(args) -> Lab:
    return Lab.from_env(args.api, args.key)


def submission_spec(kind: str, *, spec_file: str | None, preset: str | None, model_id: str | None) -> dict:
    """The spec to submit: the JSON file as it is, else the kind's preset (its first by default),
    with `model_id` filled in when given; checked against the kind's spec model before sending.

    Raises:
        ValueError: an unknown preset, or a spec the kind's model rejects (pydantic's error).
    """
    spec = json.loads(Path(spec_file).read_text()) if spec_file else spec_from_preset(kind, preset)
    if model_id is not None:
        spec["model_id"] = model_id
    if "model_id" in job_kind(kind).spec.model_fields and not spec.get("model_id"):
        raise ValueError(f"{kind} acts on a registered model: pass --model-id (see GET /v1/models)")
    job_kind(kind).spec.model_validate(spec)
    return spec


def cmd_submit(args) -> int:
    spec = submission_spec(args.kind, spec_file=args.spec, preset=args.preset, model_id=args.model_id)
    with _lab(args) as lab:
        job = lab.submit(args.kind, spec)
        print(job.id)
        return _follow(job, args) if args.watch else 0


def _follow(job, args, interval: float = 1.0) -> int:
    """Wait for the job with a progress bar, then print its outcome; exit code 0 if it succeeded."""
    job.wait(interval=interval)
    outcome = {k: job.data[k] for k in ("id", "status", "result", "error")}
    print_result(outcome, args, also=None if args.json else headline_details(job.lab, job.data["result"]))
    return 0 if job.status == "succeeded" else 1


def headline_details(lab: Lab, result: dict | None) -> dict:
    """The breakdown and warnings of a result's headline evaluation when the registered model keeps
    them and the result only names its protocol (a training job's); {} otherwise."""
    if not result or "breakdown" in result or not {"model_id", "protocol_label"} <= set(result):
        return {}
    summary = lab.model(result["model_id"]).get("summary") or {}
    if summary.get("protocol_label") != result["protocol_label"]:
        return {}
    return {k: summary[k] for k in ("breakdown", "warnings") if k in summary}


def cmd_jobs(args) -> int:
    with _lab(args) as lab:
        page = lab.jobs(status=args.status, kind=args.kind, limit=args.limit)
    print(f"{'id':32}  {'kind':22} {'status':10} {'progress':>8}  message")
    for j in page["items"]:
        print(f"{j['id']:32}  {j['kind']:22} {j['status']:10} {100 * j['progress']:7.1f}%  {j['message'][:60]}")
    print(f"({len(page['items'])} of {page['total']})")
    return 0


def cmd_watch(args) -> int:
    with _lab(args) as lab:
        return _follow(lab.job(args.job_id), args, args.interval)


def cmd_cancel(args) -> int:
    with _lab(args) as lab:
        job = lab.job(args.job_id).cancel()
    print(f"{job.id} {job.status} (cancel requested: {job.data['cancel_requested']})")
    return 0


def cmd_keys_create(args) -> int:
    with _lab(args) as lab:
        key = lab.create_key(args.name)
    print(key["key"])
    print("Store it now: it is not shown again.", file=sys.stderr)
    return 0


def add_commands(sub) -> None:
    def with_api(p):
        p.add_argument("--api", help="API base URL (default $ROBUSTLAB_API_URL or http://127.0.0.1:8000)")
        p.add_argument("--key", help="API key (default $ROBUSTLAB_API_KEY or var/api_key)")
        return p

    kinds = "; ".join(f"{k.name} ({k.title})" for k in JOB_KINDS.values())
    s = with_api(sub.add_parser("submit", help="submit a job to the service", description=f"Job kinds: {kinds}."))
    s.add_argument("kind", choices=list(JOB_KINDS))
    s.add_argument("--spec", help="the spec as a JSON file (default: the kind's preset)")
    s.add_argument("--preset", help="one of the kind's presets (GET /v1/presets); default its first")
    s.add_argument("--model-id", help="the registered model the job acts on (evaluation, attacks, sampling)")
    s.add_argument("--watch", action="store_true", help="follow the job with a progress bar until it ends")
    add_json_flag(s)
    s.set_defaults(func=cmd_submit)
    j = with_api(sub.add_parser("jobs", help="list jobs"))
    j.add_argument("--status", choices=JOB_STATUSES)
    j.add_argument("--kind", choices=list(JOB_KINDS))
    j.add_argument("--limit", type=int, default=20)
    j.set_defaults(func=cmd_jobs)
    w = with_api(sub.add_parser("watch", help="follow a job until it finishes"))
    w.add_argument("job_id")
    w.add_argument("--interval", type=float, default=1.0)
    add_json_flag(w)
    w.set_defaults(func=cmd_watch)
    c = with_api(sub.add_parser("cancel", help="cancel a job"))
    c.add_argument("job_id")
    c.set_defaults(func=cmd_cancel)
    k = sub.add_parser("keys", help="API keys").add_subparsers(dest="keys", required=True)
    kc = with_api(k.add_parser("create", help="create an API key"))
    kc.add_argument("name")
    kc.set_defaults(func=cmd_keys_create)
