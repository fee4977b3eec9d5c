"""Ending work for a client that has gone away, for responses that are not streamed.

Litestar's streaming responses already watch for `http.disconnect`; a plain response is only
sent at the end, so a non-streamed completion would otherwise run to its last token.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

import anyio
from litestar import Request

from appliance.errors import ApplianceError

T = TypeVar("T")


class ClientGone(ApplianceError):
    """The client disconnected before the answer was ready; nobody will read a reply."""


async def until_disconnect(request: Request[Any, Any, Any], work: Coroutine[Any, Any, T]) -> T:
    """Await `work`, cancelling it (and so its generation) if the client disconnects first."""
    result: list[T] = []
    failure: list[Exception] = []

    async def run(scope: anyio.CancelScope) -> None:
        try:
            result.append(await work)
        except Exception as exc:  # re-raised below, outside the task group's exception group
            failure.append(exc)
        scope.cancel()

    async with anyio.create_task_group() as tg:
        tg.start_soon(run, tg.cancel_scope)
        while (await request.receive())["type"] != "http.disconnect":
            pass
        tg.cancel_scope.cancel()
    if failure:
        raise failure[0]
    if not result:
        raise ClientGone("the client disconnected before the answer was complete")
    return result[0]
