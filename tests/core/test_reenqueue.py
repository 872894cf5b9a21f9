"""The workers' re-enqueue loop against a real Redis: a queued job whose message the broker no
longer hands out is sent again — lost outright (Redis restarted empty) or stranded among the
unacknowledged messages of a consumer that died (the stack stopped while the job ran) — while a
job whose message waits in its queue, or was just delivered, is left alone."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import redis
from celery import Celery

from core.contract.kinds import TASK_NAME
from core.contract.presets import train_preset
from core.store import jobs as store_jobs
from core.store.db import session_scope
from core.store.orm import utcnow
from tests.core.test_jobs import Lab
from tests.redis_server import embedded_redis
from worker.duties import messages_in_broker, reenqueue_lost_jobs

GRACE = 120.0


def unacked(client: redis.Redis, job_id: str, delivered_at: float) -> None:
    """What kombu writes when it delivers a message to a consumer that has not acknowledged it."""
    raw = {"body": "", "headers": {"id": job_id, "task": TASK_NAME}}
    client.hset("unacked", f"tag-{job_id}", json.dumps([raw, "", "train"]))
    client.zadd("unacked_index", {f"tag-{job_id}": delivered_at})


def test_only_jobs_whose_message_is_lost_or_stranded_are_sent_again(tmp_path):
    lab = Lab(tmp_path)
    spec = train_preset("smoke")
    waiting, stranded, delivered, lost = (lab.create("adversarial_training", spec) for _ in range(4))
    with session_scope(lab.settings.database_url) as s:
        for job_id in (waiting, stranded, delivered, lost):
            store_jobs.get_job(s, job_id=job_id).enqueued_at = utcnow() - timedelta(seconds=10 * GRACE)
    with embedded_redis(tmp_path) as url:
        app = Celery("reenqueue-test", broker=url)
        client = redis.Redis.from_url(url)
        app.send_task(TASK_NAME, args=[waiting], queue="train", task_id=waiting)
        unacked(client, stranded, time.time() - 3600)
        unacked(client, delivered, time.time())
        held = messages_in_broker(client, ["train"], time.time() - GRACE)
        assert waiting in held and delivered in held and stranded not in held and lost not in held

        sent = reenqueue_lost_jobs(app, client, lab.settings, grace_seconds=GRACE)

        assert sorted(sent) == sorted([stranded, lost])
        queued = messages_in_broker(client, ["train"], time.time() + 1)  # the waiting messages alone
        assert all(job_id in queued for job_id in (waiting, stranded, lost)) and delivered not in queued
        assert reenqueue_lost_jobs(app, client, lab.settings, grace_seconds=GRACE) == []  # sent lately
        app.close()
