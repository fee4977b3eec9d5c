"""An app on the real model and a real SQLite file, driven through Litestar's test client."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import msgspec
import pytest
from litestar.testing import TestClient

from appliance.config import Settings
from appliance.web.app import create_app
from appliance.wiring import build_services
from tests.conftest import make_admin

Client = TestClient  # type: ignore[type-arg]


@contextmanager
def running_app(settings: Settings) -> Iterator[Client]:
    """The app, and a client that sends an admin's API key."""
    key = make_admin(settings.data_path)
    services = build_services(settings)
    app = create_app(settings, services)
    with TestClient(app) as client:
        client.headers["Authorization"] = f"Bearer {key}"
        assert services.engine.wait_ready(60)  # type: ignore[attr-defined]
        yield client


@pytest.fixture
def client(settings: Settings) -> Iterator[Client]:
    with running_app(settings) as c:
        yield c


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
