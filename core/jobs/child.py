"""`python -m core.jobs.child JOB_ID`: the process one supervised job runs in. Its worker claimed
the job, holds its lease and watches this process; if the job crashes it (an out-of-memory kill, a
segfault in a native op), only this process dies. Settings come from the environment, as the
worker's do."""

from __future__ import annotations

import logging
import sys

from core.contract.progress import Progress
from core.jobs.faults import maybe_fail
from core.jobs.model_cache import ModelCache
from core.jobs.outage import while_store_away
from core.jobs.running import finish, make_context, run_claimed
from core.settings import get_settings
from core.store import jobs as store_jobs
from core.store.db import session_scope

log = logging.getLogger("robustlab.child")


def main(argv: list[str] | None = None) -> int:
    (job_id,) = argv if argv is not None else sys.argv[1:]
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s: %(levelname)s/child] %(message)s")
    settings = get_settings()

    def read_job() -> tuple[str, dict, str | None]:
        with session_scope(settings.database_url) as s:
            job = store_jobs.get_job(s, job_id=job_id)
            return job.kind, job.spec, job.owner_id

    kind, raw_spec, owner_id = while_store_away(settings.outage_seconds, f"job {job_id}'s spec", read_job)
    maybe_fail(settings.fault_dir, job_id, "start")
    ctx = make_context(job_id, owner_id, settings, ModelCache(settings.model_cache_size))
    report = ctx.progress

    def progress(p: Progress) -> None:
        report(p)
        if p.metrics and p.step is not None:
            maybe_fail(settings.fault_dir, job_id, f"epoch:{p.step}")

    ctx.progress = progress  # the injected faults' epoch points (a no-op unless a test set a fault)
    status, result, error = run_claimed(ctx, kind, raw_spec)
    maybe_fail(settings.fault_dir, job_id, "finish")
    finish(settings, job_id, status, result, error)
    return 0


if __name__ == "__main__":
    sys.exit(main())
