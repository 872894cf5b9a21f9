"""Job submission throughput and latency: 32 concurrent clients POST /v1/jobs for 20 s.

Two loads: closed loop (each client sends its next job as soon as the last is answered: the
most the service can take, where latency is 32 / throughput by construction) and, with
`--rate R`, paced clients (each waits 32/R s between its jobs, so about R submissions/s
arrive): the latency a lab sees at that rate.

Starts its own stack (embedded Redis, SQLite, the API; no train worker, so the jobs stay queued
and nothing else competes for the CPU) and drives it with wrk (`apt-get install wrk`), which
costs the two cores far less than a Python load generator would.

    .venv/bin/python -m bench.api_submit [--seconds 20] [--connections 32] [--api-workers 2]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import tempfile
from pathlib import Path

from bench.common import machine
from scripts.stack import Stack, free_port

LUA = """wrk.method = "POST"
wrk.body = '{body}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {key}"
"""
PACED = """
function delay()
  return {delay_ms}
end
"""


def parse_wrk(out: str) -> dict:
    def ms(text: str) -> float:
        value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
        return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]

    pct = {p: ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.M)}
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "non_2xx": int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0,
        "p50": pct["50"],
        "p90": pct["90"],
        "p99": pct["99"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--api-workers", type=int, default=2)
    parser.add_argument("--database-url", help="default: SQLite in a temporary folder")
    parser.add_argument("--rate", type=float, help="also run paced clients offering this many submissions/s")
    args = parser.parse_args()
    body = json.dumps(
        {"kind": "adversarial_training", "spec": {"data": {"name": "digits"}, "model": {"image_size": 8}, "epochs": 1}}
    )
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(
            Path(tmp),
            api_port=free_port(),
            with_dashboard=False,
            embedded_redis=True,
            extra_env={
                "DATABASE_URL": args.database_url,
                "REDIS_URL": None,
                "ARTIFACT_URL": None,
                "ROBUSTLAB_API_WORKERS": str(args.api_workers),
            },
        )
        try:
            stack.start(train_workers=0)
            closed = Path(tmp) / "post.lua"
            closed.write_text(LUA.format(body=body, key=stack.key))
            paced = Path(tmp) / "paced.lua"
            if args.rate:
                paced.write_text(closed.read_text() + PACED.format(delay_ms=int(1000 * args.connections / args.rate)))

            def run(script: Path, secs: int) -> str:
                return subprocess.run(
                    [
                        "wrk",
                        "-t2",
                        f"-c{args.connections}",
                        f"-d{secs}s",
                        "--latency",
                        "-s",
                        str(script),
                        f"{stack.api_url}/v1/jobs",
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout

            run(closed, 3)  # warm-up
            results = {"closed loop": parse_wrk(run(closed, args.seconds))}
            if args.rate:
                results[f"paced, {args.rate:.0f}/s offered"] = parse_wrk(run(paced, args.seconds))
        finally:
            stack.stop()
    print(f"Machine: {machine()}\n")
    print(
        f"### POST /v1/jobs, {args.connections} concurrent clients, {args.seconds} s, "
        f"{args.api_workers} uvicorn worker(s), {'PostgreSQL' if args.database_url else 'SQLite'} + embedded Redis\n"
    )
    print("| load | submissions/s | p50 ms | p90 ms | p99 ms | requests | non-2xx |\n|---|---|---|---|---|---|---|")
    for load, r in results.items():
        print(
            f"| {load} | {r['rps']:.0f} | {r['p50']:.1f} | {r['p90']:.1f} | {r['p99']:.1f} | {r['requests']} "
            f"| {r['non_2xx']} |"
        )


if __name__ == "__main__":
    main()
