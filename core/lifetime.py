"""Processes that do not outlive the process that started them.

`python -m core.lifetime PARENT_PID CMD ARG...` runs CMD in its place (exec) after asking Linux to
SIGKILL it when its parent dies: the worker starts a job's child (or torchrun) this way, so a
killed worker leaves no job training on alone beside the attempt that takes the job over."""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # prctl(2)


def die_with_parent(parent: int | None = None) -> None:
    """Ask Linux to SIGKILL this process when its parent dies (kept across exec); elsewhere nothing.
    `parent`: the pid the parent had; if this process' parent is another one by now, the parent
    died before the request, and this process ends at once. (Without it nothing is checked: a
    worker may itself be pid 1, in a container.)"""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if parent is not None and os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGKILL)


def guarded(command: list[str]) -> list[str]:
    """`command`, started so that it dies with the calling process."""
    return [sys.executable, "-m", "core.lifetime", str(os.getpid()), *command]


if __name__ == "__main__":
    die_with_parent(int(sys.argv[1]))
    os.execvp(sys.argv[2], sys.argv[2:])
