"""Processes that do not outlive the process that started them.

`python -m core.lifetime CMD ARG...` runs CMD in its place (exec) after asking Linux to SIGKILL
it when its parent dies: the worker starts a job's child (or torchrun) this way, so a killed
worker leaves no job training on alone beside the attempt that takes the job over."""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # prctl(2)


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (kept across exec); elsewhere nothing."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before the request
        os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    die_with_parent()
    os.execvp(sys.argv[1], sys.argv[1:])
