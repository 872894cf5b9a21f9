"""Fault injection for the tests of crash handling: a job's child process crashes on purpose at a
chosen point. Honoured only when ROBUSTLAB_FAULT_DIR is set (tests set it; a deployment never
does): the file `<fault dir>/<job id>` says what to do and when, e.g.

    sigkill@start          SIGKILL before the runner starts
    segfault@epoch:2       a segmentation fault once epoch 2's metrics are reported
    allocate:4000000000@start   allocate and touch 4 GB (past a memory budget: the worker kills it)
    sigkill@finish         SIGKILL after the runner returned, before the job's final write
    error@follower         an exception in each rank beyond 0 of a `gpus` job as its training starts
    hang@epoch:1           sleep for good once epoch 1's checkpoint is out (a hung job: its time limit ends it)

A file whose first line is followed by `once` is removed when it fires, so the next attempt runs.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import time
from pathlib import Path

log = logging.getLogger(__name__)
_HELD: list[bytearray] = []


def fault_for(fault_dir: Path | None, job_id: str) -> tuple[str, str, bool] | None:
    """(what, when, once) for the job, or None."""
    if fault_dir is None:
        return None
    path = Path(fault_dir) / job_id
    if not path.is_file():
        return None
    lines = path.read_text().split()
    what, _, when = lines[0].partition("@")
    return what, when or "start", "once" in lines[1:]


def maybe_fail(fault_dir: Path | None, job_id: str, point: str) -> None:
    """Crash as the job's fault file says, if it names `point`."""
    fault = fault_for(fault_dir, job_id)
    if fault is None or fault[1] != point:
        return
    what, _, once = fault
    if once:
        (Path(fault_dir) / job_id).unlink(missing_ok=True)
    log.warning("job %s: injected fault %s at %s", job_id, what, point)
    if what == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif what == "segfault":
        ctypes.string_at(0)  # reads address 0: SIGSEGV
    elif what.startswith("allocate:"):
        block = bytearray(int(what.split(":", 1)[1]))
        for i in range(0, len(block), 4096):  # touch every page: resident, not just reserved
            block[i] = 1
        _HELD.append(block)  # kept until the process ends (or the worker kills it)
    elif what == "error":
        raise RuntimeError(f"injected error at {point}")
    elif what == "hang":
        while True:
            time.sleep(3600)
    else:
        raise ValueError(f"unknown injected fault {what!r}")
