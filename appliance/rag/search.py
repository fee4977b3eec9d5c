"""Search on a user's behalf (the retrieval debugger's API): its caps and per-user limits, then
the retriever."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from appliance.accounts.limits import ChatLimits
from appliance.errors import TooLarge
from appliance.rag.retrieve import Hit, Retriever
from appliance.threads import lower_priority


class DocumentSearch:
    def __init__(self, retriever: Retriever, limits: ChatLimits, max_collections: int) -> None:
        self._retriever = retriever
        self._limits = limits
        self._max_collections = max_collections
        # One search at a time, on a thread the kernel schedules after generation's: the
        # answers streaming meanwhile need the CPU (two cores: llama.cpp's threads take both)
        self._worker = ThreadPoolExecutor(1, "search", initializer=lower_priority, initargs=(10,))

    def search(self, user: int, query: str, k: int, collections: Sequence[str] = ()) -> list[Hit]:
        """The retriever's hits; 413 past `limits.search_max_collections`, 429 past the
        user's searches a minute or at once (the chat limits, counted apart)."""
        named = list(dict.fromkeys(collections))  # each collection scans once, however named
        if len(named) > self._max_collections:
            raise TooLarge(
                f"{len(named)} collections named; at most {self._max_collections} "
                "(limits.search_max_collections): name fewer, or none to search them all"
            )
        with self._limits.request(user):  # embedding and ranking: CPU the answers need too
            return self._worker.submit(self._retriever.search, query, k, named).result()
