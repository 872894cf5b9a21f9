"""The job store against real databases: SQLite, and PostgreSQL when reachable (DATABASE_URL path)."""

import time

import pytest

from core.store import jobs as store_jobs
from core.store.artifacts import ArtifactStore, record_artifact
from core.store.db import session_scope
from core.store.keys import create_key, verify_key
from core.store.migrate import upgrade
from core.store.orm import Job
from tests.dbs import database_url


@pytest.fixture(params=["sqlite", "postgres"])
def db(request, tmp_path):
    url, cleanup = database_url(request.param, tmp_path)
    upgrade(url)
    upgrade(url)  # idempotent: running the migrations again changes nothing
    yield url
    cleanup()


def test_a_job_is_claimed_once(db):
    with session_scope(db) as s:
        job_id = store_jobs.create_job(s, kind="adversarial_training", spec={"epochs": 1}).id
    with session_scope(db) as s:
        first = store_jobs.claim_job(s, job_id=job_id, worker="a", lease_seconds=30)
    with session_scope(db) as s:
        second = store_jobs.claim_job(s, job_id=job_id, worker="b", lease_seconds=30)
    assert first is not None and first.status == "running" and first.attempts == 1
    assert second is None


def test_an_expired_lease_can_be_taken_over(db):
    with session_scope(db) as s:
        job_id = store_jobs.create_job(s, kind="adversarial_training", spec={}).id
        store_jobs.claim_job(s, job_id=job_id, worker="a", lease_seconds=0.01)
    time.sleep(0.05)
    with session_scope(db) as s:
        assert store_jobs.heartbeat(s, job_id=job_id, worker="a", lease_seconds=30)  # still its owner
    with session_scope(db) as s:
        assert store_jobs.claim_job(s, job_id=job_id, worker="b", lease_seconds=30) is None
    with session_scope(db) as s:
        s.execute(store_jobs.update(store_jobs.Job).values(lease_expires_at=store_jobs.utcnow()))
    with session_scope(db) as s:
        taken = store_jobs.claim_job(s, job_id=job_id, worker="b", lease_seconds=30)
        assert taken.lease_owner == "b" and taken.attempts == 2
        assert not store_jobs.heartbeat(s, job_id=job_id, worker="a", lease_seconds=30)


def test_progress_metrics_and_finish(db):
    with session_scope(db) as s:
        job_id = store_jobs.create_job(s, kind="adversarial_training", spec={}).id
        store_jobs.report_progress(s, job_id=job_id, fraction=0.5, message="half")
        store_jobs.add_metrics(s, job_id=job_id, step=1, metrics={"clean_acc": 0.9, "robust_acc": 0.7})
        store_jobs.finish_job(s, job_id=job_id, status="succeeded", result={"ok": True})
    with session_scope(db) as s:
        job = store_jobs.get_job(s, job_id=job_id)
        assert (job.status, job.progress, job.result) == ("succeeded", 1.0, {"ok": True})
        points = store_jobs.get_metrics(s, job_id=job_id)
        assert {(p.step, p.name, p.value) for p in points} == {(1, "clean_acc", 0.9), (1, "robust_acc", 0.7)}
        with pytest.raises(ValueError):
            store_jobs.finish_job(s, job_id=job_id, status="running")


def test_cancel_queued_and_running(db):
    with session_scope(db) as s:
        queued = store_jobs.create_job(s, kind="adversarial_training", spec={}).id
        running = store_jobs.create_job(s, kind="adversarial_training", spec={}).id
        store_jobs.claim_job(s, job_id=running, worker="a", lease_seconds=30)
    with session_scope(db) as s:
        assert store_jobs.request_cancel(s, job_id=queued).status == "cancelled"
        assert store_jobs.request_cancel(s, job_id=running).status == "running"
        assert store_jobs.cancel_requested(s, job_id=running)


def test_a_stop_request_whose_worker_died_ends_the_job_cancelled(db):
    """A running job asked to stop whose worker dies before it sees the flag: neither the claim nor
    the re-enqueue takes it again, so the store must end it rather than leave it running forever."""
    with session_scope(db) as s:
        died_after = store_jobs.create_job(s, kind="adversarial_training", spec={}).id
        died_before = store_jobs.create_job(s, kind="adversarial_training", spec={}).id
        child_killed = store_jobs.create_job(s, kind="adversarial_training", spec={}).id
        live = store_jobs.create_job(s, kind="adversarial_training", spec={}).id
        for job_id in (died_after, died_before, child_killed):
            store_jobs.claim_job(s, job_id=job_id, worker="a", lease_seconds=-1)  # a lease already expired
        store_jobs.claim_job(s, job_id=live, worker="b", lease_seconds=60)
    with session_scope(db) as s:
        for job_id in (died_after, child_killed, live):  # asked while the worker still held the lease
            s.get(Job, job_id).cancel_requested = True
    with session_scope(db) as s:
        assert store_jobs.request_cancel(s, job_id=died_before).status == "cancelled"  # its worker is gone
        assert store_jobs.requeue(s, job_id=child_killed) is False  # the supervisor's path
        assert store_jobs.end_abandoned_cancels(s) == [died_after]  # the re-enqueue loop's sweep
    with session_scope(db) as s:
        ended = {j: store_jobs.get_job(s, job_id=j) for j in (died_after, died_before, child_killed, live)}
        assert {j: row.status for j, row in ended.items()} == {
            died_after: "cancelled",
            died_before: "cancelled",
            child_killed: "cancelled",
            live: "running",
        }
        assert all(ended[j].finished_at is not None for j in (died_after, died_before, child_killed))
        assert store_jobs.jobs_to_reenqueue(s, queued_before_seconds=-1) == []


def test_keys_are_stored_hashed_belong_to_users_and_expire(db):
    from datetime import timedelta

    from core.store.keys import ensure_user, revoke_key
    from core.store.orm import utcnow

    with session_scope(db) as s:
        row, key = create_key(s, name="k")
        assert key not in row.key_hash and row.key_hash != key
        found, user = verify_key(s, key=key)
        assert found.id == row.id and user.name == "k" and user.role == "member"
        assert verify_key(s, key=key + "x") is None
        admin = ensure_user(s, name="ops", role="admin")
        _, soon = create_key(s, name="soon", user=admin, expires_at=utcnow() + timedelta(hours=1))
        _, gone = create_key(s, name="gone", user=admin, expires_at=utcnow() - timedelta(seconds=1))
        assert verify_key(s, key=soon)[1].role == "admin" and verify_key(s, key=gone) is None
        revoke_key(s, key_id=row.id)
        assert verify_key(s, key=key) is None
        with pytest.raises(ValueError, match="role must be"):
            ensure_user(s, name="x", role="root")


def test_artifacts_round_trip_with_checksum(db, tmp_path):
    store = ArtifactStore(str(tmp_path / "artifacts"))
    with session_scope(db) as s:
        row = record_artifact(s, store, key="jobs/j/a.png", data=b"png-bytes", type="image")
        assert row.size == 9 and len(row.sha256) == 64 and row.content_type == "image/png"
    assert store.get_bytes("jobs/j/a.png") == b"png-bytes"
    with pytest.raises(ValueError):
        store.put_bytes("../escape", b"")


def test_a_command_line_checkpoint_imports_into_the_registry(db, tmp_path, trained_digits, monkeypatch, capsys):
    import json

    import torch

    from core.cli.main import main
    from core.jobs.model_cache import ModelCache
    from core.store.registry import get_model

    model, folder, ds = trained_digits
    monkeypatch.setenv("DATABASE_URL", db)
    monkeypatch.setenv("ARTIFACT_URL", str(tmp_path / "artifacts"))
    from core.settings import get_settings

    get_settings.cache_clear()
    try:
        assert main(["models", "import", str(folder), "--name", "digits-cli", "--json"]) == 0
    finally:
        get_settings.cache_clear()
    out = json.loads(capsys.readouterr().out)
    assert out["kind"] == "classifier" and out["name"] == "digits-cli" and out["dataset"] == "digits"
    with session_scope(db) as s:
        row = get_model(s, model_id=out["id"])
        # the import runs an upload's checks: clean accuracy on the whole test split
        assert row.summary["clean_images"] == len(ds.x_test)
        assert row.summary["clean_acc"] == pytest.approx(
            (model(ds.x_test).argmax(1) == ds.y_test).float().mean().item()
        )
        uri = row.checkpoint_uri
    served = ModelCache(2).get(out["id"], uri, ArtifactStore(str(tmp_path / "artifacts")), torch.device("cpu"))
    x = ds.x_test[:16]
    # the registry serves the very same weights (in channels_last memory: equal up to float rounding)
    assert torch.allclose(served(x), model(x), atol=1e-5)
    with session_scope(db) as s, pytest.raises(ValueError, match="not a robustlab checkpoint"):
        from core.store.imports import import_checkpoint

        import_checkpoint(s, ArtifactStore(str(tmp_path / "a2")), tmp_path)


def test_db_upgrade_makes_the_bootstrap_key_valid(db, monkeypatch, capsys):
    import json

    from core.cli.main import main
    from core.settings import get_settings
    from core.store.keys import ensure_key

    key = "rl_bootstrap_" + "x" * 30
    monkeypatch.setenv("DATABASE_URL", db)
    monkeypatch.setenv("ROBUSTLAB_BOOTSTRAP_KEY", key)
    get_settings.cache_clear()
    try:
        assert main(["db", "upgrade", "--json"]) == 0
        assert main(["db", "upgrade", "--json"]) == 0  # idempotent
    finally:
        get_settings.cache_clear()
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["bootstrap_key"] == key[:10]
    with session_scope(db) as s:
        row, user = verify_key(s, key=key)
        assert row.name == "bootstrap" and user.role == "admin"
        with pytest.raises(ValueError, match="at least 32"):
            ensure_key(s, name="weak", key="rl_short")


def test_sqlite_writers_line_up_across_threads_and_processes(tmp_path):
    import subprocess
    import sys
    import threading

    from core.store.db import write_lock

    url = f"sqlite:///{tmp_path / 'lock.db'}"
    with write_lock(url), write_lock(url):  # re-entrant within a thread
        entered = threading.Event()

        def writer():
            with write_lock(url):
                entered.set()

        other = threading.Thread(target=writer)
        other.start()
        assert not entered.wait(0.3), "another thread got in while the lock was held"
    assert entered.wait(5)  # and gets in once it is released
    other.join()
    code = (
        "import sys, time; from core.store.db import write_lock\n"
        "with write_lock(sys.argv[1]):\n    print('held', flush=True); time.sleep(1.0)"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, f"sqlite:///{tmp_path / 'other.db'}"], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "held"
    t0 = time.monotonic()
    with write_lock(f"sqlite:///{tmp_path / 'other.db'}"):
        waited = time.monotonic() - t0
    holder.wait(10)
    assert waited > 0.5  # the other process held it
    with write_lock("postgresql://u@h/db"):  # a no-op where the database takes concurrent writers
        pass


def test_the_migrations_build_exactly_the_tables_the_code_uses(db):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from core.store.db import engine_for
    from core.store.orm import Base

    with engine_for(db).connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_keys_from_before_users_become_admins_and_jobs_keep_their_owner(tmp_path):
    import sqlalchemy as sa

    from core.store.keys import hash_key

    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0001")
    engine = sa.create_engine(url)
    with engine.begin() as c:
        c.execute(
            sa.text(
                "INSERT INTO api_keys (id, name, prefix, key_hash, revoked, created_at) "
                "VALUES ('k1', 'alice', 'rl_x', :h, 0, '2026-01-01')"
            ),
            {"h": hash_key("rl_" + "a" * 40)},
        )
        c.execute(
            sa.text(
                "INSERT INTO jobs (id, kind, status, queue, spec, progress, message, owner, attempts, "
                "cancel_requested, created_at, updated_at) VALUES ('j1', 'adversarial_training', "
                "'succeeded', 'train', '{}', 1, '', 'alice', 1, 0, '2026-01-01', '2026-01-01')"
            )
        )
    upgrade(url)
    with session_scope(url) as s:
        key, user = verify_key(s, key="rl_" + "a" * 40)
        assert user.name == "alice" and user.role == "admin"
        assert store_jobs.get_job(s, job_id="j1").owner_id == user.id


def test_fair_order_serves_the_user_served_longest_ago_and_caps_running_jobs(db):
    from core.store.keys import ensure_user

    with session_scope(db) as s:
        alice, bob, carol = (ensure_user(s, name=n).id for n in ("alice", "bob", "carol"))
        study = [store_jobs.create_job(s, kind="adversarial_training", spec={}, owner_id=alice).id for _ in range(4)]

    def claim(job_id, worker):
        with session_scope(db) as session:
            job = store_jobs.claim_fairly(
                session, delivered=job_id, queue="train", worker=worker, lease_seconds=30, running_limit=2
            )
            return None if job is None else job.id

    assert claim(study[0], "w1") == study[0]  # alone in the queue: the oldest job
    with session_scope(db) as s:
        late = store_jobs.create_job(s, kind="adversarial_training", spec={}, owner_id=bob).id
    assert claim(study[1], "w2") == late  # a delivery of alice's job: bob, with nothing running, goes first
    assert claim(study[2], "w3") == study[1]  # alice's next; bob has no more
    assert claim(study[3], "w4") is None  # alice has 2 running, the cap: her others wait
    with session_scope(db) as s:
        extra = store_jobs.create_job(s, kind="adversarial_training", spec={}, owner_id=carol).id
    assert claim(study[3], "w4") == extra  # but carol is served
    with session_scope(db) as s:
        assert store_jobs.fair_order(s, queue="train", running_limit=2) == []
        assert store_jobs.fair_order(s, queue="train", running_limit=3) == study[2:]


def test_a_crashed_run_is_resumed_on_its_own_delivery_before_any_fair_turn(db):
    with session_scope(db) as s:
        crashed = store_jobs.create_job(s, kind="adversarial_training", spec={}).id
        waiting = store_jobs.create_job(s, kind="adversarial_training", spec={}).id
        store_jobs.claim_job(s, job_id=crashed, worker="dead", lease_seconds=0.01)
    time.sleep(0.05)
    with session_scope(db) as s:
        store_jobs.get_job(s, job_id=crashed)  # loaded in the session first, as execute_job does
        job = store_jobs.claim_fairly(
            s, delivered=crashed, queue="train", worker="w", lease_seconds=30, running_limit=4
        )
        assert job.id == crashed and job.attempts == 2 and job.lease_owner == "w"
    with session_scope(db) as s:
        assert store_jobs.get_job(s, job_id=waiting).status == "queued"


def test_garbage_collection_deletes_only_what_nothing_points_to(db, tmp_path):
    from core.store.deletion import collect_garbage, unreferenced_keys

    store = ArtifactStore(str(tmp_path / "artifacts"))
    with session_scope(db) as s:
        job_id = store_jobs.create_job(s, kind="adversarial_training", spec={"epochs": 1}).id
        record_artifact(s, store, key="uploads/a.png", data=b"png", type="image")
    store.put_bytes(f"jobs/{job_id}/checkpoint/model.safetensors", b"weights")  # a running job's folder
    store.put_bytes("jobs/gone/checkpoint/model.safetensors", b"weights")  # a deleted job's
    store.put_bytes("uploads/stray.png", b"png")
    strays = ["jobs/gone/checkpoint/model.safetensors", "uploads/stray.png"]
    with session_scope(db) as s:
        assert sorted(unreferenced_keys(s, store)) == strays
        assert collect_garbage(s, store, older_than_seconds=3600) == []  # too young: a writer may be at work
        assert sorted(collect_garbage(s, store, older_than_seconds=0)) == strays
        assert unreferenced_keys(s, store) == []
    assert sorted(store.all_keys()) == [f"jobs/{job_id}/checkpoint/model.safetensors", "uploads/a.png"]


def test_a_step_written_twice_keeps_each_metric_once(db):
    with session_scope(db) as s:
        job_id = store_jobs.create_job(s, kind="adversarial_training", spec={"epochs": 1}).id
        store_jobs.add_metrics(s, job_id=job_id, step=1, metrics={"loss": 1.0, "acc": 0.5})
    with session_scope(db) as s:  # the same step again: a write repeated after an outage
        store_jobs.add_metrics(s, job_id=job_id, step=1, metrics={"loss": 0.9, "acc": 0.5})
        store_jobs.add_metrics(s, job_id=job_id, step=2, metrics={"loss": 0.8})
    with session_scope(db) as s:
        points = [(m.step, m.name, m.value) for m in store_jobs.get_metrics(s, job_id=job_id)]
    assert sorted(points) == [(1, "acc", 0.5), (1, "loss", 0.9), (2, "loss", 0.8)]


def test_a_gpus_job_too_big_for_the_claiming_worker_says_whether_a_bigger_one_exists(db):
    from core.store.keys import ensure_user

    with session_scope(db) as s:
        owner = ensure_user(s, name="alice").id
        big = store_jobs.create_job(s, kind="adversarial_training", spec={"gpus": 4}, owner_id=owner).id

    def message_after_claim(largest: int) -> str:
        with session_scope(db) as s:
            claimed = store_jobs.claim_fairly(
                s,
                delivered=big,
                queue="train",
                worker="w",
                lease_seconds=30,
                running_limit=2,
                devices=1,
                largest=largest,
            )
            assert claimed is None  # a one-device worker never takes it
        with session_scope(db) as s:
            return store_jobs.get_job(s, job_id=big).message

    assert "the largest one seen has 2" in message_after_claim(2)  # no live worker has 4
    assert message_after_claim(4).endswith("those that have them are busy")  # one has: it is busy
    assert "largest one seen has 1" in message_after_claim(0)  # Redis did not say: this worker's own count


def test_a_deletion_removes_files_only_once_it_commits(db, tmp_path):
    """A deletion whose transaction fails keeps the rows and their files; one that commits leaves
    neither (before, the files went first and a failed commit left rows pointing at nothing)."""
    from core.store.deletion import delete_job
    from core.store.orm import Artifact

    store = ArtifactStore(str(tmp_path / "artifacts"))
    with session_scope(db) as s:
        job_id = store_jobs.create_job(s, kind="adversarial_training", spec={"epochs": 1}).id
        store_jobs.finish_job(s, job_id=job_id, status="failed", error="x")
        record_artifact(s, store, key=f"jobs/{job_id}/report.json", data=b"{}", type="report", job_id=job_id)
    store.put_bytes(f"jobs/{job_id}/checkpoint/model.safetensors", b"weights")
    files = sorted(store.all_keys())

    class CommitFails(Exception):
        pass

    with pytest.raises(CommitFails), session_scope(db) as s:
        delete_job(s, store, job_id=job_id)
        raise CommitFails  # as a lost database connection would, before the commit
    assert sorted(store.all_keys()) == files
    with session_scope(db) as s:
        assert s.get(Job, job_id) is not None and s.query(Artifact).count() == 1
        delete_job(s, store, job_id=job_id)
        assert sorted(store.all_keys()) == files  # not yet committed
    assert store.all_keys() == []
    with session_scope(db) as s:
        assert s.get(Job, job_id) is None and s.query(Artifact).count() == 0


def test_a_model_registered_again_by_its_job_keeps_what_other_jobs_recorded_on_it(db):
    """A training job run again after a crash between registering and its final write registers its
    model again: the evaluations other jobs recorded on it meanwhile stay (before, the new summary
    replaced them)."""
    from core.store.registry import get_model, record_evaluation, register_model

    with session_scope(db) as s:
        job_id = store_jobs.create_job(s, kind="adversarial_training", spec={}).id
    fields = dict(
        kind="classifier",
        job_id=job_id,
        name="m",
        dataset="digits",
        architecture="small_cnn",
        activation="relu",
        recipe={},
        checkpoint_uri=f"jobs/{job_id}/checkpoint",
    )
    with session_scope(db) as s:
        model_id = register_model(s, **fields, summary={"evaluations": [{"job_id": job_id, "robust_acc": 0.3}]}).id
        other = store_jobs.create_job(s, kind="attack_evaluation", spec={}).id
        record_evaluation(s, model_id=model_id, entry={"job_id": other, "robust_acc": 0.4})
    with session_scope(db) as s:
        again = register_model(s, **fields, summary={"evaluations": [{"job_id": job_id, "robust_acc": 0.31}]})
        assert again.id == model_id
    with session_scope(db) as s:
        evaluations = get_model(s, model_id=model_id).summary["evaluations"]
    assert evaluations == [{"job_id": job_id, "robust_acc": 0.31}, {"job_id": other, "robust_acc": 0.4}]


def test_a_final_write_counts_only_while_its_worker_holds_the_job(db):
    with session_scope(db) as s:
        job_id = store_jobs.create_job(s, kind="adversarial_training", spec={}).id
        store_jobs.claim_job(s, job_id=job_id, worker="a", lease_seconds=30)
    with session_scope(db) as s:
        assert not store_jobs.finish_job(s, job_id=job_id, status="succeeded", result={"by": "b"}, worker="b")
        assert store_jobs.get_job(s, job_id=job_id).status == "running"
        assert store_jobs.finish_job(s, job_id=job_id, status="succeeded", result={"by": "a"}, worker="a")
    with session_scope(db) as s:  # ended: a late write of the same worker changes nothing either
        assert not store_jobs.finish_job(s, job_id=job_id, status="failed", error="late", worker="a")
        job = store_jobs.get_job(s, job_id=job_id)
        assert job.status == "succeeded" and job.result == {"by": "a"}


def test_a_deleted_job_asks_its_runner_to_stop(db):
    with session_scope(db) as s:
        assert store_jobs.cancel_requested(s, job_id="no-such-job")


def test_a_failure_quoting_a_nul_or_a_huge_name_is_stored_cut_and_readable(db):
    """A message may quote an uploaded tensor name: PostgreSQL's text refuses NUL, and a name of
    millions of characters would make every read of the job that large."""
    with session_scope(db) as s:
        job_id = store_jobs.create_job(s, kind="model_upload", spec={}).id
        store_jobs.claim_job(s, job_id=job_id, worker="a", lease_seconds=30)
    failure = store_jobs.Failure("ValueError", "weights: unexpected a\x00b, " + "k" * 1_000_000)
    with session_scope(db) as s:
        assert store_jobs.finish_job(s, job_id=job_id, status="failed", error=failure, worker="a")
    with session_scope(db) as s:
        job = store_jobs.get_job(s, job_id=job_id)
        assert job.status == "failed" and job.error.startswith("ValueError: weights: unexpected a\\0b, kkk")
        assert len(job.error) <= store_jobs.ERROR_CHARS and job.error.endswith("(message cut)")
