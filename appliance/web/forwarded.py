"""The connection as the client made it: its address and scheme behind trusted reverse
proxies (`web.trusted_proxies`, X-Forwarded-*), and HSTS when the page is served over TLS."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
# With web.secure_cookies or web.tls_cert the page is served over TLS: browsers keep to https
# for a year.
# Not includeSubDomains: the appliance speaks for its own host, not for hosts under its name.
HSTS = (b"strict-transport-security", b"max-age=31536000")


class TrustedProxies:
    """Only a request whose peer is one of these proxies has its X-Forwarded-For and
    X-Forwarded-Proto believed; anyone else could write any address there."""

    def __init__(self, entries: Sequence[str]) -> None:
        # config.WebSettings checked the entries at start-up
        self._networks = tuple(ipaddress.ip_network(e, strict=False) for e in entries)

    def __contains__(self, host: object) -> bool:
        address = _address(host) if isinstance(host, str) else None
        return address is not None and any(address in net for net in self._networks)

    def client(self, peer: str, forwarded_for: Sequence[str]) -> str:
        """The client's address: the peer, or, behind a trusted proxy, the rightmost address
        in X-Forwarded-For that is not a trusted proxy (each proxy appends the address it saw:
        what lies left of that was written by the client and proves nothing)."""
        if not self._networks or peer not in self:
            return peer
        hops = [hop.strip() for value in forwarded_for for hop in value.split(",")]
        hops = [hop for hop in hops if hop]
        for hop in reversed(hops):
            if hop not in self:
                address = _address(hop)
                return str(address) if address is not None else peer  # not an address: the peer
        first = _address(hops[0]) if hops else None  # all trusted: a proxy asking for itself
        return str(first) if first is not None else peer

    def middleware(self, app: ASGIApp) -> ASGIApp:
        """Puts the real client into the ASGI scope, so every part (sign-in brake, audit,
        the cookie's Secure flag and name) sees the same address and scheme."""

        async def forwarded(scope: Scope, receive: Receive, send: Send) -> None:
            client = scope.get("client")
            if self._networks and client and scope["type"] == ScopeType.HTTP and client[0] in self:
                values = _headers(scope, b"x-forwarded-for")
                scope["client"] = (self.client(client[0], values), client[1])
                proto = _headers(scope, b"x-forwarded-proto")
                scheme = proto[-1].split(",")[-1].strip().lower() if proto else ""
                if scheme in ("http", "https"):  # the nearest proxy's word on TLS
                    scope["scheme"] = scheme
            await app(scope, receive, send)

        return forwarded


def strict_transport(app: ASGIApp) -> ASGIApp:
    """Adds HSTS to every response (a middleware: Litestar keeps the first app's resolved
    response headers on the shared route handlers, so an app-level header is not per app)."""

    async def with_hsts(scope: Scope, receive: Receive, send: Send) -> None:
        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), HSTS]
            await send(message)

        await app(scope, receive, sending if scope["type"] == ScopeType.HTTP else send)

    return with_hsts


def _headers(scope: Any, name: bytes) -> list[str]:
    return [v.decode("latin-1") for k, v in scope.get("headers", ()) if k.lower() == name]


def _address(text: str) -> Address | None:
    """An IP address, also as `1.2.3.4:port` or `[v6]:port` (some proxies add the port)."""
    if text.startswith("[") and "]" in text:
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:
        text = text.split(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:10.0.0.5 from a dual-stack socket
    return mapped if mapped is not None else address
