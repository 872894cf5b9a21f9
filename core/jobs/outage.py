"""Riding out a store outage (a database restart): the store's transient errors, and one helper
that retries a write until it lands or `outage_seconds` pass. Only connection-level errors are
retried; a constraint violation or a bug fails at once."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import InterfaceError, OperationalError

from core.contract.progress import Stopped

log = logging.getLogger(__name__)
STORE_AWAY = (OperationalError, InterfaceError)  # the database did not answer (or SQLite was locked)
# What ends an import without being its upload's fault: the store, a disk or the artifact store away
# for a moment, or the job stopped (cancelled, timed out, taken over by another worker).
PASSING = (*STORE_AWAY, OSError, Stopped)
T = TypeVar("T")


def while_store_away(seconds: float, what: str, fn: Callable[[], T]) -> T:
    """`fn()`, called again (1 s, then doubling up to 15 s apart) while it fails because the store
    is away, for at most `seconds`; then the last error is raised."""
    deadline, wait = time.monotonic() + seconds, 1.0
    while True:
        try:
            return fn()
        except STORE_AWAY:
            if time.monotonic() + wait > deadline:
                raise
            log.warning("%s: the store is away; trying again in %.0f s", what, wait)
            time.sleep(wait)
            wait = min(2 * wait, 15.0)
