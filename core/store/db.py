"""Engine and sessions for the job store: SQLite (WAL) by default, PostgreSQL via DATABASE_URL."""

from __future__ import annotations

import fcntl
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from functools import lru_cache
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker


def normalise_url(url: str) -> str:
    """`postgresql://` and `postgres://` mean psycopg 3 here."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(conn, _):
            cur = conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


@lru_cache
def engine_for(url: str) -> Engine:
    return make_engine(url)


@lru_cache
def _sessionmaker(url: str) -> sessionmaker:
    return sessionmaker(engine_for(url), expire_on_commit=False)


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    session = _sessionmaker(url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


class _SqliteWriteLock:
    """Queue SQLite writers in line instead of letting them collide on the database lock.

    SQLite has one writer at a time; a writer that finds the lock taken sleeps in SQLite's busy
    handler (1, 2, 5 … 100 ms steps), which under many concurrent submissions gives a long
    tail. Here writers wait on a thread lock and an `flock` beside the database file instead,
    and are woken the moment the writer before them commits, across threads and processes.
    Re-entrant within a thread, so that a route can hold it around several writes that each
    take it (no other writer may slip in while a transaction holds SQLite's write lock).
    """

    def __init__(self, path: Path):
        self._thread_lock = threading.RLock()
        self._path = path.with_name(path.name + ".write-lock")
        self._depth = 0  # guarded by _thread_lock
        self._file = None

    @contextmanager
    def __call__(self) -> Iterator[None]:
        with self._thread_lock:
            if self._depth == 0:
                self._file = open(self._path, "a")  # noqa: SIM115 (closed below, on the way out)
                fcntl.flock(self._file, fcntl.LOCK_EX)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    fcntl.flock(self._file, fcntl.LOCK_UN)
                    self._file.close()


@lru_cache
def _sqlite_write_lock(url: str) -> _SqliteWriteLock | None:
    url = normalise_url(url)
    path = url.split("///", 1)[-1] if url.startswith("sqlite") else ""
    return _SqliteWriteLock(Path(path)) if path and path != ":memory:" else None


def write_lock(url: str):
    """A context manager around a short write transaction, from its first write to its commit:
    it lines writers up on SQLite; on PostgreSQL, which takes concurrent writers, it does
    nothing. Take it before the first write (a flush), never in the middle of a transaction."""
    lock = _sqlite_write_lock(url)
    return lock() if lock else nullcontext()
