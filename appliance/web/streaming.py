"""Answering with a stream: the first event before the headers, error events, clean endings."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any, TypeVar

from litestar import Request
from litestar.background_tasks import BackgroundTask
from litestar.response import Stream

from appliance.web.disconnect import until_disconnect
from appliance.web.sse import SSE_HEADERS

T = TypeVar("T")


async def first_event(request: Request[Any, Any, Any], events: AsyncGenerator[T, None]) -> T:
    """Wait for the first event (a queued request may wait long), watching for a disconnect.

    Errors raised before it (bad request, busy engine) thus become HTTP errors, not a broken
    stream; and a client that leaves while its request is queued cancels it.
    """

    async def pull() -> T:
        return await anext(events)

    try:
        return await until_disconnect(request, pull())
    except BaseException:
        await events.aclose()
        raise


def event_stream(body: AsyncGenerator[bytes, None]) -> Stream:
    """A text/event-stream response that closes `body` however the response ends.

    Litestar cancels the sending task on a disconnect but never closes the iterator; the
    background task does, so the generators' `finally` blocks (which cancel the generation and
    store a stopped answer) run now rather than whenever garbage collection gets to them.
    """
    # The header too: Stream takes the handler's media type over its own, and that of
    # `-> ChatCompletion | Stream` is JSON (the fuzz test found /v1 streams sent as JSON).
    headers = {**SSE_HEADERS, "Content-Type": "text/event-stream; charset=utf-8"}
    return Stream(body, media_type="text/event-stream", headers=headers,
                  background=BackgroundTask(body.aclose))  # fmt: skip
