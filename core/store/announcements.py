"""What each live worker announces in Redis, with a time to live: its queues, its memory budget and
how many devices it owns. Written by worker/duties.py every few seconds; read by the API (memory
admission, `gpus` jobs, /healthz) and by train workers (why a `gpus` job waits)."""

from __future__ import annotations

import json

import redis

WORKER_KEY = "robustlab:worker:"


def announce(client: redis.Redis, name: str, info: dict, ttl_seconds: int) -> None:
    client.set(WORKER_KEY + name, json.dumps(info), ex=max(1, ttl_seconds))


def withdraw(client: redis.Redis, name: str) -> None:
    client.delete(WORKER_KEY + name)


def announcements(client: redis.Redis) -> dict[str, dict]:
    """Each live worker's announcement by its name (an unreadable one as {})."""
    out = {}
    for key in client.scan_iter(WORKER_KEY + "*"):
        raw = client.get(key)
        if raw is None:  # expired meanwhile
            continue
        try:
            info = json.loads(raw)
        except ValueError:
            info = {}
        out[key.decode()[len(WORKER_KEY) :]] = info if isinstance(info, dict) else {}
    return out


def largest(client: redis.Redis) -> tuple[dict[str, int], dict[str, int]]:
    """(the largest memory budget, the most devices) announced by a live worker of each queue.

    Raises:
        redis.RedisError: Redis cannot be reached.
    """
    budgets: dict[str, int] = {}
    devices: dict[str, int] = {}
    for info in announcements(client).values():
        try:
            budget, owned = int(info.get("memory_bytes") or 0), int(info.get("devices") or 1)
            queues = [q for q in info.get("queues", []) if isinstance(q, str)]
        except (TypeError, ValueError):  # not what a worker writes
            continue
        for queue in queues:
            budgets[queue] = max(budgets.get(queue, 0), budget)
            devices[queue] = max(devices.get(queue, 0), owned)
    return budgets, devices
