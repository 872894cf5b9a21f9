"""A store outage seen from inside a job: metrics wait in the job and are written in order once
the store answers; writes are retried only for connection-level errors, and not forever."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from core.contract.progress import Progress
from core.jobs import context as context_module
from core.jobs.context import JobContext
from core.jobs.outage import while_store_away

AWAY = OperationalError("SELECT 1", {}, Exception("connection refused"))


class FlakyStore:
    """A session factory that fails while `away` and records what the store was asked to write."""

    def __init__(self):
        self.away = False
        self.metrics: list[int] = []
        self.progress: list[float] = []

    @contextmanager
    def session(self):
        if self.away:
            raise AWAY
        yield self


@pytest.fixture
def job(monkeypatch, tmp_path):
    store = FlakyStore()
    monkeypatch.setattr(context_module.store_jobs, "report_progress", lambda s, **kw: s.progress.append(kw["fraction"]))
    monkeypatch.setattr(context_module.store_jobs, "add_metrics", lambda s, **kw: s.metrics.append(kw["step"]))
    monkeypatch.setattr(context_module.store_jobs, "cancel_requested", lambda s, **kw: False)
    ctx = JobContext(job_id="j", session=store.session, store=None, work_dir=Path(tmp_path), models=None, device="cpu")
    return ctx, store


def test_metrics_reported_while_the_store_is_away_are_written_in_order_when_it_is_back(job):
    ctx, store = job
    ctx.progress(Progress(0.1, step=1, metrics={"loss": 1.0}))
    store.away = True
    ctx.progress(Progress(0.2, step=2, metrics={"loss": 0.9}))  # does not raise: the job trains on
    ctx.progress(Progress(0.3, step=3, metrics={"loss": 0.8}))
    assert not ctx.should_stop()  # nor does the cancel check
    assert store.metrics == [1]
    store.away = False
    ctx.progress(Progress(0.4, step=4, metrics={"loss": 0.7}))
    assert store.metrics == [1, 2, 3, 4] and store.progress[-1] == 0.4
    ctx.progress(Progress(0.5, step=5, metrics={"loss": 0.6}))
    assert store.metrics == [1, 2, 3, 4, 5]  # each once


def test_a_write_is_retried_while_the_store_is_away_then_lands(monkeypatch):
    monkeypatch.setattr("core.jobs.outage.time.sleep", lambda s: None)
    calls = []

    def write():
        calls.append(1)
        if len(calls) < 3:
            raise AWAY
        return "written"

    assert while_store_away(60, "test", write) == "written" and len(calls) == 3


def test_a_write_gives_up_after_the_outage_allowance_and_never_retries_a_real_error(monkeypatch):
    clock = iter(range(0, 10_000, 10))
    monkeypatch.setattr("core.jobs.outage.time.monotonic", lambda: next(clock))
    monkeypatch.setattr("core.jobs.outage.time.sleep", lambda s: None)
    with pytest.raises(OperationalError):
        while_store_away(30, "test", lambda: (_ for _ in ()).throw(AWAY))
    calls = []

    def conflict():
        calls.append(1)
        raise IntegrityError("INSERT", {}, Exception("duplicate"))

    with pytest.raises(IntegrityError):
        while_store_away(30, "test", conflict)
    assert calls == [1]


def test_a_runner_whose_own_writes_hit_an_outage_runs_again_then_gives_up_after_the_allowance(monkeypatch):
    import threading
    from types import SimpleNamespace

    from core.jobs import running

    calls, away_for = [], [1]

    def runner(spec, ctx):
        calls.append(1)
        if len(calls) <= away_for[0]:
            raise AWAY
        return {"ok": True}

    row = SimpleNamespace(resolve_runner=lambda: runner, spec=SimpleNamespace(model_validate=lambda raw: raw))
    monkeypatch.setattr(running, "job_kind", lambda kind: row)
    monkeypatch.setattr(running.time, "sleep", lambda s: None)
    ctx = SimpleNamespace(job_id="j", outage_seconds=60, lease_lost=threading.Event())
    assert running.run_claimed(ctx, "k", {}) == ("succeeded", {"ok": True}, None) and len(calls) == 2
    calls.clear()
    away_for[0], ctx.outage_seconds = 10**9, 0.05
    status, result, error = running.run_claimed(ctx, "k", {})
    assert (status, result) == ("failed", None) and "stayed away for over 0.05 s" in error.text and not error.type
