"""Tidying up after jobs that crashed or ended. On each node: the local work folders (and their lock
files) of jobs that have ended or were deleted, and the local copies of uploaded datasets that
were deleted; in the artifact store, once for all nodes: the files nothing points to (an upload cut
short by a killed API process, a `.part` file of a killed writer, removals a crash skipped). The
worker duties run it every `SWEEP_EVERY` seconds; `robustlab db gc` does the store's part by hand.

Only what has been left untouched for `idle_seconds` goes: a job claimed a moment ago, a fetch
under way or a file a writer has not recorded yet is never taken for litter.
"""

from __future__ import annotations

import logging
import re
import shutil
import time
from pathlib import Path

from sqlalchemy.orm import Session

from core.contract.names import FINISHED
from core.store.orm import DatasetRow, Job

log = logging.getLogger(__name__)
SWEEP_EVERY = 3600.0
IDLE_SECONDS = 3600.0
_ID = re.compile(r"\.?([0-9a-f]{32})(\.lock)?")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _litter(folder: Path, gone, idle_seconds: float) -> list[Path]:
    """The entries of `folder` named by an id (`<id>`, `.<id>.lock`) for which `gone(id)`, idle long enough."""
    if not folder.is_dir():
        return []
    now, found = time.time(), []
    for path in folder.iterdir():
        named = _ID.fullmatch(path.name)
        if named and now - path.lstat().st_mtime >= idle_seconds and gone(named.group(1)):
            found.append(path)
    return found


def sweep_work_dir(session: Session, work_dir: Path, *, idle_seconds: float = IDLE_SECONDS) -> list[Path]:
    """Remove this node's folders of ended or deleted jobs and its copies of deleted datasets;
    returns what went. A queued job's folder stays (a crashed run resumes from it here)."""

    def job_over(job_id: str) -> bool:
        job = session.get(Job, job_id)
        return job is None or job.status in FINISHED

    def dataset_gone(dataset_id: str) -> bool:
        return session.get(DatasetRow, dataset_id) is None

    removed = _litter(work_dir, job_over, idle_seconds) + _litter(work_dir / "datasets", dataset_gone, idle_seconds)
    for path in removed:
        _remove(path)
    if removed:
        log.info("removed %d local folder(s) of ended jobs or deleted datasets", len(removed))
    return removed
