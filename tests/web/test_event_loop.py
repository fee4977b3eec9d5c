"""Nothing that can take milliseconds runs on the event loop: the redactor behind the log lines
of error responses, the guard's session and API key lookups (SQLite)."""

from __future__ import annotations

import asyncio
import io
import logging
import threading
from collections.abc import Callable
from typing import Any

import pytest

from appliance.pii.logs import redact_logs
from appliance.store.users import UserStore
from tests.conftest import ADMIN_PASSWORD
from tests.web.conftest import Client


def on_a_loop() -> bool:
    """Whether the caller runs on a thread with a running event loop (the server's)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def test_error_responses_never_run_the_redactor_on_the_loop(client: Client) -> None:
    out, ran_on = io.StringIO(), []
    handler, errors = logging.StreamHandler(out), logging.getLogger("appliance.web.errors")
    logging.getLogger().addHandler(handler)
    level, errors.level = errors.level, logging.INFO  # 4xx lines are INFO

    def redact(text: str) -> str:
        ran_on.append(on_a_loop())
        return text

    stop = redact_logs(redact)
    try:
        for _ in range(20):
            assert client.get("/api/me", headers={"Authorization": ""}).status_code == 401
            assert client.get("/api/conversations/" + "0" * 32).status_code == 404
    finally:
        stop()
        errors.level = level
        logging.getLogger().removeHandler(handler)
    lines = out.getvalue().splitlines()
    assert lines.count("401 invalid_api_key") == 20  # a fixed text: nothing to redact
    assert lines.count("404 not_found") == 20
    assert True not in ran_on


def test_the_guard_looks_up_keys_and_sessions_off_the_loop(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, bool, str]] = []

    def recorded(name: str) -> Callable[..., Any]:
        real = getattr(UserStore, name)

        def call(self: UserStore, *args: Any) -> Any:
            calls.append((name, on_a_loop(), threading.current_thread().name.split("_")[0]))
            return real(self, *args)

        return call

    for name in ("user_for_key", "session"):
        monkeypatch.setattr(UserStore, name, recorded(name))
    assert client.get("/api/me").status_code == 200  # the API key
    signed_in = client.post("/api/session", headers={"Authorization": ""},
                            json={"name": "admin", "password": ADMIN_PASSWORD})  # fmt: skip
    assert signed_in.status_code == 200
    del client.headers["Authorization"]
    assert client.get("/api/me").json()["name"] == "admin"  # the session cookie
    client.cookies.clear()
    assert client.get("/api/me").status_code == 401  # no credentials: nothing looked up
    # on threads of the guard's own, where sign-ins (argon2) and redactions cannot queue
    assert calls == [("user_for_key", False, "auth"), ("session", False, "auth")]
