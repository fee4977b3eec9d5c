"""Whose X-Forwarded-For counts: only a trusted proxy's, read from the right; and the setting
that names those proxies is checked at start."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from appliance.config import SettingsError, load_settings
from appliance.web.forwarded import TrustedProxies, strict_transport

PROXIES = TrustedProxies(["10.9.0.1", "10.8.0.0/16", "fd00::/8"])


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("10.9.0.1", ["203.0.113.7"], "203.0.113.7"),
        ("10.9.0.1", ["6.6.6.6, 203.0.113.7"], "203.0.113.7"),  # the client's own guess: left
        ("10.9.0.1", ["6.6.6.6", "203.0.113.7, 10.8.3.4"], "203.0.113.7"),  # two proxies
        ("10.9.0.1", ["203.0.113.7:5123"], "203.0.113.7"),  # a port some proxies add
        ("10.9.0.1", ["[2001:db8::1]:443"], "2001:db8::1"),
        ("fd00::5", ["2001:db8::2"], "2001:db8::2"),
        ("::ffff:10.9.0.1", ["::ffff:203.0.113.7"], "203.0.113.7"),  # a dual-stack socket
        ("10.9.0.1", ["10.8.0.9, 10.9.0.1"], "10.8.0.9"),  # all trusted: the proxy itself
        ("10.9.0.1", ["203.0.113.7, not-an-address"], "10.9.0.1"),  # nonsense: the peer
        ("10.9.0.1", [], "10.9.0.1"),
        ("198.51.100.9", ["203.0.113.7"], "198.51.100.9"),  # not a trusted proxy: ignored
        ("10.9.0.2", ["203.0.113.7"], "10.9.0.2"),
        ("testclient", ["203.0.113.7"], "testclient"),
    ],
)
def test_the_client_is_the_rightmost_address_no_trusted_proxy_wrote(
    peer: str, forwarded: list[str], client: str
) -> None:
    assert PROXIES.client(peer, forwarded) == client


def test_without_trusted_proxies_the_headers_change_nothing() -> None:
    scope = request_scope(
        "127.0.0.1", (b"x-forwarded-for", b"6.6.6.6"), (b"x-forwarded-proto", b"https")
    )
    assert through(TrustedProxies([]).middleware, scope) == (("127.0.0.1", 50000), "http")
    scope = request_scope(
        "10.9.0.1", (b"x-forwarded-for", b"6.6.6.6"), (b"x-forwarded-proto", b"https")
    )
    assert through(PROXIES.middleware, scope) == (("6.6.6.6", 50000), "https")


def test_hsts_is_added_to_each_response() -> None:
    sent: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"a", b"b")]})
        await send({"type": "http.response.body", "body": b""})

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(strict_transport(app)(request_scope("1.2.3.4"), None, send))  # type: ignore[arg-type]
    assert (b"strict-transport-security", b"max-age=31536000") in sent[0]["headers"]
    assert (b"a", b"b") in sent[0]["headers"]


def test_a_trusted_proxy_that_is_no_address_fails_at_start() -> None:
    with pytest.raises(SettingsError, match=r"'proxy\.local' in trusted_proxies"):
        load_settings(None, {"APPLIANCE_WEB__TRUSTED_PROXIES": '["10.0.0.1", "proxy.local"]'})
    settings = load_settings(None, {"APPLIANCE_WEB__TRUSTED_PROXIES": '["10.0.0.0/8", "::1"]'})
    assert settings.web.trusted_proxies == ["10.0.0.0/8", "::1"]


def request_scope(peer: str, *headers: tuple[bytes, bytes]) -> dict[str, Any]:
    return {"type": "http", "client": (peer, 50000), "scheme": "http", "headers": list(headers)}


def through(middleware: Any, scope: dict[str, Any]) -> tuple[Any, str]:
    seen: list[tuple[Any, str]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append((scope["client"], scope["scheme"]))

    asyncio.run(middleware(app)(scope, None, None))
    return seen[0]
