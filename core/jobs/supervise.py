"""A worker that survives its job. A train job runs in a child process (`core.jobs.child`, a fresh
interpreter: spawn, not fork) while the worker holds its lease and watches it: its memory (of the
child and every process under it, data-loader workers included; killed past the worker's
budget), its wall-clock time (killed and failed past its kind's limit), the lease (killed if
another worker took the job), and how it ended (exit code or signal, peak resident memory, its
last progress message). An abnormal end is recorded in the job's
`attempt_log`; the job goes back to the queue until it has ended abnormally `max_attempts` times,
then it is failed with every attempt's cause (a poison job stops taking workers down).

A job with `gpus: G > 1` runs under torchrun, which starts G ranks (each in a session of its own):
a kill reaches every process in the tree, and the ranks die with torchrun if it is killed first.
The child (or torchrun) itself dies with the worker (`core.lifetime`): a killed worker leaves no
attempt training on beside the one that takes the job over."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select

from core.contract.checkpoint import PREVIOUS
from core.jobs import rank_errors
from core.jobs.outage import STORE_AWAY, while_store_away
from core.jobs.running import finish, heartbeat
from core.lifetime import guarded
from core.settings import Settings, memory_budget, settings_env, time_limit
from core.store import jobs as store_jobs
from core.store.artifacts import ArtifactStore, record_artifact
from core.store.db import session_scope
from core.store.orm import Artifact, utcnow

log = logging.getLogger(__name__)
POLL_SECONDS = 0.25
GRACE_SECONDS = 10.0  # between SIGTERM and SIGKILL


def _rss(pid: int) -> int:
    """The process' resident memory in bytes (0 when it cannot be read)."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return 0


def _pss(pid: int) -> int:
    """The process' proportional share of resident memory in bytes (a page shared by n processes
    counts 1/n in each); its resident memory where that cannot be read."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, IndexError, ValueError):
        pass
    return _rss(pid)


def memory_used(pids: list[int], budget: int) -> int:
    """The memory of `pids` together: their resident sizes summed (cheap, read every poll), and
    where that passes `budget` their proportional shares (forked data-loader workers count the
    pages they share with their parent once, not again each)."""
    rss = sum(_rss(p) for p in pids)
    return rss if rss <= budget else sum(_pss(p) for p in pids)


def _tree(pid: int) -> list[int]:
    """`pid` and every process descended from it (torchrun and its ranks), from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        tree.append(todo.pop())
        todo.extend(children.get(tree[-1], []))
    return tree


def _signal(proc: subprocess.Popen, sig: signal.Signals, tree: bool) -> None:
    """`sig` to the child, and with `tree` to every process below it too."""
    for pid in _tree(proc.pid) if tree else [proc.pid]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _stop(proc: subprocess.Popen, tree: bool = False) -> None:
    """SIGTERM, then SIGKILL after a grace period (to the whole process tree when `tree`)."""
    if proc.poll() is None:
        _signal(proc, signal.SIGTERM, tree)
        try:
            proc.wait(GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            _signal(proc, signal.SIGKILL, tree)


def child_command(job_id: str, gpus: int, worker: str) -> list[str]:
    """The child process' command line: one interpreter, or torchrun starting `gpus` of them;
    either dies with the worker (`core.lifetime`). `worker` holds the job: the child's final
    write counts only while it still does."""
    if gpus <= 1:
        return guarded([sys.executable, "-m", "core.jobs.child", job_id, worker])
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={gpus}"]
    return guarded([*launch, "-m", "core.jobs.child", job_id, worker])


def describe_exit(returncode: int) -> tuple[str, int | None, str | None]:
    """(words, exit code, signal name) of a child's return code (negative: killed by a signal)."""
    if returncode < 0:
        sig = signal.Signals(-returncode).name
        hint = {
            "SIGKILL": " (the out-of-memory killer, the worker or an operator)",
            "SIGSEGV": " (a crash in native code)",
        }
        return f"killed by {sig}{hint.get(sig, '')}", None, sig
    return f"exited with code {returncode}", returncode, None


def _not_ours(settings: Settings, job_id: str, worker: str) -> bool:
    """Whether this worker no longer holds the running job: another worker took it over, it was
    ended meanwhile (cancelled, given up, or by the child's own final write: then the child is
    on its way out anyway) or deleted. A store that is away again answers no, and the next poll
    asks again."""
    try:
        with session_scope(settings.database_url) as s:
            job = store_jobs.get_job(s, job_id=job_id)
            return job is None or job.status != "running" or job.lease_owner != worker
    except STORE_AWAY:
        return False


def supervise(
    job_id: str,
    kind: str,
    attempt: int,
    *,
    settings: Settings,
    worker: str,
    resend: Callable[[str], None] | None = None,
    gpus: int = 1,
) -> str:
    """Run the claimed job `job_id` in a child process (`gpus` > 1: torchrun and that many) and
    deal with how it ends; returns the job's status afterwards."""
    done, lost = threading.Event(), threading.Event()
    threading.Thread(target=heartbeat, args=(job_id, settings, worker, done, lost), daemon=True).start()
    budget, limit = memory_budget(settings), time_limit(settings, kind)
    started = time.monotonic()
    env = {**os.environ, **settings_env(settings)}  # the child sees the settings the worker was given
    tree = gpus > 1
    if tree:
        rank_errors.clear(settings.work_dir / job_id)  # an earlier attempt's
    proc = subprocess.Popen(child_command(job_id, gpus, worker), env=env)
    peak, cause, timed_out, usage_peak = 0, None, False, 0
    try:
        while proc.returncode is None:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                proc.returncode, usage_peak = os.waitstatus_to_exitcode(status), usage.ru_maxrss * 1024
                break
            rss = memory_used(_tree(proc.pid), budget)  # with its ranks and data loader workers
            peak = max(peak, rss)
            if rss > budget and cause is None:
                cause = f"used {rss / 2**30:.2f} GiB, past the worker's memory budget of {budget / 2**30:.2f} GiB"
                _signal(proc, signal.SIGKILL, tree)
            elif time.monotonic() - started > limit and cause is None:
                cause, timed_out = f"timed out after {limit:g} s (the limit for {kind})", True
                _stop(proc, tree)
            elif lost.is_set() and _not_ours(settings, job_id, worker):
                _stop(proc, tree)
            time.sleep(POLL_SECONDS)
    finally:
        done.set()
        if proc.returncode is None:  # leaving on an error: no child (nor rank) outlives its watch
            _signal(proc, signal.SIGKILL, tree)
            proc.wait()
    peak = max(peak, usage_peak)
    words, code, sig = describe_exit(proc.returncode)
    entry = {
        "attempt": attempt,
        "worker": worker,
        "at": utcnow().isoformat(),
        "exit_code": code,
        "signal": sig,
        "peak_rss_mb": round(peak / 2**20),
        "seconds": round(time.monotonic() - started, 1),
    }
    # a follower rank's own error fails the job like rank 0's would (rank 0 could not write it)
    follower_error = rank_errors.first(settings.work_dir / job_id) if tree and cause is None and code else None
    why = cause or follower_error or words
    outcome, give_up = while_store_away(
        settings.outage_seconds,
        f"job {job_id}'s attempt record",
        lambda: _record_end(settings, job_id, worker, entry, why, peak, fatal=timed_out or bool(follower_error)),
    )
    if give_up is not None:
        finish(settings, job_id, "failed", None, give_up, worker)
        return "failed"
    if outcome == "queued" and resend is not None:
        try:
            resend(job_id)
        except Exception:  # the broker is away: the workers' re-enqueue loop sends it later
            log.warning("job %s: could not put it back on its queue now", job_id, exc_info=True)
    return outcome


def _record_end(
    settings: Settings, job_id: str, worker: str, entry: dict, why: str, peak: int, *, fatal: bool
) -> tuple[str, str | None]:
    """Record how the child ended in the job's attempt log and decide what comes next: (the job's
    status now, the error to fail it with or None). `fatal`: fail the job now (its time limit, an
    error of a follower rank), its last checkpoint kept. One transaction, safe to run again."""
    with session_scope(settings.database_url) as s:
        job = store_jobs.get_job(s, job_id=job_id)
        if job is None:  # deleted meanwhile
            return "missing", None
        if job.status == "running" and job.lease_owner != worker:
            return "running", None  # another worker holds the job now
        entry = {**entry, "last_message": job.message}
        if job.status != "running":  # it wrote its own end
            store_jobs.record_attempt(s, job_id=job_id, entry={**entry, "cause": "finished"})
            return job.status, None
        entry["cause"] = f"{why}; peak memory {peak / 2**20:.0f} MiB; last message: {job.message!r}"
        store_jobs.record_attempt(s, job_id=job_id, entry=entry)
        log.warning("job %s, attempt %d: %s", job_id, entry["attempt"], entry["cause"])
        if fatal:
            _keep_checkpoint(s, settings, job_id)
            return "failed", f"{why}; its last checkpoint is kept"
        if entry["attempt"] >= settings.max_attempts:
            return "failed", poison_message(job)
        return ("queued" if store_jobs.requeue(s, job_id=job_id) else "cancelled"), None


def poison_message(job, ended: int | None = None) -> str:
    """Why a job is given up: each of its first `ended` attempts' causes (default: all so far)."""
    causes = store_jobs.attempt_causes(job)[:ended]
    lines = "; ".join(f"attempt {i}: {c}" for i, c in enumerate(causes, 1))
    return f"gave up after {len(causes)} abnormal ends (ROBUSTLAB_MAX_ATTEMPTS): {lines}"


def _keep_checkpoint(session, settings: Settings, job_id: str) -> None:
    """Make the job's last checkpoint downloadable (artifact rows for the files its training
    copied to the store each epoch)."""
    store = ArtifactStore(settings.artifact_url)
    prefix = f"jobs/{job_id}/checkpoint/"
    recorded = set(session.scalars(select(Artifact.uri).where(Artifact.job_id == job_id)).all())
    for key in store.all_keys():
        hidden = key.rsplit("/", 1)[-1].startswith(".")  # an upload's temporary file
        if key.startswith(prefix) and f"/{PREVIOUS}/" not in key and not hidden and key not in recorded:
            record_artifact(session, store, key=key, data=store.get_bytes(key), type="checkpoint", job_id=job_id)
