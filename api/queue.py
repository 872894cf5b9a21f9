"""Sending jobs to the workers by task name, through Celery's client side only."""

from __future__ import annotations

from functools import lru_cache

from celery import Celery

from core.contract.kinds import TASK_NAME


class JobQueue:
    def __init__(self, redis_url: str):
        self.app = Celery("robustlab-api", broker=redis_url)
        self.app.conf.update(
            task_serializer="json",
            accept_content=["json"],
            broker_connection_retry_on_startup=True,
            broker_connection_timeout=5,
        )

    def send(self, job_id: str, queue: str) -> None:
        self.app.send_task(TASK_NAME, args=[job_id], queue=queue, task_id=job_id)


@lru_cache
def queue_for(redis_url: str) -> JobQueue:
    return JobQueue(redis_url)
