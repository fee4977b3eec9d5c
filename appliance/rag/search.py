"""Search on a user's behalf (the retrieval debugger's API): its caps and per-user limits, then
the retriever."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from appliance.accounts.limits import ChatLimits
from appliance.errors import TooLarge
from appliance.rag.retrieve import Hit, Retriever
from appliance.store.audience import Reader
from appliance.threads import idle_priority

_EVERYONES = Reader()  # no groups: the documents of everyone


class DocumentSearch:
    def __init__(self, retriever: Retriever, limits: ChatLimits, max_collections: int) -> None:
        # with vector-query threads of its own: they take the priority of the thread that
        # starts them, and a chat's retrieval must not run on idle-priority ones
        self._retriever = retriever.apart()
        self._limits = limits
        self._max_collections = max_collections
        # One search at a time, on CPU time nothing else wants: the answers streaming
        # meanwhile need the CPU, and so does the event loop that sends them (4 searches
        # back to back at nice +10 still raised a stream's inter-token p95 by ~25%, as the
        # kernel gave them whole slices on generation's core; scripts/bench/flood.py)
        self._worker = ThreadPoolExecutor(1, "search", initializer=idle_priority)

    def search(self, user: int, query: str, k: int, collections: Sequence[str] = (),
               reader: Reader = _EVERYONES) -> list[Hit]:  # fmt: skip
        """The retriever's hits among the documents `reader` may see; 413 past
        `limits.search_max_collections`, 429 past the user's searches a minute or at once
        (the chat limits, counted apart)."""
        named = list(dict.fromkeys(collections))  # each collection scans once, however named
        if len(named) > self._max_collections:
            raise TooLarge(
                f"{len(named)} collections named; at most {self._max_collections} "
                "(limits.search_max_collections): name fewer, or none to search them all"
            )
        with self._limits.request(user):  # embedding and ranking: CPU the answers need too
            return self._worker.submit(self._retriever.search, query, k, named, reader).result()
