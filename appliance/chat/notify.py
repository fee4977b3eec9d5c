"""What changes for a user while their page is open (an expert's answer): per-user queues
that the page's event stream reads; published from any thread."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_QUEUED = 100  # events a slow page may fall behind by; past that, new ones are dropped

Event = dict[str, Any]
_Subscriber = tuple[asyncio.AbstractEventLoop, "asyncio.Queue[Event]"]


class Notifier:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: dict[int | None, set[_Subscriber]] = {}

    @contextmanager
    def subscribe(self, user_id: int | None) -> Iterator[asyncio.Queue[Event]]:
        """The user's events while the block runs (on the event loop that calls it)."""
        queue: asyncio.Queue[Event] = asyncio.Queue(_QUEUED)
        subscriber = (asyncio.get_running_loop(), queue)
        with self._lock:
            self._subscribers.setdefault(user_id, set()).add(subscriber)
        try:
            yield queue
        finally:
            with self._lock:
                self._subscribers.get(user_id, set()).discard(subscriber)

    def publish(self, user_id: int | None, event: Event) -> None:
        with self._lock:
            subscribers = list(self._subscribers.get(user_id, ()))
        for loop, queue in subscribers:
            # a loop that has closed: nobody listens there any more
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_put, queue, event)


def _put(queue: asyncio.Queue[Event], event: Event) -> None:
    if not queue.full():
        queue.put_nowait(event)
