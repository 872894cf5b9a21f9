"""Database URLs for tests: SQLite always, PostgreSQL when one is reachable (a fresh database)."""

from __future__ import annotations

import os
import uuid

import pytest

PG_ADMIN = os.environ.get("ROBUSTLAB_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def postgres_reachable() -> bool:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN, connect_timeout=2):
            return True
    except Exception:
        return False


def fresh_postgres_url() -> tuple[str, callable]:
    """A new empty database, and a function that drops it."""
    import psycopg

    name = f"robustlab_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN.rsplit("/", 1)[0]

    def drop():
        from core.store.db import engine_for

        engine_for.cache_clear()
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return f"{base}/{name}", drop


def database_url(kind: str, tmp_path):
    """(url, cleanup) for `sqlite` or `postgres` (skipped when PostgreSQL is not reachable)."""
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}", lambda: None
    if not postgres_reachable():
        pytest.skip("PostgreSQL not reachable at " + PG_ADMIN)
    return fresh_postgres_url()
