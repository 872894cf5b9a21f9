"""Upgrading a store keeps every row that points at a job: SQLite's batch migrations rebuild the
`jobs` table, and with foreign keys on that rebuild cut every artifact, model and metric off it."""

from __future__ import annotations

import json

import sqlalchemy as sa

from api.access import artifact_visible
from api.deps import Caller
from core.store.db import session_scope
from core.store.migrate import upgrade
from core.store.orm import Artifact, Job, MetricPoint, RegisteredModel

NOW = "2026-11-01 00:00:00"


def _old_store(tmp_path, revision: str) -> str:
    """A SQLite store at `revision` holding one job with an artifact, a model and a metric point."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, revision)
    engine = sa.create_engine(url)
    columns = {c["name"] for c in sa.inspect(engine).get_columns("jobs")}
    job = {
        "id": "J",
        "kind": "image_attack",
        "status": "succeeded",
        "queue": "interactive",
        "spec": "{}",
        "progress": 1.0,
        "message": "",
        "attempts": 1,
        "cancel_requested": 0,
        "created_at": NOW,
        "updated_at": NOW,
    }
    job = {k: v for k, v in job.items() if k in columns}
    with engine.begin() as c:
        c.execute(sa.text(f"INSERT INTO jobs ({', '.join(job)}) VALUES ({', '.join(':' + k for k in job)})"), job)
        c.execute(
            sa.text(
                "INSERT INTO artifacts (id, job_id, uri, type, content_type, size, sha256, created_at) "
                "VALUES ('A', 'J', 'jobs/J/adversarial.png', 'image', 'image/png', 1, 'x', :t)"
            ),
            {"t": NOW},
        )
        c.execute(
            sa.text(
                "INSERT INTO models (id, kind, name, job_id, dataset, architecture, activation, recipe, "
                "checkpoint_uri, summary, created_at) VALUES ('M', 'classifier', 'm', 'J', 'digits', "
                "'small_cnn', 'relu', '{}', 'jobs/J/checkpoint', '{}', :t)"
            ),
            {"t": NOW},
        )
        c.execute(
            sa.text(
                "INSERT INTO metric_points (job_id, step, name, value, created_at) VALUES ('J', 1, 'loss', 0.5, :t)"
            ),
            {"t": NOW},
        )
    engine.dispose()
    return url


def test_upgrading_from_the_first_revision_keeps_every_link_to_a_job(tmp_path):
    url = _old_store(tmp_path, "0001")
    upgrade(url)
    with session_scope(url) as s:
        assert s.get(Artifact, "A").job_id == "J" and s.get(RegisteredModel, "M").job_id == "J"
        assert s.query(MetricPoint).filter_by(job_id="J").count() == 1


def test_links_cut_by_an_earlier_upgrade_are_recovered_from_the_uris(tmp_path):
    url = _old_store(tmp_path, "0006")
    engine = sa.create_engine(url)
    with engine.begin() as c:  # what the batch migrations did to a store upgraded before the fix
        c.execute(sa.text("UPDATE artifacts SET job_id = NULL"))
        c.execute(sa.text("UPDATE models SET job_id = NULL"))
    engine.dispose()
    upgrade(url)
    with session_scope(url) as s:
        assert s.get(Artifact, "A").job_id == "J" and s.get(RegisteredModel, "M").job_id == "J"


def test_a_jobs_file_without_its_job_link_is_no_one_elses(tmp_path):
    """An artifact under `jobs/` whose job link is lost is not taken for a shared import."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(url)
    member = Caller(key_id="k", user_id="u", name="bob", role="member")
    admin = Caller(key_id="k2", user_id="a", name="root", role="admin")
    with session_scope(url) as s:
        lost = Artifact(id="A", uri="jobs/J/adversarial.png", type="image", size=1, sha256="x")
        imported = Artifact(id="B", uri="imports/model.safetensors", type="checkpoint", size=1, sha256="x")
        assert not artifact_visible(s, member, lost) and artifact_visible(s, admin, lost)
        assert artifact_visible(s, member, imported)


def test_jobs_and_models_of_before_privacy_that_read_uploaded_data_become_private(tmp_path):
    """0005 marked private only the kinds that make or read private data by themselves: a training
    on an uploaded dataset, its model and an evaluation of that model stayed shared until 0008."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0004")
    engine = sa.create_engine(url)
    train = json.dumps({"data": {"name": "uploaded", "dataset_id": "D"}})
    rows = [("T", "adversarial_training", train), ("E", "attack_evaluation", json.dumps({"model_id": "M"}))]
    rows.append(("O", "attack_evaluation", json.dumps({"model_id": "N"})))
    with engine.begin() as c:
        for job_id, kind, spec in rows:
            c.execute(
                sa.text(
                    "INSERT INTO jobs (id, kind, status, queue, spec, progress, message, attempts, cancel_requested, "
                    "created_at, updated_at) VALUES (:id, :kind, 'succeeded', 'train', :spec, 1, '', 1, 0, :t, :t)"
                ),
                {"id": job_id, "kind": kind, "spec": spec, "t": NOW},
            )
        for model_id, job_id, dataset in (("M", "T", "uploaded:D"), ("N", None, "digits")):
            c.execute(
                sa.text(
                    "INSERT INTO models (id, kind, name, job_id, dataset, architecture, activation, recipe, "
                    "checkpoint_uri, summary, created_at) VALUES (:id, 'classifier', 'm', :job, :data, "
                    "'small_cnn', 'relu', '{}', 'x', '{}', :t)"
                ),
                {"id": model_id, "job": job_id, "data": dataset, "t": NOW},
            )
    engine.dispose()
    upgrade(url)
    with session_scope(url) as s:
        assert s.get(Job, "T").private and s.get(RegisteredModel, "M").private and s.get(Job, "E").private
        assert not s.get(Job, "O").private and not s.get(RegisteredModel, "N").private
