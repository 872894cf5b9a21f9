"""Bounds on what one request may ask for, beyond the specs' own validation (configurable)."""

from __future__ import annotations

import time

import redis
from fastapi import Depends, HTTPException, status
from pydantic import BaseModel

from api.deps import KeyDep, SettingsDep, redis_client
from core.contract.diffusion_specs import DDPMSampleSpec, DDPMTrainSpec
from core.contract.job_specs import EvalSpec, ImageAttackSpec
from core.contract.memory import estimate_bytes, fields_to_change
from core.contract.specs import AttackSpec, ModelSpec, ProtocolSpec, TrainSpec
from core.settings import Settings
from core.store.announcements import largest


def _too_big(field: str, value, limit) -> HTTPException:
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT, f"spec.{field} = {value} exceeds this server's limit of {limit}"
    )


def _check_attack(prefix: str, attack: AttackSpec, settings: Settings) -> None:
    """Square's queries against one limit, the gradient attacks' model evaluations per point
    (iterations × restarts × targets × EOT) against another."""
    if attack.name == "square":
        if attack.cost > settings.max_attack_queries:
            raise _too_big(f"{prefix}.queries", attack.cost, settings.max_attack_queries)
    elif attack.cost > settings.max_attack_steps:
        raise _too_big(f"{prefix}.steps", attack.cost, settings.max_attack_steps)


def _check_protocol(prefix: str, protocol: ProtocolSpec, settings: Settings) -> None:
    for i, attack in enumerate(protocol.attack_specs()):
        _check_attack(f"{prefix}.attacks[{i}]", attack, settings)
    if protocol.images > settings.max_eval_images:
        raise _too_big(f"{prefix}.images", protocol.images, settings.max_eval_images)


def check_limits(spec: BaseModel, settings: Settings) -> None:
    """Raise 422 naming the field when `spec` asks for more than the server allows."""
    if isinstance(spec, TrainSpec):
        if spec.epochs > settings.max_epochs:
            raise _too_big("epochs", spec.epochs, settings.max_epochs)
        _check_attack("attack", spec.attack, settings)
        _check_attack("eval_attack", spec.eval_attack, settings)
        _check_protocol("protocol", spec.protocol, settings)
        if spec.eval_subset > settings.max_eval_images:
            raise _too_big("eval_subset", spec.eval_subset, settings.max_eval_images)
    elif isinstance(spec, EvalSpec):
        _check_protocol("protocol", spec.protocol, settings)
    elif isinstance(spec, ImageAttackSpec):
        _check_attack("attack", spec.attack, settings)
    elif isinstance(spec, DDPMTrainSpec):
        if spec.epochs > settings.max_epochs:
            raise _too_big("epochs", spec.epochs, settings.max_epochs)
        if spec.image_size > 64:
            raise _too_big("image_size", spec.image_size, 64)
    elif isinstance(spec, DDPMSampleSpec):
        if spec.n > settings.max_samples_per_request:
            raise _too_big("n", spec.n, settings.max_samples_per_request)
        if spec.num_steps > settings.max_sample_steps:
            raise _too_big("steps", spec.num_steps, settings.max_sample_steps)


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


def check_memory(spec: BaseModel, queue: str, settings: Settings, model: ModelSpec | None = None) -> None:
    """422 naming the fields to change when the job's estimated memory is more than the largest
    budget a worker of its queue has announced (no check when no worker has announced one)."""
    needed = estimate_bytes(spec, model)
    budget = announced_budgets(settings.redis_url).get(queue, 0)
    if needed is None or not budget or needed <= budget:
        return
    raise HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        f"this job needs about {needed / 2**30:.1f} GiB of memory, more than any {queue} worker offers "
        f"({budget / 2**30:.1f} GiB): lower {fields_to_change(spec)}",
    )
