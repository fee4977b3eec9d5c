"""Thread priorities: generation first, everything else after it (Linux nice is per thread)."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import threading


def lower_priority(steps: int) -> None:
    """Renice the calling thread `steps` below where it is (threads it starts later inherit
    that); lowering needs no privilege. Where the system cannot, it stays as it is."""
    thread = threading.get_native_id()
    with contextlib.suppress(OSError):
        now = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(now + steps, 19))


def idle_priority() -> None:
    """Run the calling thread (and threads it starts later) on CPU time no other thread wants
    (SCHED_IDLE): a thread of normal priority that wakes on its CPU takes it at once, where a
    thread of lower nice, once picked, still keeps the CPU for a whole slice (~3 ms). Where
    the system has no such policy, the lowest nice instead."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (OSError, AttributeError):
        lower_priority(19)


def name_thread(name: str) -> None:
    """Give the calling thread `name` in the system's view (`top -H`, /proc/.../comm; 15
    bytes at most); threads it starts later are named so too."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME
