"""Two submissions at once by one member cannot both pass the queued-job quota: the second one's
count waits for the first one's transaction (PostgreSQL, which takes concurrent writers; on SQLite
the write lock already lines them up)."""

from __future__ import annotations

import threading

from fastapi import HTTPException
from sqlalchemy import text

from api.deps import Caller
from api.submission import check_quota
from core.settings import Settings
from core.store import jobs as store_jobs
from core.store.db import session_scope
from core.store.keys import ensure_user
from core.store.migrate import upgrade
from tests.dbs import database_url


def test_a_second_submission_waits_for_the_first_ones_count(tmp_path):
    url, cleanup = database_url("postgres", tmp_path)
    try:
        upgrade(url)
        with session_scope(url) as s:
            user = ensure_user(s, name="alice", role="member")
            caller = Caller(key_id="k", user_id=user.id, name="alice", role="member")
        settings = Settings(database_url=url, max_queued_jobs_per_user=1)
        second: list = []

        def submit_second():
            try:
                with session_scope(url) as s:
                    check_quota(s, settings, caller)
                second.append("passed")
            except HTTPException as e:
                second.append(e.status_code)

        with session_scope(url) as first:
            check_quota(first, settings, caller)  # one unfinished job is allowed: this one passes
            store_jobs.create_job(first, kind="adversarial_training", spec={}, owner_id=user.id)
            first.flush()
            thread = threading.Thread(target=submit_second)
            thread.start()
            with session_scope(url) as probe:  # the event: the second count is waiting on a lock
                while not second and not probe.scalar(
                    text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
                ):
                    probe.rollback()  # a fresh snapshot of pg_stat_activity
            assert not second, "the second count did not wait for the first submission"
        thread.join()
        assert second == [429]
    finally:
        cleanup()
