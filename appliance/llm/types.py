"""Value types shared by the engine, its backends and its callers."""

from __future__ import annotations

from typing import Literal

import msgspec

Role = Literal["system", "user", "assistant"]
FinishReason = Literal["stop", "length", "cancelled"]


class ChatMessage(msgspec.Struct, frozen=True):
    role: Role
    content: str


class SamplingParams(msgspec.Struct, frozen=True, kw_only=True):
    temperature: float
    top_p: float
    max_tokens: int
    stop: tuple[str, ...] = ()
    seed: int | None = None


class GenerationRequest(msgspec.Struct, frozen=True, kw_only=True):
    messages: tuple[ChatMessage, ...]
    params: SamplingParams
    # Whom it is for: the engine takes turns across users, and keeps (and only ever reuses)
    # a conversation's cached prompt state for the same user and conversation.
    user: str = ""
    conversation: str | None = None
    # The served model's id the caller was told it gets (the OpenAI API's `model`): the
    # request is answered by that model or refused (ModelNotFound), never by another one.
    # None: by whichever model is served when it is submitted.
    model: str | None = None


class QueuedEvent(msgspec.Struct, frozen=True):
    """The request waits for a slot: `ahead` requests will start before it. Sent when it is
    queued and each time that number changes; never after the first token."""

    ahead: int


class TokenEvent(msgspec.Struct, frozen=True):
    """A piece of answer text (one or more tokens, never a split UTF-8 character)."""

    text: str


class DoneEvent(msgspec.Struct, frozen=True, kw_only=True):
    """The last event of every generation that did not fail."""

    finish_reason: FinishReason
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0  # prompt tokens taken from a cache, not evaluated again


Event = QueuedEvent | TokenEvent | DoneEvent


class LoadReport(msgspec.Struct, frozen=True, kw_only=True):
    """What loading the model achieved, for the start-up log and /readyz."""

    gpu_offload_supported: bool
    gpu_layers: int


class EngineInfo(msgspec.Struct, frozen=True, kw_only=True):
    """The engine's state, for /readyz and the logs."""

    model: str
    ready: bool
    load_error: str | None
    queued: int  # waiting for the engine, their clients still there
    busy: bool
    pending: int  # accepted and not yet finished, cancelled ones not yet dropped included
    gpu_offload_supported: bool
    gpu_layers: int
    completed: int
    cancelled: int
    slots: int = 1  # sequences decoded together (llm.parallel)
    slots_busy: int = 0
    cache_entries: int = 0  # conversations' prompt states kept in RAM (llm.prefix_cache_mb)
    cache_bytes: int = 0
    cache_hit_rate: float = 0.0  # of requests that found their conversation's prefix cached
    loading: str | None = None  # the model being loaded to replace this one (the Models page)
