"""Searches give way to generation: one at a time, on a thread the kernel runs after others."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

from appliance.accounts.limits import ChatLimits
from appliance.rag.search import DocumentSearch


class Recorder:
    """Stands for the retriever: notes how many searches run at once and at what priority."""

    def __init__(self) -> None:
        self.running, self.most, self.nice = 0, 0, set[int]()
        self._lock = threading.Lock()

    def search(self, query: str, k: int, collections: object) -> list[object]:
        with self._lock:
            self.running += 1
            self.most = max(self.most, self.running)
            self.nice.add(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        threading.Event().wait(0.02)  # a search's work; others arrive meanwhile
        with self._lock:
            self.running -= 1
        return []


def test_searches_run_one_at_a_time_below_the_server_s_priority() -> None:
    recorder = Recorder()
    search = DocumentSearch(recorder, ChatLimits(1000, 16), max_collections=50)  # type: ignore[arg-type]
    base = os.getpriority(os.PRIO_PROCESS, 0)
    with ThreadPoolExecutor(4) as clients:
        assert list(clients.map(lambda n: search.search(n % 2, "q", 5), range(12))) == [[]] * 12
    assert recorder.most == 1
    assert recorder.nice == {min(base + 10, 19)}
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == base  # callers: as before
