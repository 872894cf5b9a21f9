"""`robustlab submit | jobs | watch | cancel | keys create`: the command line against the API.

The API's address and key come from `--api` / `--key`, else ROBUSTLAB_API_URL / ROBUSTLAB_API_KEY,
else http://127.0.0.1:8000 and the key `make up` wrote to var/api_key.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import httpx

from core.presets import PRESETS, train_preset

FINISHED = ("succeeded", "failed", "cancelled")


class ApiError(Exception):
    pass


def _client(args) -> httpx.Client:
    url = args.api or os.environ.get("ROBUSTLAB_API_URL", "http://127.0.0.1:8000")
    key = args.key or os.environ.get("ROBUSTLAB_API_KEY")
    if not key and Path("var/api_key").is_file():
        key = Path("var/api_key").read_text().strip()
    if not key:
        raise ApiError("no API key: pass --key, set ROBUSTLAB_API_KEY, or run `make up` (it writes var/api_key)")
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def _call(client: httpx.Client, method: str, path: str, **kw) -> dict | list:
    try:
        r = client.request(method, path, **kw)
    except httpx.HTTPError as e:
        raise ApiError(f"cannot reach the API at {client.base_url}: {e}") from e
    if r.status_code >= 400:
        detail = r.json().get("detail") if r.headers.get("content-type", "").startswith("application/json") else r.text
        raise ApiError(f"{r.status_code}: {detail}")
    return r.json()


def cmd_submit(args) -> int:
    if args.spec:
        spec = json.loads(Path(args.spec).read_text())
    elif args.kind == "adversarial_training":
        spec = train_preset(args.preset).model_dump(mode="json")
    else:
        raise ApiError(f"{args.kind} needs --spec FILE.json")
    with _client(args) as c:
        job = _call(c, "POST", "/v1/jobs", json={"kind": args.kind, "spec": spec})
    print(job["id"])
    return 0


def cmd_jobs(args) -> int:
    params = {k: v for k, v in (("status", args.status), ("kind", args.kind), ("limit", args.limit)) if v}
    with _client(args) as c:
        page = _call(c, "GET", "/v1/jobs", params=params)
    print(f"{'id':32}  {'kind':22} {'status':10} {'progress':>8}  message")
    for j in page["items"]:
        print(f"{j['id']:32}  {j['kind']:22} {j['status']:10} {100 * j['progress']:7.1f}%  {j['message'][:60]}")
    print(f"({len(page['items'])} of {page['total']})")
    return 0


def cmd_watch(args) -> int:
    from tqdm import tqdm

    with _client(args) as c, tqdm(total=100, unit="%", desc=args.job_id[:8]) as bar:
        while True:
            job = _call(c, "GET", f"/v1/jobs/{args.job_id}")
            bar.n = round(100 * job["progress"], 1)
            bar.set_postfix_str(f"{job['status']} {job['message'][:50]}")
            bar.refresh()
            if job["status"] in FINISHED:
                break
            time.sleep(args.interval)
    print(json.dumps({k: job[k] for k in ("id", "status", "result", "error")}, indent=1))
    return 0 if job["status"] == "succeeded" else 1


def cmd_cancel(args) -> int:
    with _client(args) as c:
        job = _call(c, "POST", f"/v1/jobs/{args.job_id}/cancel")
    print(f"{job['id']} {job['status']} (cancel requested: {job['cancel_requested']})")
    return 0


def cmd_keys_create(args) -> int:
    with _client(args) as c:
        key = _call(c, "POST", "/v1/keys", json={"name": args.name})
    print(key["key"])
    print("Store it now: it is not shown again.", file=sys.stderr)
    return 0


def add_commands(sub) -> None:
    def with_api(p):
        p.add_argument("--api", help="API base URL (default $ROBUSTLAB_API_URL or http://127.0.0.1:8000)")
        p.add_argument("--key", help="API key (default $ROBUSTLAB_API_KEY or var/api_key)")
        return p

    s = with_api(sub.add_parser("submit", help="submit a job to the service"))
    s.add_argument("kind", choices=["adversarial_training", "attack_evaluation", "image_attack"])
    s.add_argument("--spec", help="the spec as a JSON file")
    s.add_argument("--preset", choices=PRESETS, default="smoke", help="adversarial_training without --spec")
    s.set_defaults(func=cmd_submit)
    j = with_api(sub.add_parser("jobs", help="list jobs"))
    j.add_argument("--status")
    j.add_argument("--kind")
    j.add_argument("--limit", type=int, default=20)
    j.set_defaults(func=cmd_jobs)
    w = with_api(sub.add_parser("watch", help="follow a job until it finishes"))
    w.add_argument("job_id")
    w.add_argument("--interval", type=float, default=1.0)
    w.set_defaults(func=cmd_watch)
    c = with_api(sub.add_parser("cancel", help="cancel a job"))
    c.add_argument("job_id")
    c.set_defaults(func=cmd_cancel)
    k = sub.add_parser("keys", help="API keys").add_subparsers(dest="keys", required=True)
    kc = with_api(k.add_parser("create", help="create an API key"))
    kc.add_argument("name")
    kc.set_defaults(func=cmd_keys_create)
