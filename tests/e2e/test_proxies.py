"""A real server behind a trusted proxy (127.0.0.2 here) and reached directly (127.0.0.1): only
the proxy's X-Forwarded-For counts, for the sign-in brake; TLS mode sends HSTS and __Host-."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.conftest import ADMIN_PASSWORD
from tests.e2e.conftest import Server

SERVER_ENV = {
    "APPLIANCE_WEB__TRUSTED_PROXIES": '["127.0.0.2"]',
    "APPLIANCE_WEB__SECURE_COOKIES": "true",
}


def from_address(server: Server, source: str) -> httpx.Client:
    """A client whose connections leave from `source` (all of 127.0.0.0/8 is loopback)."""
    transport = httpx.HTTPTransport(local_address=source)
    return httpx.Client(base_url=server.base_url, timeout=60, transport=transport)


def spray(client: httpx.Client, forwarded_for: Callable[[int], str]) -> list[int]:
    """30 sign-ins on made-up names, 8 at a time: past the 20 failures one address may have
    (some are braked however long argon2 takes here: the waits double)."""

    def one(n: int) -> int:
        body = {"name": f"nobody{n}", "password": "Summer2026!"}
        headers = {"X-Forwarded-For": forwarded_for(n)}
        return client.post("/api/session", json=body, headers=headers).status_code

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(30)))


def test_a_direct_peers_forwarded_for_is_ignored(server: Server) -> None:
    with from_address(server, "127.0.0.1") as direct:  # a new made-up address each time
        statuses = spray(direct, lambda n: f"203.0.113.{n}")
    assert set(statuses) == {401, 429}


def test_clients_behind_the_trusted_proxy_are_counted_apart(server: Server) -> None:
    with from_address(server, "127.0.0.2") as proxy:
        statuses = spray(proxy, lambda n: "6.6.6.6, 198.51.100.7")  # one client's spray
        assert set(statuses) == {401, 429}
        body = {"name": "admin", "password": ADMIN_PASSWORD}
        signed = proxy.post("/api/session", json=body, headers={"X-Forwarded-For": "198.51.100.8"})
    assert signed.status_code == 200  # another client behind the same proxy
    assert signed.headers["strict-transport-security"] == "max-age=31536000"
    cookie = signed.headers["set-cookie"]
    assert cookie.startswith("__Host-appliance_session=")
    assert "Secure" in cookie
    assert "domain" not in cookie.lower()
