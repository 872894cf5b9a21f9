"""The privacy rule in the store (core/store/privacy.py): which jobs and models are private, and a
runner that deletes only the raw upload it was handed to consume."""

from __future__ import annotations

import pytest

from core.contract.job_specs import DatasetUploadSpec, ModelUploadSpec
from core.contract.presets import train_preset
from core.contract.specs import DataSpec, ModelSpec
from core.jobs.context import JobContext
from core.jobs.model_cache import ModelCache
from core.store import jobs as store_jobs
from core.store.artifacts import ArtifactStore, record_artifact
from core.store.db import session_scope
from core.store.keys import ensure_user
from core.store.migrate import upgrade
from core.store.orm import Artifact
from core.store.privacy import consume_upload
from core.store.registry import register_model


@pytest.fixture
def store(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(url)
    with session_scope(url) as s:
        alice, bob = (ensure_user(s, name=n, role="member").id for n in ("alice", "bob"))
    return url, ArtifactStore(str(tmp_path / "artifacts")), alice, bob, tmp_path


def test_a_job_reading_or_making_private_data_is_private_and_so_is_its_model(store):
    url, artifacts, alice, _, _ = store
    with session_scope(url) as s:
        upload = record_artifact(s, artifacts, key="uploads/a/w", data=b"w", type="upload", owner_id=alice).id
        registers = store_jobs.create_job(
            s,
            kind="model_upload",
            owner_id=alice,
            spec=ModelUploadSpec(weights_artifact_id=upload, model=ModelSpec(), data=DataSpec()).model_dump(),
        )
        makes = store_jobs.create_job(s, kind="dataset_upload", spec={"archive_artifact_id": upload, "name": "d"})
        plain = store_jobs.create_job(s, kind="adversarial_training", spec=train_preset("smoke").model_dump())
        reads = store_jobs.create_job(
            s, kind="image_attack", spec={"model_id": "m", "input_artifact_id": upload}, owner_id=alice
        )
        assert (registers.private, makes.private, plain.private, reads.private) == (False, True, False, True)
        fields = {"kind": "classifier", "dataset": "d", "architecture": "a", "activation": "r", "recipe": {}}
        assert register_model(s, name="x", job_id=reads.id, checkpoint_uri="c/1", summary={}, **fields).private
        assert not register_model(s, name="y", job_id=plain.id, checkpoint_uri="c/2", summary={}, **fields).private


def context(url, artifacts, job_id, folder) -> JobContext:
    from contextlib import contextmanager

    @contextmanager
    def session():
        with session_scope(url) as s:
            yield s

    return JobContext(
        job_id=job_id, session=session, store=artifacts, work_dir=folder, models=ModelCache(1), device="cpu"
    )


def test_a_runner_deletes_only_the_raw_upload_of_its_jobs_owner(store):
    url, artifacts, alice, bob, folder = store
    with session_scope(url) as s:
        trained = store_jobs.create_job(s, kind="adversarial_training", spec={}, owner_id=alice)
        checkpoint = record_artifact(s, artifacts, key="jobs/t/model", data=b"m", type="checkpoint", job_id=trained.id)
        alices = record_artifact(s, artifacts, key="uploads/a/z", data=b"z", type="upload", owner_id=alice)
        bobs = record_artifact(s, artifacts, key="uploads/b/z", data=b"z", type="upload", owner_id=bob)
        ids = {"checkpoint": checkpoint.id, "alices": alices.id, "bobs": bobs.id}
        job = store_jobs.create_job(
            s, kind="dataset_upload", spec=DatasetUploadSpec(archive_artifact_id=checkpoint.id, name="d").model_dump()
        )
        job.owner_id = bob
        s.flush()
        ctx = context(url, artifacts, job.id, folder)
        for name in ("checkpoint", "alices"):  # someone else's: neither read nor deleted
            with pytest.raises(ValueError, match="not an upload this job may consume"):
                ctx.upload_to_consume(s, ids[name])
            assert not consume_upload(s, artifacts, artifact_id=ids[name], job=job)
            assert s.get(Artifact, ids[name]) is not None and artifacts.exists(s.get(Artifact, ids[name]).uri)
        assert ctx.upload_to_consume(s, ids["bobs"]) == "uploads/b/z"
        assert consume_upload(s, artifacts, artifact_id=ids["bobs"], job=job)
        assert s.get(Artifact, ids["bobs"]) is None and artifacts.exists("uploads/b/z")  # until the commit
    assert not artifacts.exists("uploads/b/z")


def test_the_quality_classifier_is_a_public_undefended_one(store):
    """The DDPM's sample quality names its classifier in a result others may read: the best public
    plain classifier of the dataset, never a member's private one nor a defended one (no weights)."""
    from core.jobs.diffusion_runners import quality_classifier

    url, artifacts, alice, _, folder = store
    fields = {"kind": "classifier", "dataset": "d", "architecture": "a", "activation": "r", "owner_id": alice}
    with session_scope(url) as s:
        public = register_model(s, name="p", checkpoint_uri="c/p", summary={"clean_acc": 0.7}, recipe={}, **fields)
        private = register_model(s, name="q", checkpoint_uri="c/q", summary={"clean_acc": 0.9}, recipe={}, **fields)
        private.private = True
        defense = {"defense": {"classifier_id": public.id}}
        register_model(s, name="r", checkpoint_uri="c/r", summary={"clean_acc": 0.95}, recipe=defense, **fields)
        job_id, public_id = store_jobs.create_job(s, kind="ddpm_training", spec={}).id, public.id
    ctx = context(url, artifacts, job_id, folder)
    asked = []
    ctx.models.get = lambda ident, uri, *_: asked.append((ident, uri)) or "weights"
    assert quality_classifier(ctx, "d") == (public_id, "weights")
    assert asked == [(public_id, "c/p")]
    assert quality_classifier(ctx, "other") == (None, None)


def test_deleting_a_job_that_never_consumed_its_upload_deletes_the_upload(store):
    """A model upload cancelled while queued (or given up) keeps its raw upload; deleting the job
    takes it too, unless another job names it. Before, the private bytes stayed for good."""
    from core.store.deletion import delete_job

    url, artifacts, alice, _, _ = store
    with session_scope(url) as s:
        ups = [
            record_artifact(s, artifacts, key=f"uploads/a/{i}", data=b"w", type="upload", owner_id=alice).id
            for i in range(2)
        ]
        jobs = []
        for upload in (ups[0], ups[1], ups[1]):  # the second upload is named by two jobs
            spec = ModelUploadSpec(weights_artifact_id=upload, model=ModelSpec(), data=DataSpec()).model_dump()
            jobs.append(store_jobs.create_job(s, kind="model_upload", owner_id=alice, spec=spec).id)
            store_jobs.request_cancel(s, job_id=jobs[-1])  # queued: cancelled at once
    with session_scope(url) as s:
        delete_job(s, artifacts, job_id=jobs[0])
        delete_job(s, artifacts, job_id=jobs[1])
    with session_scope(url) as s:
        assert s.get(Artifact, ups[0]) is None and not artifacts.exists("uploads/a/0")
        assert s.get(Artifact, ups[1]) is not None and artifacts.exists("uploads/a/1")  # job 3 names it
        delete_job(s, artifacts, job_id=jobs[2])
    with session_scope(url) as s:
        assert s.get(Artifact, ups[1]) is None and not artifacts.exists("uploads/a/1")


def test_a_job_whose_files_an_unfinished_job_uses_is_not_deleted(store):
    """Bob's queued attack reads the image Alice's finished job wrote: deleting her job waits for
    his to end (before, the file went and his job failed in the worker)."""
    from core.contract.job_specs import ImageAttackSpec
    from core.store.deletion import InUse, delete_job

    url, artifacts, alice, bob, _ = store
    with session_scope(url) as s:
        made = store_jobs.create_job(s, kind="image_attack", owner_id=alice, spec={}).id
        store_jobs.finish_job(s, job_id=made, status="succeeded", result={})
        image = record_artifact(s, artifacts, key=f"jobs/{made}/input.png", data=b"png", type="image", job_id=made).id
        spec = ImageAttackSpec(model_id="m", input_artifact_id=image).model_dump(mode="json")
        reader = store_jobs.create_job(s, kind="image_attack", owner_id=bob, spec=spec).id
    with session_scope(url) as s, pytest.raises(InUse) as refused:
        delete_job(s, artifacts, job_id=made)
    assert refused.value.blockers == [("job", reader)]
    with session_scope(url) as s:
        store_jobs.request_cancel(s, job_id=reader)
    with session_scope(url) as s:
        delete_job(s, artifacts, job_id=made)
    with session_scope(url) as s:
        assert s.get(Artifact, image) is None and not artifacts.exists(f"jobs/{made}/input.png")
