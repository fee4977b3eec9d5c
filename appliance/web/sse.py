"""Server-sent events framing."""

from __future__ import annotations

import msgspec

_encode = msgspec.json.Encoder().encode


def sse(data: object, event: str | None = None) -> bytes:
    """One SSE message; `data` is JSON-encoded unless it is already bytes."""
    payload = data if isinstance(data, bytes) else _encode(data)
    head = b"event: " + event.encode() + b"\n" if event else b""
    return head + b"data: " + payload + b"\n\n"


SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
