"""Nothing leaves the box: a real server under strace, on a fresh data dir and a fresh ONNX
cache, ingests, answers, searches and redacts without one network call beyond loopback."""

from __future__ import annotations

import codecs
import getpass
import ipaddress
import json
import os
import re
import shutil
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from appliance.config import PII_ENTITIES
from tests.e2e.conftest import Server, running_server
from tests.ingest.samples import pdf_bytes

NETWORK_CALLS = ("connect", "sendto", "sendmsg", "sendmmsg")
PROCESS_CALLS = ("execve", "clone", "clone3", "fork", "vfork")  # to name who made a call
# Switches that would turn the libraries offline for the test alone and hide what the
# appliance itself does; a user's shell has none of them.
OFFLINE_SWITCHES = (
    "HF_HUB_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "HF_DATASETS_OFFLINE",
    "HF_HUB_DISABLE_TELEMETRY",
    "ORT_DISABLE_TELEMETRY",
    "DO_NOT_TRACK",
    "ANONYMIZED_TELEMETRY",
    "TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS",
    "HF_HOME",
    "XDG_CACHE_HOME",
)
# glibc asks these local daemons to resolve names: a query to them is DNS too.
RESOLVER_SOCKETS = ("nscd", "systemd/resolve", "avahi-daemon")
# ONNX Runtime's telemetry first looked its host up ~9 s after the import: calls made a while
# after start-up are traced too.
LINGER_S = 20
SETTINGS = {
    # every path through Presidio: prompts, documents and answers
    "APPLIANCE_PII__PROMPTS": "pseudonymize",
    "APPLIANCE_PII__DOCUMENTS": "redact",
    "APPLIANCE_PII__OUTPUT": "redact",
    "APPLIANCE_PII__ENTITIES": json.dumps([*PII_ENTITIES, "URL"]),
}
CONTACT = "Write to jane.doe@example.org or read https://intranet.example.com/travel/policy."
DOCUMENTS = {
    "travel.md": b"# Travel\n\nBook flights at least 14 days before departure.\n",
    "contacts.html": f"<html><body><h1>Contacts</h1><p>{CONTACT}</p></body></html>".encode(),
    "expenses.pdf": pdf_bytes(["Expenses are filed within 30 days of the trip."]),
}
_LINE = re.compile(r"^(\d+)<([^>]*)> (.*)$")
_INET = re.compile(r'sa_family=AF_INET, sin_port=htons\((\d+)\), sin_addr=inet_addr\("([^"]+)"\)')
_INET6 = re.compile(
    r'sa_family=AF_INET6, sin6_port=htons\((\d+)\).*?inet_pton\(AF_INET6, "([^"]+)"'
)
_UNIX = re.compile(r'sa_family=AF_UNIX, sun_path=@?"([^"]+)"')
_RESULT = re.compile(r"\) = (\d+)")
_FD = re.compile(r"^(\w+)\((\d+), ")
_BUFFER = re.compile(r'(?:^\w+\(\d+, |iov_base=)"((?:[^"\\]|\\.)*)"')


def strace() -> str:
    found = shutil.which("strace")
    if found is None:
        pytest.fail("install strace (apt-get install strace; scripts/setup test does it as root)")
    return found


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path, Path]]:
    """The server under `strace -f`, with no ONNX export yet (the export child runs too) and a
    home of its own (no cache from an earlier run can stand in for a download)."""
    base = tmp_path_factory.mktemp("egress")
    data, home, cache = base / "data", base / "home", base / "onnx"
    for folder in (data, home):
        folder.mkdir()
    trace = base / "strace.log"
    wrap = [
        strace(),
        "-f",
        "--seccomp-bpf",
        "-qq",
        "-Y",
        "-s",
        "200",
        "-o",
        str(trace),
        "-e",
        f"trace={','.join(NETWORK_CALLS + PROCESS_CALLS)}",
    ]
    environ = {k: v for k, v in os.environ.items() if k not in OFFLINE_SWITCHES}
    # As systemd sets them for User=: without USER, torch (imported with Presidio) asks glibc
    # for the passwd entry, which goes to nscd's socket like a name lookup.
    environ.update(HOME=str(home), USER=getpass.getuser(), LOGNAME=getpass.getuser())
    settings = {**SETTINGS, "APPLIANCE_EMBED__CACHE_DIR": str(cache)}
    with running_server(data, settings, wrap, environ, ready_s=300) as srv:
        yield srv, trace, home
        _stop_traced(srv)


def test_nothing_leaves_the_box(traced: tuple[Server, Path, Path]) -> None:
    server, trace, home = traced
    ready = time.monotonic()
    folder = server.log.parent / "documents"
    for name, body in DOCUMENTS.items():
        (folder / name).write_bytes(body)
    _wait_indexed(server, set(DOCUMENTS))
    chat = server.http.post(
        "/v1/chat/completions",
        timeout=120,
        json={
            "messages": [{"role": "user", "content": f"When must I book a flight? {CONTACT}"}],
            "max_tokens": 16,
        },
    )
    assert chat.status_code == 200, chat.text
    search = server.http.post("/api/search", json={"query": "expenses after a trip"}, timeout=60)
    assert search.status_code == 200, search.text
    redacted = server.http.post("/api/redact", json={"text": CONTACT}, timeout=60)
    assert redacted.status_code == 200, redacted.text
    assert {e["type"] for e in redacted.json()["entities"]} >= {"EMAIL_ADDRESS", "URL"}
    time.sleep(max(0.0, ready + LINGER_S - time.monotonic()))
    _stop_traced(server)
    calls = Trace(trace.read_text(errors="replace"))
    assert any("appliance.embed.export" in cmd for cmd in calls.commands.values()), (
        "the ONNX export child was not traced (was the cache not fresh?)"
    )
    offending = calls.offending()
    assert not offending, "network calls beyond loopback:\n" + "\n".join(offending)
    # nor a cache or device id kept for later (ONNX Runtime's telemetry kept one in ~/.cache)
    assert not list(home.rglob("*")), f"written outside data_dir: {list(home.rglob('*'))}"


def _wait_indexed(server: Server, names: set[str], limit: float = 300) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        docs = server.http.get("/api/documents", timeout=10).json()["documents"]
        status = {d["path"]: d["status"] for d in docs}
        if names <= status.keys() and all(status[n] != "pending" for n in names):
            assert all(status[n] == "indexed" for n in names), status
            return
        time.sleep(0.2)
    raise AssertionError(f"documents never indexed: {names}")


def _stop_traced(server: Server) -> None:
    """SIGTERM to the server itself (strace's child), then strace ends with it."""
    if server.process.poll() is not None:
        return
    children = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children")
    for pid in children.read_text().split():
        os.kill(int(pid), signal.SIGTERM)
    server.process.wait(timeout=60)


@dataclass
class Trace:
    """An `strace -f -Y` log: the network calls, and which process (command line) made each."""

    text: str
    commands: dict[int, str] = field(default_factory=dict)  # process id → command line
    owner: dict[int, int] = field(default_factory=dict)  # thread id → process id
    calls: list[tuple[int, str, str]] = field(default_factory=list)  # process, comm, call
    looked_up: set[str] = field(default_factory=set)  # names in queries to port 53
    _dns: set[tuple[int, int]] = field(default_factory=set)  # (process, fd) connected to :53

    def __post_init__(self) -> None:
        pending: dict[int, str] = {}
        for line in self.text.splitlines():
            if not (match := _LINE.match(line)):
                continue
            tid, comm, call = int(match[1]), match[2], match[3]
            if call.endswith("<unfinished ...>"):
                pending[tid] = call.removesuffix("<unfinished ...>")
                continue
            if call.startswith("<... ") and " resumed>" in call:
                call = pending.pop(tid, "").rstrip() + call.split(" resumed>", 1)[1]
            self._record(tid, comm, " ".join(call.split()))

    def _record(self, tid: int, comm: str, call: str) -> None:
        name = call.split("(", 1)[0]
        process = self.owner.setdefault(tid, tid)
        result = _RESULT.search(call)
        if name in ("clone", "clone3", "fork", "vfork") and result:
            child = int(result[1])
            self.owner[child] = process if "CLONE_THREAD" in call else child
            self.commands.setdefault(self.owner[child], self.commands.get(process, comm))
        elif name == "execve" and call.endswith("= 0"):
            self.commands[process] = " ".join(re.findall(r'"([^"]*)"', call.split("], ")[0])[1:])
        elif name in NETWORK_CALLS:
            self._network(process, comm, call)

    def _network(self, process: int, comm: str, call: str) -> None:
        fd = _FD.match(call)
        where = (process, int(fd[2])) if fd else (process, -1)
        if call.startswith("connect(") and ("htons(53)" in call):
            self._dns.add(where)
        elif where in self._dns:
            self.looked_up.update(filter(None, map(_query_name, _BUFFER.findall(call))))
        self.calls.append((process, comm, call))

    def offending(self) -> list[str]:
        """Each call beyond loopback once (fds and repeats folded), with its process."""
        found: dict[str, int] = {}
        for process, comm, call in self.calls:
            if _beyond_loopback(call):
                what = f"{comm} (pid {process}: {self.commands.get(process, '?')[:120]}): "
                key = what + _FD.sub(r"\1(", call)[:240]
                found[key] = found.get(key, 0) + 1
        lines = [f"{n}x {key}" for key, n in found.items()]
        return [*lines, f"names looked up: {sorted(self.looked_up)}"] if lines else []


def _beyond_loopback(call: str) -> bool:
    """A call to a non-loopback address, to port 53 anywhere, or to a resolver's socket."""
    for port, host in [*_INET.findall(call), *_INET6.findall(call)]:
        address = ipaddress.ip_address(host)
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        if int(port) == 53 or not address.is_loopback:
            return True
    return any(s in path for path in _UNIX.findall(call) for s in RESOLVER_SOCKETS)


def _query_name(escaped: str) -> str | None:
    """The name asked for in a DNS query, as strace prints its bytes (C escapes)."""
    raw: bytes = codecs.escape_decode(escaped.encode())[0]  # type: ignore[attr-defined]
    labels, at = [], 12  # after the header
    while at < len(raw) and raw[at]:
        labels.append(raw[at + 1 : at + 1 + raw[at]].decode(errors="replace"))
        at += 1 + raw[at]
    return ".".join(labels) or None


def test_the_trace_reader_flags_what_leaves_and_names_the_process() -> None:
    """Loopback, netlink and a local socket pass; DNS on ::1, resolved's socket and 10.0.0.1
    are named with the process (the thread's and the child's), then the names looked up."""
    found = Trace((Path(__file__).parent / "egress_sample.strace").read_text()).offending()
    assert len(found) == 4, found
    dns, leak, resolved = (
        next(f for f in found if s in f) for s in ("htons(53)", "10.0.0.1", "io.systemd.Resolve")
    )
    assert "appliance serve" in dns
    assert "appliance serve" in leak
    assert "-m child" in resolved
    assert found[-1] == "names looked up: ['mail.lan']"
