"""Searches give way to generation: one at a time, on a thread the kernel runs only on CPU
time no other thread wants."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

from appliance.accounts.limits import ChatLimits
from appliance.rag.search import DocumentSearch


class Recorder:
    """Stands for the retriever: notes how many searches run at once and at what priority."""

    def __init__(self) -> None:
        self.running, self.most, self.policy = 0, 0, set[int]()
        self.apart_calls = 0
        self._lock = threading.Lock()

    def apart(self) -> Recorder:
        self.apart_calls += 1
        return self

    def search(self, query: str, k: int, collections: object, reader: object) -> list[object]:
        with self._lock:
            self.running += 1
            self.most = max(self.most, self.running)
            self.policy.add(os.sched_getscheduler(0))
        threading.Event().wait(0.02)  # a search's work; others arrive meanwhile
        with self._lock:
            self.running -= 1
        return []


def test_searches_run_one_at_a_time_at_idle_priority() -> None:
    recorder = Recorder()
    search = DocumentSearch(recorder, ChatLimits(1000, 16), max_collections=50)  # type: ignore[arg-type]
    base = os.getpriority(os.PRIO_PROCESS, 0)
    with ThreadPoolExecutor(4) as clients:
        assert list(clients.map(lambda n: search.search(n % 2, "q", 5), range(12))) == [[]] * 12
    assert recorder.most == 1
    assert recorder.policy == {os.SCHED_IDLE}
    assert recorder.apart_calls == 1  # its vector queries on threads of its own
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # callers: as before
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == base
