"""Liveness with dependencies (`/healthz`) and Prometheus metrics (`/metrics`), outside /v1."""

from __future__ import annotations

import redis
from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest
from sqlalchemy import text

from api.deps import SessionDep, SettingsDep
from api.metrics import REGISTRY
from api.schemas import Health
from core.contract.names import JOB_STATUSES
from core.store.announcements import announcements
from core.store.jobs import count_by_status

router = APIRouter(tags=["health"])


@router.get(
    "/healthz",
    response_model=Health,
    responses={503: {"model": Health, "description": "the database or Redis is away"}},
)
def healthz(session: SessionDep, settings: SettingsDep, response: Response) -> dict:
    """API, database and Redis reachable, and the workers seen in the last half minute."""
    checks: dict = {"api": "ok"}
    try:
        session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as e:
        checks["database"] = f"error: {type(e).__name__}"
    try:
        client = redis.Redis.from_url(settings.redis_url, socket_timeout=2)
        client.ping()
        checks["redis"] = "ok"
        checks["workers"] = announcements(client)
    except Exception as e:
        checks["redis"] = f"error: {type(e).__name__}"
        checks["workers"] = {}
    healthy = checks["database"] == "ok" and checks["redis"] == "ok"
    response.status_code = 200 if healthy else 503
    return {"status": "ok" if healthy else "degraded", **checks}


@router.get("/metrics", response_class=Response)
def metrics(session: SessionDep) -> Response:
    """Request counters and latencies, and jobs by status, in Prometheus' text format."""
    jobs = CollectorRegistry()
    gauge = Gauge("robustlab_jobs", "Jobs in the store by status", ["status"], registry=jobs)
    counts = count_by_status(session)
    for s in JOB_STATUSES:
        gauge.labels(status=s).set(counts.get(s, 0))
    return Response(generate_latest(REGISTRY) + generate_latest(jobs), media_type=CONTENT_TYPE_LATEST)
