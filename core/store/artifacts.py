"""Artifacts (checkpoints, images, reports) in an fsspec file system at ARTIFACT_URL — a local
folder by default, any fsspec URL (s3://bucket/prefix) for a multi-node deployment — each
recorded in the store with its size and SHA-256."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import uuid
from functools import partial
from pathlib import Path

import fsspec
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from core.contract.checkpoint import PREVIOUS
from core.store.orm import Artifact

log = logging.getLogger(__name__)
_PENDING = "robustlab.removals_after_commit"
CONTENT_TYPES = {".png": "image/png", ".json": "application/json", ".safetensors": "application/octet-stream"}


class ArtifactStore:
    """Bytes under a root URL; keys are relative paths like `jobs/<id>/adv.png`."""

    def __init__(self, root_url: str):
        self.fs, root = fsspec.core.url_to_fs(root_url)
        self.root = root.rstrip("/")
        self.fs.makedirs(self.root, exist_ok=True)
        self.protocol = self.fs.protocol if isinstance(self.fs.protocol, str) else self.fs.protocol[0]

    def _path(self, key: str) -> str:
        if key.startswith("/") or ".." in Path(key).parts:
            raise ValueError(f"artifact key must be a relative path inside the store, got {key!r}")
        return f"{self.root}/{key}"

    def uri(self, key: str) -> str:
        path = self._path(key)
        return path if self.protocol == "file" else f"{self.protocol}://{path}"

    def put_bytes(self, key: str, data: bytes) -> str:
        """Store `data` at `key`, whole or not at all (an object store's put is; in a local folder
        the bytes go to a temporary name that is renamed)."""
        path = self._path(key)
        self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        if self.protocol != "file":
            with self.fs.open(path, "wb") as f:
                f.write(data)
            return self.uri(key)
        local = Path(self.fs._strip_protocol(path))
        part = local.with_name(f".{local.name}.part")
        part.write_bytes(data)
        os.replace(part, local)
        return self.uri(key)

    def get_bytes(self, key: str) -> bytes:
        with self.fs.open(self._path(key), "rb") as f:
            return f.read()

    def delete(self, key: str) -> None:
        """Remove the bytes at `key` (nothing if there are none)."""
        path = self._path(key)
        if self.fs.exists(path):
            self.fs.rm(path)

    def delete_tree(self, prefix: str) -> None:
        """Remove every file under `prefix` (nothing if there is none)."""
        path = self._path(prefix)
        if self.fs.exists(path):
            self.fs.rm(path, recursive=True)

    def all_keys(self) -> list[str]:
        """Every file's key in the store."""
        return sorted(p[len(self.root) + 1 :] for p in self.fs.find(self.root) if not p.endswith("/"))

    def modified(self, key: str) -> float:
        """The file's last modification as a POSIX time (0 when the file system does not say)."""
        try:
            return self.fs.modified(self._path(key)).timestamp()
        except (NotImplementedError, AttributeError, OSError):
            return 0.0

    def exists(self, key: str) -> bool:
        return self.fs.exists(self._path(key))

    def upload_folder(self, folder: Path, prefix: str, *, previous: bool = True) -> None:
        """Copy the files of `folder` under `prefix`: those of its `.prev/` (a checkpoint's
        previous epoch; unless `previous` is False) first, then the others, JSON files last (a
        checkpoint's JSON names the tensor files it goes with)."""
        for sub, remote in ((folder / PREVIOUS, f"{prefix}/{PREVIOUS}"), (folder, prefix)):
            if not sub.is_dir() or (sub != folder and not previous):
                continue
            files = [p for p in sub.iterdir() if p.is_file() and not p.name.startswith(".")]
            for path in sorted(files, key=lambda p: (p.suffix == ".json", p.name)):
                self.put_bytes(f"{remote}/{path.name}", path.read_bytes())

    def download_folder(self, prefix: str, folder: Path) -> bool:
        """Copy every file under `prefix` (and its `.prev/`) into `folder`, JSON files last, each
        written whole or not at all; False if there is none."""
        base = self._path(prefix)
        if not self.fs.exists(base):
            return False
        for remote_dir, local in ((f"{base}/{PREVIOUS}", folder / PREVIOUS), (base, folder)):
            if not self.fs.isdir(remote_dir):
                continue
            files = [e["name"] for e in self.fs.ls(remote_dir, detail=True) if e["type"] == "file"]
            local.mkdir(parents=True, exist_ok=True)
            for remote in sorted(files, key=lambda n: (n.endswith(".json"), n)):
                target = local / remote.rstrip("/").rsplit("/", 1)[-1]
                part = target.with_name(f".{target.name}.part")
                with self.fs.open(remote, "rb") as src, open(part, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
                os.replace(part, target)
        return True


def record_artifact(
    session: Session,
    store: ArtifactStore,
    *,
    key: str,
    data: bytes,
    type: str,
    job_id: str | None = None,
    owner_id: str | None = None,
) -> Artifact:
    """Write `data` at `key` and record it (`uri` holds the key inside the store); a job's
    artifact follows its job's visibility, one without a job belongs to `owner_id`."""
    store.put_bytes(key, data)
    fields = {
        "type": type,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "owner_id": owner_id,
        "content_type": CONTENT_TYPES.get(Path(key).suffix, "application/octet-stream"),
    }
    row = None  # a job's artifact at a key is recorded once, however often the job runs
    if job_id is not None:
        row = session.scalar(select(Artifact).where(Artifact.job_id == job_id, Artifact.uri == key))
    if row is None:
        row = Artifact(job_id=job_id, uri=key, **fields)
        session.add(row)
    else:
        for name, value in fields.items():
            setattr(row, name, value)
    session.flush()
    return row


def _removals(session: Session, when: str) -> list:
    """The removals waiting for `session`'s transaction to commit or to roll back; each list is
    emptied whichever way the transaction ends."""
    if _PENDING not in session.info:
        pending = session.info[_PENDING] = {"commit": [], "rollback": []}

        def ended(how: str):
            def run(ended_session: Session) -> None:
                if ended_session.in_nested_transaction():  # a savepoint: the transaction goes on
                    return
                actions = list(pending[how])
                pending["commit"].clear()
                pending["rollback"].clear()
                for action in actions:
                    try:
                        action()
                    except Exception:  # nothing points to the file any more: `db gc` collects it
                        log.exception("could not remove %s after the %s", action.args, how)

            return run

        event.listen(session, "after_commit", ended("commit"))
        event.listen(session, "after_rollback", ended("rollback"))
    return session.info[_PENDING][when]


def remove_after_commit(session: Session, store: ArtifactStore, key: str, *, tree: bool = False) -> None:
    """Remove the bytes at `key` (every file under it with `tree`) once `session` commits, and not
    at all if it rolls back: a deletion whose transaction fails leaves its rows with their files. A
    crash between the commit and the removal leaves files nothing points to, which `db gc` collects."""
    _removals(session, "commit").append(partial(store.delete_tree if tree else store.delete, key))


def record_upload(session: Session, store: ArtifactStore, *, owner_id: str, suffix: str, data: bytes) -> Artifact:
    """Store a member's upload under a key of its own and record it; if the transaction rolls back
    (the job it was for is refused: a limit, a quota), its bytes go with the row."""
    key = f"uploads/{owner_id}/{uuid.uuid4().hex}.{suffix}"
    _removals(session, "rollback").append(partial(store.delete, key))  # before the write: a failed flush too
    return record_artifact(session, store, key=key, data=data, type="upload", owner_id=owner_id)


def delete_artifact(session: Session, store: ArtifactStore, *, artifact_id: str) -> None:
    """Delete an artifact's row, and its bytes once that commits (nothing when it is already gone)."""
    row = session.get(Artifact, artifact_id)
    if row is None:
        return
    remove_after_commit(session, store, row.uri)
    session.delete(row)
    session.flush()
