"""An app on the real model and a real SQLite file, driven through Litestar's test client."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import msgspec
import pytest
from litestar.testing import TestClient

from appliance.config import Settings
from appliance.services import Services
from appliance.web.app import create_app
from appliance.wiring import build_services

Client = TestClient  # type: ignore[type-arg]


@contextmanager
def running_app(settings: Settings) -> Iterator[Client]:
    with served_app(settings) as (client, _):
        yield client


@contextmanager
def served_app(settings: Settings) -> Iterator[tuple[Client, Services]]:
    services = build_services(settings)
    with TestClient(create_app(settings, services)) as client:
        engine = services.engine
        assert engine.wait_ready(60)  # type: ignore[attr-defined]
        yield client, services


@pytest.fixture
def served(settings: Settings) -> Iterator[tuple[Client, Services]]:
    with served_app(settings) as pair:
        yield pair


@pytest.fixture
def client(served: tuple[Client, Services]) -> Client:
    return served[0]


def sse_events(lines: Iterator[str]) -> list[tuple[str, dict[str, object]]]:
    """Parse `event:`/`data:` blocks from a text/event-stream body."""
    events, event, data = [], "message", ""
    for line in lines:
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            data += line[6:]
        elif line == "" and data:
            events.append((event, msgspec.json.decode(data) if data != "[DONE]" else {}))
            event, data = "message", ""
    return events
