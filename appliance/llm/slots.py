"""The engine's slots and whose KV each holds: which free slot a request gets, and what of its
prompt is already there (its own earlier turns, from the slot or the RAM cache, and the system
prompt everyone shares). Owned by the engine thread."""

from __future__ import annotations

import logging
from typing import Any

from appliance.llm.context import Context
from appliance.llm.engine import Job
from appliance.llm.kvcache import Owner, PrefixCache, Saved
from appliance.llm.prompt import common_prefix
from appliance.llm.text import StopScanner

log = logging.getLogger(__name__)

_WORTH_SAVING = 16  # tokens beyond the shared system prompt before a slot's KV is saved
_SYSTEM_MOST = 64 << 20  # bytes: the most the shared system prompt's state may take


class Slot:
    """One sequence of the context, and the request it serves (if any)."""

    def __init__(self, seq: int) -> None:
        self.seq = seq
        self.owner: Owner | None = None  # whose KV `tokens` is
        self.tokens: list[int] = []  # the tokens whose KV the sequence holds, positions 0..
        self.used = 0.0  # when it last served, for picking the slot to reuse
        self.job: Job | None = None
        self.prompt: list[int] = []
        self.shares = 0  # read this far, the prompt's KV is saved as the shared system prompt
        self.sampler: Any = None
        self.scanner = StopScanner(())
        self.next = -1  # the token sampled last, not evaluated yet
        self.count = self.budget = self.cached = 0
        self.out = -1  # the index of its logits in the batch just decoded
        self.started = 0.0

    @property
    def answering(self) -> bool:
        return self.job is not None and len(self.tokens) >= len(self.prompt)


class Slots:
    """The slots, the RAM cache of conversations' states, and the shared system prompt's."""

    def __init__(self, count: int, cache: PrefixCache) -> None:
        self.all = [Slot(i) for i in range(count)]
        self.cache = cache
        self._system: tuple[list[int], bytes] = ([], b"")
        self.admitted = self.reused = 0

    def place(self, llama: Context, owner: Owner, prompt: list[int], shared: int,
              reuse: bool) -> Slot:  # fmt: skip
        """A free slot for `owner`'s prompt, holding as much of it as can be had: the free
        slot with its longest prefix for the same owner, else the slot unused longest (its
        state saved first) with the owner's state from RAM; then the shared system prompt
        (`shared` tokens) where the slot lacks it. `reuse` False: nothing reused."""
        free = [s for s in self.all if s.job is None]
        own = [s for s in free if s.owner == owner] if reuse else []
        if own:
            slot = max(own, key=lambda s: common_prefix(s.tokens, prompt))
        else:
            slot = min(free, key=lambda s: s.used)
            saved = self.cache.take(owner, prompt) if reuse else None
            self._evict(llama, slot)
            if saved is not None:
                self._restore(llama, slot, saved)
        slot.owner = owner
        keep = min(common_prefix(slot.tokens, prompt), len(prompt) - 1) if reuse else 0
        self.truncate(llama, slot, keep)
        slot.shares = 0
        if reuse and 0 < shared < len(prompt):
            self._share_system(llama, slot, prompt[:shared])
        self.admitted += 1
        self.reused += len(slot.tokens) > shared  # its own earlier turns, not just the system
        return slot

    def hit_rate(self) -> float:
        return round(self.reused / self.admitted, 4) if self.admitted else 0.0

    def read(self, llama: Context, slot: Slot, tokens: list[int]) -> None:
        """The slot's sequence now holds `tokens` more; where they complete the shared system
        prompt, its state is kept for everyone."""
        slot.tokens += tokens
        if slot.shares and len(slot.tokens) == slot.shares:
            slot.shares = 0
            if self._system[0] != slot.tokens and (state := llama.state(slot.seq, _SYSTEM_MOST)):
                self._system = (list(slot.tokens), state)

    def truncate(self, llama: Context, slot: Slot, keep: int) -> None:
        if keep < len(slot.tokens):
            del slot.tokens[llama.keep(slot.seq, keep):]

    def clear(self, llama: Context, slot: Slot) -> None:
        llama.clear(slot.seq)
        slot.tokens, slot.owner, slot.shares = [], None, 0

    def _share_system(self, llama: Context, slot: Slot, system: list[int]) -> None:
        """Copy the shared system prompt's KV into a slot that lacks it; else have this slot
        save it once it has read that far."""
        if len(slot.tokens) >= len(system):
            return
        tokens, state = self._system
        if tokens == system:
            self.truncate(llama, slot, 0)
            if llama.restore(slot.seq, state):
                slot.tokens = list(system)
                return
        slot.shares = len(system)

    def _evict(self, llama: Context, slot: Slot) -> None:
        """Empty the slot, saving its owner's KV into the RAM cache when worth keeping."""
        worth = len(self._system[0]) + _WORTH_SAVING
        if (slot.owner is not None and len(slot.tokens) > worth and self.cache.capacity
                and (state := llama.state(slot.seq, self.cache.capacity))):  # fmt: skip
            self.cache.put(slot.owner, slot.tokens, state)
        self.clear(llama, slot)

    def _restore(self, llama: Context, slot: Slot, saved: Saved) -> None:
        if llama.restore(slot.seq, saved.state):
            slot.tokens = list(saved.tokens)
        else:  # no room for it: read the prompt again
            log.info("a saved prompt state of %d tokens could not be restored", len(saved.tokens))
