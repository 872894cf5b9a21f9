"""The task: a thin shell around `execute_job`, plus the worker's background duties."""

from __future__ import annotations

import logging
import os
import socket
from functools import lru_cache

from celery import shared_task
from celery.signals import worker_ready, worker_shutdown

from core.contract.kinds import TASK_NAME
from core.settings import get_settings
from worker.duties import start_duties, stop_duties

log = logging.getLogger(__name__)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@lru_cache
def model_cache():
    from core.jobs.model_cache import ModelCache

    return ModelCache(get_settings().model_cache_size)


@shared_task(name=TASK_NAME, bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def execute(self, job_id: str) -> str:
    from core.jobs.execute import execute_job

    def resend(again: str) -> None:  # a job whose attempt crashed goes back on its queue at once
        self.app.send_task(TASK_NAME, args=[again], queue="train", task_id=again)

    return execute_job(job_id, settings=get_settings(), worker=worker_name(), models=model_cache(), resend=resend)


@worker_ready.connect
def _start_duties(sender, **_):
    queues = [q.name for q in sender.app.amqp.queues.consume_from.values()] if sender else []
    start_duties(sender.app, queues, worker_name())


@worker_shutdown.connect
def _stop_duties(**_):
    stop_duties()
