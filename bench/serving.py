"""A real stack for the request benchmarks: embedded Redis, a temporary SQLite store, uvicorn and
one interactive worker; checkpoints imported into its registry; requests timed end to end."""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from scripts.stack import Stack, free_port


@contextmanager
def serving_stack() -> Iterator[tuple[Stack, httpx.Client]]:
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(
            Path(tmp),
            api_port=free_port(),
            with_dashboard=False,
            embedded_redis=True,
            extra_env={"DATABASE_URL": None, "REDIS_URL": None, "ARTIFACT_URL": None},
        )
        try:
            stack.start(train_workers=0)
            stack.wait_for_workers(1)
            with httpx.Client(
                base_url=stack.api_url, headers={"Authorization": f"Bearer {stack.key}"}, timeout=120
            ) as client:
                yield stack, client
        finally:
            stack.stop()


def import_into(stack: Stack, folder: Path, name: str = "bench") -> str:
    """Register a checkpoint folder in the stack's registry; returns the model id."""
    from core.settings import settings_from_env
    from core.store.artifacts import ArtifactStore
    from core.store.db import session_scope
    from core.store.imports import import_checkpoint

    settings = settings_from_env(stack.env)
    with session_scope(settings.database_url) as s:
        return import_checkpoint(s, ArtifactStore(settings.artifact_url), folder, name=name).id


def time_requests(
    send: Callable[[], httpx.Response], requests: int, warmup: int
) -> tuple[list[float], list[int], dict]:
    """Milliseconds per request after `warmup` untimed ones, the status codes, the last answer."""
    times, statuses = [], []
    for i in range(warmup + requests):
        t0 = time.perf_counter()
        r = send()
        elapsed = (time.perf_counter() - t0) * 1000
        if i >= warmup:  # the first requests load the model and warm up
            times.append(elapsed)
            statuses.append(r.status_code)
    return times, statuses, r.json()


def latency_table(times: list[float], statuses: list[int]) -> str:
    q = statistics.quantiles(times, n=100) if len(times) > 1 else [times[0]] * 99
    return (
        f"| p50 ms | p90 ms | p99 ms | mean ms | 200 responses |\n|---|---|---|---|---|\n"
        f"| {statistics.median(times):.0f} | {q[89]:.0f} | {q[98]:.0f} | {statistics.fmean(times):.0f} "
        f"| {statuses.count(200)}/{len(statuses)} |"
    )
