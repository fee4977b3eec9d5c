"""Conversations' prompt states kept in RAM while their slot serves someone else.

An entry belongs to one (user, conversation) and is only ever handed back for that same pair,
and only when its tokens begin the new prompt: one user's state is never restored into another
user's request, even when their messages are the same.
"""

from __future__ import annotations

import hashlib
from array import array
from collections import OrderedDict
from collections.abc import Sequence

import msgspec

Owner = tuple[str, str | None]  # (user, conversation)


def prefix_hash(tokens: Sequence[int]) -> str:
    return hashlib.blake2b(array("i", tokens).tobytes(), digest_size=16).hexdigest()


class Saved(msgspec.Struct, frozen=True):
    owner: Owner
    tokens: tuple[int, ...]
    digest: str  # prefix_hash(tokens), checked again before the state is restored
    state: bytes


class PrefixCache:
    """Least recently saved out first, within `capacity` bytes of state."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[Owner, Saved] = OrderedDict()
        self.bytes = 0
        self.lookups = self.hits = 0

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, owner: Owner, tokens: Sequence[int], state: bytes) -> bool:
        """Keep the state (replacing the owner's older one); False when it cannot fit."""
        self._drop(owner)
        if len(state) > self.capacity:
            return False
        while self.bytes + len(state) > self.capacity:
            self._drop(next(iter(self._entries)))
        self._entries[owner] = Saved(owner, tuple(tokens), prefix_hash(tokens), state)
        self.bytes += len(state)
        return True

    def take(self, owner: Owner, prompt: Sequence[int]) -> Saved | None:
        """The owner's saved state, removed from the cache, if it shares the prompt's start
        (at least its first token); counted as a hit or a miss."""
        self.lookups += 1
        saved = self._entries.get(owner)
        if saved is None or saved.owner != owner or not prompt or not saved.tokens:
            return None
        if saved.tokens[0] != prompt[0] or prefix_hash(saved.tokens) != saved.digest:
            return None
        self._drop(owner)
        self.hits += 1
        return saved

    def _drop(self, owner: Owner) -> None:
        saved = self._entries.pop(owner, None)
        if saved is not None:
            self.bytes -= len(saved.state)
