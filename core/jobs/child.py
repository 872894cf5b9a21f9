"""`python -m core.jobs.child JOB_ID WORKER`: the process one supervised job runs in. Its worker claimed
the job, holds its lease and watches this process; if the job crashes it (an out-of-memory kill, a
segfault in a native op), only this process dies. Settings come from the environment, as the
worker's do.

A job with `gpus: G > 1` runs as G of these under torchrun (`core.training.distributed`): rank 0
is the job (progress, checkpoints, evaluation, the final write); the others only train beside it
and exit when training ends. If rank 0 fails while the others may still wait in an all-reduce, it
exits non-zero so that torchrun stops them."""

from __future__ import annotations

import logging
import sys
import time

import core.training.distributed as ddp
from core.contract.kinds import job_kind
from core.contract.progress import Progress, Stopped
from core.jobs import rank_errors
from core.jobs.context import JobContext
from core.jobs.faults import maybe_fail
from core.jobs.model_cache import ModelCache
from core.jobs.outage import PASSING, while_store_away
from core.jobs.running import finish, make_context, run_claimed
from core.settings import get_settings
from core.store import jobs as store_jobs
from core.store.db import session_scope

log = logging.getLogger("robustlab.child")
PEER_GRACE_SECONDS = 5.0  # torchrun checks its ranks every 0.1 s and stops the rest when one dies


def main(argv: list[str] | None = None) -> int:
    job_id, worker = argv if argv is not None else sys.argv[1:]
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s: %(levelname)s/child] %(message)s")
    settings = get_settings()

    def read_job() -> tuple[str, dict, str | None]:
        with session_scope(settings.database_url) as s:
            job = store_jobs.get_job(s, job_id=job_id)
            return job.kind, job.spec, job.owner_id

    kind, raw_spec, owner_id = while_store_away(settings.outage_seconds, f"job {job_id}'s spec", read_job)
    distributed = ddp.start_from_env()
    ctx = make_context(job_id, owner_id, settings, ModelCache(settings.model_cache_size))
    if ddp.is_follower():
        ddp.exit_now(follow(ctx, kind, raw_spec, settings.fault_dir))
    maybe_fail(settings.fault_dir, job_id, "start")
    report = ctx.progress

    def progress(p: Progress) -> None:
        report(p)
        if p.metrics and p.step is not None:
            maybe_fail(settings.fault_dir, job_id, f"epoch:{p.step}")

    ctx.progress = progress  # the injected faults' epoch points (a no-op unless a test set a fault)
    status, result, error = run_claimed(ctx, kind, raw_spec, settings)
    broken_by_a_peer = distributed and status == "failed" and ddp.peer_failure(error.text if error else None)
    if broken_by_a_peer:  # a rank that died broke the all-reduce: torchrun stops this one too, an abnormal end
        time.sleep(PEER_GRACE_SECONDS)  # to resume from
    maybe_fail(settings.fault_dir, job_id, "finish")
    finish(settings, job_id, status, result, error, worker)  # unless the job passed to another worker
    if distributed:
        ddp.exit_now(1 if status == "failed" else 0)
    return 0


def follow(ctx: JobContext, kind: str, raw_spec: dict, fault_dir=None) -> int:
    """A follower rank's part: the runner up to the end of its training (`FollowerDone`), quiet.
    On an error of its own it leaves the error for the supervisor (`rank_errors`) and waits before
    exiting, so that rank 0, if it meets the same error, writes it as the job's failure before
    torchrun stops everyone."""
    ctx.progress = lambda p: None
    try:
        maybe_fail(fault_dir, ctx.job_id, "follower")
        job_kind(kind).resolve_runner()(job_kind(kind).spec.model_validate(raw_spec), ctx)
    except (ddp.FollowerDone, Stopped):
        return 0
    except Exception as e:
        rank, error = ddp.world()[0], f"{type(e).__name__}: {e}"
        log.exception("job %s: rank %d failed", ctx.job_id, rank)
        if fails_the_job(e):
            rank_errors.record(ctx.work_dir / ctx.job_id, rank, error)
        time.sleep(3 * PEER_GRACE_SECONDS)
        return 1
    log.error("job %s: rank %d ran past training", ctx.job_id, ddp.world()[0])
    return 1


def fails_the_job(e: Exception) -> bool:
    """Whether a follower's error is its own, to fail the job with: not a collective broken by
    another rank's death, nor the store or a disk away for a moment (those end the attempt as a
    crash to resume from, as on rank 0)."""
    return not ddp.peer_failure(f"{type(e).__name__}: {e}") and not isinstance(e, PASSING)


if __name__ == "__main__":
    sys.exit(main())
