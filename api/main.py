"""The API app factory: `uvicorn --factory api.main:create_app`."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DataError

from api.json_guard import JSONGuard
from api.json_safety import FiniteJSONResponse, validation_error, value_refused
from api.key_gate import KeyGate
from api.metrics import MetricsMiddleware
from api.routes import artifacts, attacks, datasets, health, jobs, keys, models, presets, samples, studies


def create_app() -> FastAPI:
    app = FastAPI(
        title="robustlab",
        version="0.1.0",
        description="Adversarial training, attack evaluation and DDPM as a service. "
        "Every /v1 endpoint needs `Authorization: Bearer <API key>`.",
        default_response_class=FiniteJSONResponse,
    )
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(DataError, value_refused)
    app.add_middleware(JSONGuard)  # before any parser: deep nesting, lone surrogates, NULs, huge bodies
    app.add_middleware(KeyGate)  # before the guard reads a body: no key, no body read
    app.add_middleware(MetricsMiddleware)
    for module in (jobs, studies, models, datasets, attacks, samples, presets, artifacts, keys, health):
        app.include_router(module.router)
    return app
