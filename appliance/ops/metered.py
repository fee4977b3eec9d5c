"""An Engine that measures what passes through it: time to first token, the time between
tokens, tokens in and out, the prefix cache's hits; the engine itself is untouched."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from appliance.llm.engine import Engine, Generation
from appliance.llm.types import (
    ChatMessage,
    DoneEvent,
    EngineInfo,
    Event,
    GenerationRequest,
    TokenEvent,
)
from appliance.ops.metrics import Metrics


class MeteredEngine:
    def __init__(self, engine: Engine, metrics: Metrics) -> None:
        self._engine, self._metrics = engine, metrics
        metrics.watch_engine(engine.info)

    def submit(self, request: GenerationRequest) -> Generation:
        return _Metered(self._engine.submit(request), self._metrics)

    def cancel(self, generation_id: str) -> None:
        self._engine.cancel(generation_id)

    def info(self) -> EngineInfo:
        return self._engine.info()

    def count_tokens(self, messages: tuple[ChatMessage, ...]) -> int:
        return self._engine.count_tokens(messages)

    def context_size(self) -> int:
        return self._engine.context_size()

    def __getattr__(self, name: str) -> Any:
        """What else the engine offers (waiting for its model, say) passes through."""
        return getattr(self._engine, name)


class _Metered:
    def __init__(self, generation: Generation, metrics: Metrics) -> None:
        self._generation, self._metrics = generation, metrics
        self.id = generation.id
        self._submitted = time.perf_counter()

    def cancel(self) -> None:
        self._generation.cancel()

    async def __aiter__(self) -> AsyncIterator[Event]:
        metrics, last, ended = self._metrics, None, "cancelled"
        try:
            async for event in self._generation:
                if isinstance(event, TokenEvent):
                    now = time.perf_counter()
                    if last is None:
                        metrics.first_token.observe(now - self._submitted)
                    else:
                        metrics.inter_token.observe(now - last)
                    last = now
                elif isinstance(event, DoneEvent):
                    ended = ""
                    metrics.generation(
                        event.finish_reason,
                        event.prompt_tokens,
                        event.cached_tokens,
                        event.completion_tokens,
                    )
                yield event
        except Exception:
            ended = "error"
            raise
        finally:
            if ended:  # no DoneEvent: the caller went away, or the engine failed
                metrics.generations.labels(ended).inc()
