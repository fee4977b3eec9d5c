"""Per-user limits on chat (requests a minute, answers at once) and the brake on failed
sign-ins (per account and per address). In memory: one process serves the box."""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterator
from contextlib import contextmanager

from appliance.errors import RateLimited

_MOST_KEYS = 10_000  # accounts and addresses with failures kept before stale ones are dropped


class ChatLimits:
    def __init__(self, per_minute: int, concurrent: int) -> None:
        self._per_minute = per_minute
        self._concurrent = concurrent
        self._recent: dict[object, deque[float]] = defaultdict(deque)
        self._open: dict[object, int] = defaultdict(int)
        self._lock = threading.Lock()

    @contextmanager
    def request(self, user: object) -> Iterator[None]:
        """Counts one chat request of `user`, held open while its answer streams."""
        with self._lock:
            now = time.monotonic()
            recent = self._recent[user]
            while recent and now - recent[0] >= 60:
                recent.popleft()
            if len(recent) >= self._per_minute:
                wait = int(60 - (now - recent[0])) + 1
                raise RateLimited(f"more than {self._per_minute} chat requests a minute; "
                                  f"wait {wait} s", retry_after=wait)  # fmt: skip
            if self._open[user] >= self._concurrent:
                raise RateLimited(f"{self._concurrent} answers of yours are already running; "
                                  "wait for one to finish or stop it", retry_after=2)  # fmt: skip
            recent.append(now)
            self._open[user] += 1
        try:
            yield
        finally:
            with self._lock:
                self._open[user] -= 1


class SignInBrake:
    """After `free` failures within the window, each further try of that account or address
    must wait twice as long as the last (1 s, 2 s, 4 s … at most `longest_s`)."""

    def __init__(self, free: int = 5, window_s: float = 900, longest_s: float = 300) -> None:
        self._free, self._window, self._longest = free, window_s, longest_s
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def check(self, *keys: str) -> None:
        with self._lock:
            wait = max((self._wait(key) for key in keys), default=0.0)
        if wait > 0:
            raise RateLimited(f"too many failed sign-ins; try again in {int(wait) + 1} s",
                              retry_after=int(wait) + 1)  # fmt: skip

    def failed(self, *keys: str) -> None:
        with self._lock:
            now = time.monotonic()
            if len(self._failures) > _MOST_KEYS:  # bounded: forget keys with old failures only
                for stale in [k for k, f in self._failures.items() if now - f[-1] > self._window]:
                    del self._failures[stale]
            for key in keys:
                self._failures[key].append(now)

    def succeeded(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)

    def _wait(self, key: str) -> float:
        now = time.monotonic()
        failures = self._failures.get(key)
        if failures is None:
            return 0.0
        while failures and now - failures[0] > self._window:
            failures.popleft()
        over = len(failures) - self._free
        if over < 0:
            return 0.0
        return max(0.0, failures[-1] + min(2.0**over, self._longest) - now)
