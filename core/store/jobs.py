"""Job store functions (keyword-only). Each takes a session; the caller owns the transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, delete, func, select, true, update
from sqlalchemy.orm import Session

from core.contract.kinds import job_kind
from core.contract.names import FINISHED
from core.store.orm import Job, MetricPoint, utcnow
from core.store.pages import filtered_page


def create_job(
    session: Session,
    *,
    kind: str,
    spec: dict,
    owner: str | None = None,
    owner_id: str | None = None,
    study_id: str | None = None,
) -> Job:
    """A queued job of `kind`; `owner` is the owning user's name (for display), `owner_id` its id.
    It is private when it reads or makes private data (`core.store.privacy`)."""
    from core.store.privacy import spec_is_private  # privacy reads jobs' rows: imported when used

    job = Job(
        kind=kind,
        spec=spec,
        owner=owner,
        owner_id=owner_id,
        study_id=study_id,
        private=spec_is_private(session, kind, spec),
        queue=job_kind(kind).queue,
        status="queued",
        enqueued_at=utcnow(),
    )
    session.add(job)
    session.flush()
    return job


def get_job(session: Session, *, job_id: str) -> Job | None:
    return session.get(Job, job_id)


def list_jobs(
    session: Session,
    *,
    status: str | None = None,
    kind: str | None = None,
    study_id: str | None = None,
    limit: int = 50,
    offset: int = 0,
    where=None,
) -> tuple[list[Job], int]:
    """A page of jobs, newest first, and the total count matching the filters (and `where`, an
    SQL condition such as what a caller may see)."""
    filters = {Job.status: status, Job.kind: kind, Job.study_id: study_id}
    return filtered_page(session, Job, filters, limit=limit, offset=offset, where=where)


def claim_job(session: Session, *, job_id: str, worker: str, lease_seconds: float) -> Job | None:
    """Take the job's lease if it is queued, or running under an expired lease; else None.

    The conditional UPDATE is the lock: of two workers delivered the same job, one wins.
    """
    now = utcnow()
    claimable = (Job.status == "queued") | ((Job.status == "running") & (Job.lease_expires_at < now))
    result = session.execute(
        update(Job)
        .execution_options(synchronize_session=False)  # no evaluation against loaded rows: refreshed below
        .where(Job.id == job_id, claimable, Job.cancel_requested.is_(False))
        .values(
            status="running",
            lease_owner=worker,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            started_at=func.coalesce(Job.started_at, now),
            claimed_at=now,
            attempts=Job.attempts + 1,
            updated_at=now,
        )
    )
    if result.rowcount != 1:
        return None
    session.flush()
    job = session.get(Job, job_id)
    session.refresh(job)
    return job


def waiting_for_devices(asked: int, largest: int) -> str:
    """The message of a job that no train worker can run yet (`largest`: the most devices a live
    train worker has)."""
    if largest >= asked:
        return f"waiting for a train worker with {asked} devices (gpus: {asked}): those that have them are busy"
    return (
        f"waiting for a train worker with {asked} devices (gpus: {asked}); the largest one seen has {largest}: "
        "start one with ROBUSTLAB_DEVICES (docs/deploy.md) or ask for fewer"
    )


def devices_asked(job: Job) -> int:
    """The devices (processes) a job's spec asks for: its `gpus`, 1 when it names none."""
    gpus = (job.spec or {}).get("gpus", 1)
    return gpus if isinstance(gpus, int) and gpus >= 1 else 1


def fair_order(
    session: Session, *, queue: str, running_limit: int, devices: int | None = None, largest: int = 0
) -> list[str]:
    """The queued jobs of `queue` in the order the lab's users should be served: only users with
    fewer than `running_limit` jobs running; of those, the fewest running first, then the one
    served longest ago (its latest claim), then each user's oldest job. So one user's long study
    interleaves with everyone else's jobs instead of holding the workers until it is done.
    With `devices`, only the jobs asking for at most that many (the others wait, with a message
    that says why: `largest` is the most devices any live worker of the queue announced)."""
    running = dict(
        session.execute(
            select(Job.owner_id, func.count()).where(Job.queue == queue, Job.status == "running").group_by(Job.owner_id)
        ).all()
    )
    served = dict(
        session.execute(
            select(Job.owner_id, func.max(Job.claimed_at)).where(Job.queue == queue).group_by(Job.owner_id)
        ).all()
    )
    queued = session.scalars(
        select(Job)
        .where(Job.queue == queue, Job.status == "queued", Job.cancel_requested.is_(False))
        .order_by(Job.created_at)
        .limit(1000)
    ).all()
    if devices is not None:
        too_big = [q for q in queued if devices_asked(q) > devices]
        for job in too_big:
            if job.message != (message := waiting_for_devices(devices_asked(job), max(devices, largest))):
                job.message = message
        queued = [q for q in queued if devices_asked(q) <= devices]
    never = datetime.min.replace(tzinfo=UTC)
    waiting = [q for q in queued if running.get(q.owner_id, 0) < running_limit]
    waiting.sort(
        key=lambda q: (running.get(q.owner_id, 0), _aware(served.get(q.owner_id)) or never, _aware(q.created_at))
    )
    return [q.id for q in waiting]


def claim_fairly(
    session: Session,
    *,
    delivered: str,
    queue: str,
    worker: str,
    lease_seconds: float,
    running_limit: int,
    devices: int | None = None,
    largest: int = 0,
) -> Job | None:
    """The job a worker delivered `delivered` should run: that job itself when it is a crashed
    run to resume (running under an expired lease), else the fairest queued job of `queue`
    (`fair_order`), which may be another one: a delivery is a turn, and every queued job has one
    coming. None when nothing may run now (the re-enqueue loop delivers the skipped jobs again)."""
    resumed = session.get(Job, delivered)
    if resumed is not None and resumed.status == "running":
        if devices is not None and devices_asked(resumed) > devices:
            return None  # a worker with enough devices resumes it
        return claim_job(session, job_id=delivered, worker=worker, lease_seconds=lease_seconds)
    for job_id in fair_order(session, queue=queue, running_limit=running_limit, devices=devices, largest=largest):
        job = claim_job(session, job_id=job_id, worker=worker, lease_seconds=lease_seconds)
        if job is not None:
            return job
    return None


def _aware(t: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes for timezone-aware columns: they are UTC."""
    return t if t is None or t.tzinfo else t.replace(tzinfo=UTC)


def heartbeat(session: Session, *, job_id: str, worker: str, lease_seconds: float) -> bool:
    """Extend the lease; False if this worker no longer holds it."""
    now = utcnow()
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.lease_owner == worker, Job.status == "running")
        .values(lease_expires_at=now + timedelta(seconds=lease_seconds))
    )
    return result.rowcount == 1


def report_progress(session: Session, *, job_id: str, fraction: float, message: str) -> None:
    session.execute(update(Job).where(Job.id == job_id).values(progress=fraction, message=message[:500]))


def add_metrics(session: Session, *, job_id: str, step: int, metrics: dict[str, float]) -> None:
    """A step's metrics, replacing any written before for that step (a write repeated after an
    outage, or a resumed run reporting a step again, leaves each metric once)."""
    names = list(metrics)
    session.execute(
        delete(MetricPoint).where(MetricPoint.job_id == job_id, MetricPoint.step == step, MetricPoint.name.in_(names))
    )
    session.add_all(MetricPoint(job_id=job_id, step=step, name=k, value=float(v)) for k, v in metrics.items())


def get_metrics(session: Session, *, job_id: str) -> list[MetricPoint]:
    query = select(MetricPoint).where(MetricPoint.job_id == job_id).order_by(MetricPoint.step, MetricPoint.id)
    return list(session.scalars(query).all())


@dataclass(frozen=True)
class Failure:
    """Why a job failed: the type of the exception its runner raised (None for an end without
    one: the store away, a crash, a kill, a time limit) and its message."""

    type: str | None
    message: str

    @classmethod
    def of(cls, e: BaseException) -> Failure:
        return cls(type(e).__name__, str(e))

    @property
    def text(self) -> str:
        """What `jobs.error` holds: `Type: message`."""
        return f"{self.type}: {self.message}" if self.type else self.message


ERROR_CHARS = 4_000  # a job's error is a message, not a dump: one naming an uploaded file's 10⁶ names is cut


def storable_error(text: str) -> str:
    """`text` as `jobs.error` keeps it: without NUL characters (PostgreSQL's text refuses them, and
    a message may quote an uploaded name) and cut to `ERROR_CHARS`."""
    text = text.replace("\x00", "\\0")
    return text if len(text) <= ERROR_CHARS else text[: ERROR_CHARS - 20] + " … (message cut)"


def finish_job(
    session: Session,
    *,
    job_id: str,
    status: str,
    result: dict | None = None,
    error: str | Failure | None = None,
    worker: str | None = None,
) -> bool:
    """The job's final write; with `worker`, only while that worker holds the running job (one whose
    lease passed to another worker, or that was ended meanwhile, is left as it is). Returns whether
    it was written."""
    if status not in FINISHED:
        raise ValueError(f"finish_job needs a final status {FINISHED}, got {status!r}")
    failure = error if isinstance(error, Failure) else None
    values = {
        "status": status,
        "result": result,
        "error": storable_error(failure.text if failure else error) if error is not None else None,
        "error_type": failure.type if failure else None,
        "finished_at": utcnow(),
        "lease_owner": None,
        "lease_expires_at": None,
    }
    if status == "succeeded":
        values["progress"] = 1.0
    held = (Job.lease_owner == worker) & (Job.status == "running") if worker is not None else true()
    return session.execute(update(Job).where(Job.id == job_id, held).values(**values)).rowcount == 1


def record_attempt(session: Session, *, job_id: str, entry: dict) -> None:
    """Append how a supervised attempt ended to the job's `attempt_log`."""
    job = session.get(Job, job_id)
    job.attempt_log = [*(job.attempt_log or []), entry]  # a new list: the JSON column sees the change
    session.flush()


def requeue(session: Session, *, job_id: str) -> bool:
    """Put a running job whose attempt ended abnormally back in the queue (its checkpoint stays);
    False when it is no longer running (cancelled meanwhile, say) or its owner asked it to stop:
    such a job ends cancelled here, since no worker would claim it again."""
    result = session.execute(
        update(Job)
        .execution_options(synchronize_session=False)
        .where(Job.id == job_id, Job.status == "running", Job.cancel_requested.is_(False))
        .values(status="queued", lease_owner=None, lease_expires_at=None, enqueued_at=utcnow())
    )
    if result.rowcount == 1:
        return True
    _end_cancelled(session, (Job.id == job_id) & (Job.status == "running") & Job.cancel_requested.is_(True))
    return False


def attempt_causes(job: Job) -> list[str]:
    """One line per attempt so far: how it ended, or that the worker died without a trace."""
    logged = {e.get("attempt"): e for e in job.attempt_log or []}
    return [
        logged[i]["cause"] if i in logged else "the worker died without recording a cause"
        for i in range(1, job.attempts + 1)
    ]


def request_cancel(session: Session, *, job_id: str) -> Job | None:
    """Cancel a queued job at once, and a running one whose worker is gone (its lease expired); ask
    a running one to stop (its worker sees the flag)."""
    job = session.get(Job, job_id)
    if job is None or job.status in FINISHED:
        return job
    job.cancel_requested = True
    session.flush()
    _end_cancelled(session, (Job.id == job_id) & _abandoned(utcnow()))
    session.refresh(job)
    return job


def _abandoned(now) -> ColumnElement[bool]:
    """Jobs no worker runs: queued ones, and running ones whose lease expired."""
    return (Job.status == "queued") | ((Job.status == "running") & (Job.lease_expires_at < now))


def _end_cancelled(session: Session, where: ColumnElement[bool]) -> list[str]:
    """End as cancelled the unfinished jobs matching `where`; their ids."""
    ids = list(session.scalars(select(Job.id).where(where, Job.status.not_in(FINISHED))).all())
    if ids:
        now = utcnow()
        session.execute(
            update(Job)
            .execution_options(synchronize_session=False)
            .where(Job.id.in_(ids))
            .values(status="cancelled", finished_at=now, updated_at=now, lease_owner=None, lease_expires_at=None)
        )
    return ids


def end_abandoned_cancels(session: Session) -> list[str]:
    """End as cancelled every job asked to stop that no worker will finish: still queued, or
    running under an expired lease (its worker died before it saw the flag); their ids."""
    return _end_cancelled(session, Job.cancel_requested.is_(True) & _abandoned(utcnow()))


def cancel_requested(session: Session, *, job_id: str) -> bool:
    """Whether the job's owner asked it to stop; True for a job deleted meanwhile."""
    asked = session.scalar(select(Job.cancel_requested).where(Job.id == job_id))
    return asked is None or bool(asked)


def jobs_to_reenqueue(session: Session, *, queued_before_seconds: float) -> list[Job]:
    """Queued jobs older than the grace period, and running jobs whose lease has expired."""
    now = utcnow()
    not_sent_lately = Job.enqueued_at < now - timedelta(seconds=queued_before_seconds)
    stale = (Job.status == "queued") & not_sent_lately
    orphaned = (Job.status == "running") & (Job.lease_expires_at < now) & not_sent_lately
    return list(session.scalars(select(Job).where(stale | orphaned, Job.cancel_requested.is_(False))).all())


def count_by_status(session: Session) -> dict[str, int]:
    return dict(session.execute(select(Job.status, func.count()).group_by(Job.status)).all())
