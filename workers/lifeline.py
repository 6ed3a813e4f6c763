"""Tie a child process's life to its parent's, so that `kill -9` of a parent leaves no orphans.

Linux only (prctl PR_SET_PDEATHSIG); elsewhere these are no-ops and the
parent's clean stop is the only way its children end. The signal goes out when
the *thread* that started the child ends, so only a process that starts its
children from its main thread (the supervisor, the RQ worker forking a
work-horse, `make run`) should rely on it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal

_PR_SET_PDEATHSIG = 1

# Resolved once in the parent: a child between fork and exec must not dlopen.
try:
    _prctl = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl
except (OSError, AttributeError):
    _prctl = None


def die_with_parent(parent_pid: int, sig: int = signal.SIGKILL) -> None:
    """In a child: receive `sig` when the parent dies, and if it died already, exit now.

    The check after prctl closes the race: a parent that died between the fork
    and the prctl call would never send the signal, and the child's parent is
    then init (or a subreaper), not `parent_pid`. Safe between fork and exec:
    no allocation, no lock, no import.
    """
    if _prctl is None or not hasattr(os, "getppid"):
        return
    _prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(1)


def child_of_this_process():
    """A Popen `preexec_fn` that ties the child to this process (None where prctl is missing)."""
    if _prctl is None:
        return None
    parent = os.getpid()
    return lambda: die_with_parent(parent)
