"""A real `appliance serve` process on 127.0.0.1, on the bundled model."""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import httpx
import pytest

from tests.conftest import EMBED_CACHE, THREADS, make_admin


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, base_url: str, process: subprocess.Popen[bytes], log: Path,
                 key: str, verify: ssl.SSLContext | bool = True) -> None:  # fmt: skip
        self.base_url, self.process, self.log, self.key = base_url, process, log, key
        # An admin's API key on every request; tests of signing in use their own clients.
        self.http = httpx.Client(base_url=base_url, timeout=60, verify=verify,
                                 headers={"Authorization": f"Bearer {key}"})  # fmt: skip

    def ready(self) -> dict[str, object]:
        body: dict[str, object] = self.http.get("/readyz", timeout=5).json()
        return body

    def wait_until(self, check: str, predicate: object, limit: float = 60) -> dict[str, object]:
        """Poll /readyz until `predicate(state)` holds (a bounded wait, not a timing check)."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            state = self.ready()
            if predicate(state):  # type: ignore[operator]
                return state
            time.sleep(0.05)
        raise AssertionError(f"server never reached: {check}; last state {self.ready()}")


@pytest.fixture(scope="module")
def server(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:  # fmt: skip
    """One server per test module; a module's SERVER_ENV adds to (or overrides) its settings."""
    data = tmp_path_factory.mktemp("server")
    with running_server(data, getattr(request.module, "SERVER_ENV", {})) as srv:
        yield srv


@contextlib.contextmanager
def running_server(data: Path, settings: Mapping[str, str], wrap: Sequence[str] = (),
                   environ: Mapping[str, str] = os.environ, ready_s: float = 90,
                   tls: ssl.SSLContext | None = None) -> Iterator[Server]:  # fmt: skip
    """`appliance serve` on `data` with the suite's settings and `settings`, its command
    prefixed by `wrap` (a tracer, say) and its environment based on `environ`; reached over
    https, trusting what `tls` trusts, when given."""
    port = free_port()
    env = {
        **environ,
        "APPLIANCE_DATA_DIR": str(data),
        "APPLIANCE_LLM__N_THREADS": str(THREADS),
        "APPLIANCE_LLM__N_CTX": "2048",
        "APPLIANCE_LLM__QUEUE_SIZE": "1",
        "APPLIANCE_LOG__LEVEL": "warning",
        "APPLIANCE_EMBED__CACHE_DIR": str(EMBED_CACHE),
        "APPLIANCE_DOCUMENTS__SETTLE_MS": "300",
        # one test user drives the engine's queue and disconnect paths: no per-user caps here
        "APPLIANCE_LIMITS__CHAT_PER_MINUTE": "1000",
        "APPLIANCE_LIMITS__CONCURRENT_STREAMS": "16",
        **settings,
    }
    key = make_admin(data)
    log = data / "server.log"
    with log.open("wb") as out:
        cmd = [*wrap, sys.executable, "-m", "appliance", "serve", "--port", str(port)]
        process = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    scheme = "https" if tls else "http"
    srv = Server(f"{scheme}://127.0.0.1:{port}", process, log, key, tls or True)
    try:
        _wait_for_ready(srv, ready_s)
        yield srv
    finally:
        srv.http.close()
        process.terminate()
        process.wait(timeout=30)


def _wait_for_ready(srv: Server, limit: float = 90) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if srv.process.poll() is not None:
            raise AssertionError(f"server exited: {srv.log.read_text()}")
        try:
            if srv.http.get("/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"server not ready: {srv.log.read_text()}")
