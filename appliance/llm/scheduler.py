"""Who gets the next free slot: turns across users, then oldest first; and how long to wait.

Pure bookkeeping, owned by the engine thread (the web side only reads `len`): a user with
twenty requests queued gets one slot in turn with everyone else, not twenty ahead of them.
"""

from __future__ import annotations

import itertools
import math
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Generic, TypeVar

J = TypeVar("J")
_USERS_REMEMBERED = 4096


class FairQueue(Generic[J]):
    """Waiting requests by user. The next one is the oldest request of the user who was
    admitted longest ago (never: first); `dropped(job)` says a waiting request was cancelled."""

    def __init__(self, user_of: Callable[[J], str], dropped: Callable[[J], bool]) -> None:
        self._user_of = user_of
        self._dropped = dropped
        self._waiting: dict[str, deque[J]] = {}
        self._served: OrderedDict[str, int] = OrderedDict()  # user -> admission turn
        self._turns = itertools.count(1)

    def push(self, job: J) -> None:
        self._waiting.setdefault(self._user_of(job), deque()).append(job)

    def __len__(self) -> int:
        """Waiting requests still wanted."""
        return sum(not self._dropped(j) for jobs in list(self._waiting.values()) for j in jobs)

    def held(self) -> int:
        """Requests held, those cancelled but not yet purged included."""
        return sum(len(jobs) for jobs in list(self._waiting.values()))

    def pop(self) -> J | None:
        """The next request to admit (None: nobody waits); the user's turn is spent. Cancelled
        requests are skipped and kept for `purge`, so each still gets its end."""
        live = {u: j for u, jobs in self._waiting.items() if (j := self._first_live(jobs))}
        if not live:
            return None
        user = min(live, key=lambda u: self._served.get(u, 0))
        job = live[user]
        self._waiting[user].remove(job)
        if not self._waiting[user]:
            del self._waiting[user]
        self._served[user] = next(self._turns)
        self._served.move_to_end(user)
        if len(self._served) > _USERS_REMEMBERED:
            self._served.popitem(last=False)
        return job

    def _first_live(self, jobs: deque[J]) -> J | None:
        return next((j for j in jobs if not self._dropped(j)), None)

    def purge(self) -> list[J]:
        """Forget cancelled requests; returns them, so each still gets its end."""
        gone: list[J] = []
        for user in list(self._waiting):
            kept: deque[J] = deque()
            for job in self._waiting[user]:  # each job's flag read once
                (gone if self._dropped(job) else kept).append(job)
            if kept:
                self._waiting[user] = kept
            else:
                del self._waiting[user]
        return gone

    def drain(self) -> list[J]:
        """Every request held, cancelled or not; the queue is left empty."""
        jobs = [j for queued in self._waiting.values() for j in queued]
        self._waiting.clear()
        return jobs

    def order(self) -> list[J]:
        """The waiting requests in the order they will be admitted, as things stand."""
        served = dict(self._served)
        waiting = {u: deque(j for j in jobs if not self._dropped(j))
                   for u, jobs in self._waiting.items()}  # fmt: skip
        turn = next(self._turns)  # later than any real turn; the counter only needs to grow
        out: list[J] = []
        while waiting := {u: jobs for u, jobs in waiting.items() if jobs}:
            user = min(waiting, key=lambda u: served.get(u, 0))
            out.append(waiting[user].popleft())
            turn += 1
            served[user] = turn
        return out


class Pace:
    """How long requests hold a slot, recently: for a Retry-After that means something."""

    def __init__(self, slots: int, first_guess_s: float = 5.0) -> None:
        self._slots = slots
        self._mean = first_guess_s
        self._seen = 0

    def record(self, seconds: float) -> None:
        self._seen += 1
        weight = max(1 / self._seen, 0.2)  # the mean of the first few, then a moving average
        self._mean += weight * (seconds - self._mean)

    def retry_after(self) -> int:
        """Seconds until a place in a full queue is likely to free: one answer's end, with
        the slots ending theirs in turn."""
        return max(1, min(300, math.ceil(self._mean / self._slots)))
