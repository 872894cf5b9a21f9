"""Two submissions at once by one member cannot both pass the queued-job quota, and two uploads at
once do not deadlock on it (PostgreSQL, which takes concurrent writers; on SQLite the write lock
already lines them up)."""

from __future__ import annotations

import threading

import pytest
from fastapi import HTTPException
from sqlalchemy import text

from api.deps import Caller
from api.submission import check_quota
from core.settings import Settings
from core.store import jobs as store_jobs
from core.store.artifacts import ArtifactStore, record_upload
from core.store.db import session_scope
from core.store.keys import ensure_user
from core.store.migrate import upgrade
from tests.dbs import database_url


@pytest.fixture
def alice(tmp_path):
    """(database url, alice as a caller, settings allowing her one unfinished job)."""
    url, cleanup = database_url("postgres", tmp_path)
    upgrade(url)
    with session_scope(url) as s:
        user = ensure_user(s, name="alice", role="member")
        caller = Caller(key_id="k", user_id=user.id, name="alice", role="member")
    yield url, caller, Settings(database_url=url, max_queued_jobs_per_user=1, artifact_url=str(tmp_path / "a"))
    cleanup()


def in_thread(fn) -> tuple[threading.Thread, list]:
    """Start `fn(session)` in a transaction of its own on another thread; the list gets "passed"
    or the HTTP status it raised."""
    outcome: list = []

    def run():
        try:
            fn()
            outcome.append("passed")
        except HTTPException as e:
            outcome.append(e.status_code)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def wait_for_lock_or(url: str, outcome: list) -> None:
    """Until `outcome` has an entry or some transaction waits on a lock (the event, not a time)."""
    with session_scope(url) as probe:
        query = text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
        while not outcome and not probe.scalar(query):
            probe.rollback()  # a fresh snapshot of pg_stat_activity


def test_a_second_submission_waits_for_the_first_ones_count(alice):
    url, caller, settings = alice

    def second():
        with session_scope(url) as s:
            check_quota(s, settings, caller)

    with session_scope(url) as first:
        check_quota(first, settings, caller)  # one unfinished job is allowed: this one passes
        store_jobs.create_job(first, kind="adversarial_training", spec={}, owner_id=caller.user_id)
        first.flush()
        thread, outcome = in_thread(second)
        wait_for_lock_or(url, outcome)
        assert not outcome, "the second count did not wait for the first submission"
    thread.join()
    assert outcome == [429]


def test_two_uploads_at_once_do_not_deadlock_on_the_quota(alice):
    """An upload's row names its owner, which takes a key-share lock on the user row; the quota's
    lock must not conflict with it (FOR UPDATE did: two uploads waited on each other, and
    PostgreSQL killed one with a deadlock error, a 500)."""
    url, caller, settings = alice
    store = ArtifactStore(settings.artifact_url)

    def second():
        with session_scope(url) as s:
            record_upload(s, store, owner_id=caller.user_id, suffix="png", data=b"2")
            check_quota(s, settings, caller)
            store_jobs.create_job(s, kind="image_attack", spec={}, owner_id=caller.user_id)

    with session_scope(url) as first:
        record_upload(first, store, owner_id=caller.user_id, suffix="png", data=b"1")
        thread, outcome = in_thread(second)
        wait_for_lock_or(url, outcome)
        assert outcome == ["passed"], "the second upload's quota check waited on the first upload"
        thread.join()
        with pytest.raises(HTTPException) as refused:
            check_quota(first, settings, caller)  # the second one's job is in: alice is at her limit
        assert refused.value.status_code == 429
