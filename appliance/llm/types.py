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


class TokenEvent(msgspec.Struct, frozen=True):
    """A piece of answer text (one or more tokens, never a split UTF-8 character)."""

    text: str


class DoneEvent(msgspec.Struct, frozen=True, kw_only=True):
    """The last event of every generation that did not fail."""

    finish_reason: FinishReason
    prompt_tokens: int
    completion_tokens: int


Event = TokenEvent | DoneEvent


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
