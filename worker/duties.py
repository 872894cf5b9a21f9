"""What each worker does beside its task: announce itself (its queues for /healthz, its memory
budget for the API's memory admission), re-enqueue jobs that Redis lost or whose worker died (one
worker at a time, under a Redis lock), and every hour tidy up after ended and crashed jobs
(`core.jobs.sweep`: its node's work folders; the store's unreferenced files, one worker at a time)."""

from __future__ import annotations

import logging
import threading
import time

import redis

from core.contract.kinds import TASK_NAME
from core.device import owned_devices
from core.jobs.outage import STORE_AWAY
from core.jobs.sweep import SWEEP_EVERY, sweep_work_dir
from core.settings import get_settings, memory_budget
from core.store import jobs as store_jobs
from core.store.announcements import announce, withdraw
from core.store.artifacts import ArtifactStore
from core.store.db import session_scope
from core.store.deletion import collect_garbage
from core.store.orm import utcnow

log = logging.getLogger(__name__)
RECONCILE_LOCK = "robustlab:reconcile-lock"
SWEEP_LOCK = "robustlab:sweep-lock"
ANNOUNCE_EVERY = 10.0  # seconds; shorter when leases are shorter (see _loop)
_stop = threading.Event()


def start_duties(app, queues: list[str], name: str) -> None:
    """Announce worker `name` (consuming `queues`) and reconcile lost jobs from a daemon thread."""
    _stop.clear()
    threading.Thread(target=_loop, args=(app, queues, name), daemon=True, name="robustlab-duties").start()


def stop_duties() -> None:
    _stop.set()


def _loop(app, queues: list[str], name: str) -> None:
    settings = get_settings()
    every = min(ANNOUNCE_EVERY, settings.lease_seconds)
    client = redis.Redis.from_url(settings.redis_url)
    swept = time.monotonic()  # the first sweep an hour after the start: nothing is litter sooner
    while True:
        try:
            announcement = {  # for memory admission and `gpus` jobs
                "queues": queues,
                "memory_bytes": memory_budget(settings),
                "devices": owned_devices(settings.devices),
            }
            announce(client, name, announcement, int(3 * every))
            if client.set(RECONCILE_LOCK, name, nx=True, ex=max(1, int(every))):
                reenqueue_lost_jobs(app, client, settings, grace_seconds=2 * settings.lease_seconds)
            if time.monotonic() - swept >= SWEEP_EVERY:
                swept = time.monotonic()
                sweep(settings, store_too=bool(client.set(SWEEP_LOCK, name, nx=True, ex=int(SWEEP_EVERY) - 60)))
        except (redis.ConnectionError, redis.TimeoutError, *STORE_AWAY) as e:  # away for a moment
            log.warning("worker duties: %s; again in %.0f s", e, every)
        except Exception:
            log.exception("worker duties failed; retrying")
        if _stop.wait(every):
            withdraw(client, name)
            return


def messages_in_broker(client: redis.Redis, queues: list[str], delivered_after: float) -> str:
    """Every waiting message of `queues`, and every unacknowledged one delivered after the Unix
    time `delivered_after`, as one searchable string.

    An older unacknowledged message of a job still queued belongs to a consumer that died (the
    stack stopped while the job ran, and the job was put back): Redis would hand it out again only
    after the visibility timeout (an hour), so it does not count as held.
    """
    parts = [m for q in queues for m in client.lrange(q, 0, -1)]
    recent = client.zrangebyscore("unacked_index", delivered_after, "+inf")  # kombu's delivery times
    parts += [m for m in (client.hmget("unacked", recent) if recent else []) if m is not None]
    return "\n".join(m.decode(errors="replace") for m in parts)


def sweep(settings, store_too: bool) -> None:
    """This node's work folders of ended jobs; with `store_too`, the store's unreferenced files."""
    with session_scope(settings.database_url) as s:
        sweep_work_dir(s, settings.work_dir)
        if store_too:
            collect_garbage(s, ArtifactStore(settings.artifact_url))


def reenqueue_lost_jobs(app, client: redis.Redis, settings, grace_seconds: float = 30.0) -> list[str]:
    """Send again: queued jobs the broker no longer holds, and running jobs whose lease expired;
    end those of them whose owner asked them to stop.

    A duplicate delivery is harmless: `claim_job` lets only one run.
    """
    sent = []
    with session_scope(settings.database_url) as s:
        if ended := store_jobs.end_abandoned_cancels(s):
            log.warning("cancelled %d job(s) whose worker died before it saw the stop request: %s", len(ended), ended)
        candidates = store_jobs.jobs_to_reenqueue(s, queued_before_seconds=grace_seconds)
        if not candidates:
            return sent
        held = messages_in_broker(client, sorted({j.queue for j in candidates}), time.time() - grace_seconds)
        for job in candidates:
            if job.status == "queued" and job.id in held:
                continue
            app.send_task(TASK_NAME, args=[job.id], queue=job.queue, task_id=job.id)
            job.enqueued_at = utcnow()
            sent.append(job.id)
    if sent:
        log.warning("re-enqueued %d job(s) the broker had lost or whose worker died: %s", len(sent), sent)
    return sent
