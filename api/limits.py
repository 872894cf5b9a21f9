"""Bounds on what one request may ask for, beyond the specs' own validation (configurable)."""

from __future__ import annotations

import time

import redis
from fastapi import Depends, HTTPException, status
from pydantic import BaseModel

from api.deps import KeyDep, SettingsDep, redis_client
from core.contract.kinds import job_kind
from core.contract.specs import ModelSpec
from core.settings import Settings
from core.store.announcements import largest


def check_limits(kind: str, spec: BaseModel, settings: Settings) -> None:
    """Raise 422 naming the field when `spec` asks for more than the server allows (the limits
    its kind's row declares, each against its setting)."""
    for limit in job_kind(kind).limits(spec):
        allowed = getattr(settings, limit.setting)
        if limit.value > allowed:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                f"spec.{limit.field} = {_number(limit.value)} exceeds this server's limit of {_number(allowed)} "
                f"({limit.setting})",
            )


def _number(value: float) -> str:
    """A limit's value as written: integers whole (`:g` would round them and fail past a float's
    range), floats short."""
    return str(value) if isinstance(value, int) else f"{value:g}"


RATE_KEY = "robustlab:rate:{user}:{window}"


def interactive_rate(caller: KeyDep, settings: SettingsDep) -> None:
    """A per-user limit on the interactive endpoints, counted in Redis so that every API process
    agrees: `interactive_per_minute` requests per calendar minute, then 429 with Retry-After. If
    Redis cannot be reached the request passes (the broker being away fails the submission anyway)."""
    now = time.time()
    key = RATE_KEY.format(user=caller.user_id, window=int(now // 60))
    try:
        count, _ = redis_client(settings.redis_url).pipeline().incr(key).expire(key, 120).execute()
    except redis.RedisError:
        return
    if count > settings.interactive_per_minute:
        retry = max(1, int(60 - now % 60))
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"more than {settings.interactive_per_minute} interactive requests this minute; try again in {retry} s",
            headers={"Retry-After": str(retry)},
        )


InteractiveRate = Depends(interactive_rate)


_announced: dict[str, tuple[float, dict[str, int], dict[str, int]]] = {}
BUDGETS_CACHE_SECONDS = 10.0


def _announcements(redis_url: str) -> tuple[dict[str, int], dict[str, int]]:
    """(the largest memory budget, the most devices) announced by a live worker of each queue,
    cached a few seconds; empty when Redis cannot be reached or no worker has announced."""
    now = time.monotonic()
    hit = _announced.get(redis_url)
    if hit and hit[0] > now:
        return hit[1], hit[2]
    try:
        budgets, devices = largest(redis_client(redis_url))
    except redis.RedisError:
        budgets, devices = {}, {}
    _announced[redis_url] = (now + BUDGETS_CACHE_SECONDS, budgets, devices)
    return budgets, devices


def announced_budgets(redis_url: str) -> dict[str, int]:
    """The largest memory budget announced by a live worker of each queue."""
    return _announcements(redis_url)[0]


def announced_devices(redis_url: str) -> dict[str, int]:
    """The most devices a live worker of each queue announced (for `gpus` jobs)."""
    return _announcements(redis_url)[1]


def check_memory(kind: str, spec: BaseModel, settings: Settings, model: ModelSpec | None = None) -> None:
    """422 naming the fields to change when the job's estimated memory (its kind's estimate) is more
    than the largest budget a worker of its queue has announced (no check when none has)."""
    row = job_kind(kind)
    needed, queue = row.memory(spec, model), row.queue
    budget = announced_budgets(settings.redis_url).get(queue, 0)
    if not budget or needed <= budget:
        return
    raise HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        f"this job needs about {needed / 2**30:.1f} GiB of memory, more than any {queue} worker offers "
        f"({budget / 2**30:.1f} GiB): lower {row.memory_fields}",
    )
