"""The Containerfile, read as the builder reads it (its bases cannot be pulled here): a build
stage running scripts/setup, a final stage without compilers, running as `appliance`, every base
pinned by digest, a health check on /healthz, no secrets."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from appliance.config import WebSettings

ROOT = Path(__file__).parent.parent
TEXT = (ROOT / "Containerfile").read_text()
ACCELS = ("cpu", "cuda")
BUILD_TOOLS = {"build-essential", "gcc", "g++", "clang", "cmake", "make", "git", "ninja-build"}
SECRET_NAME = re.compile(r"TOKEN|KEY|PASSWORD|SECRET|CREDENTIAL", re.IGNORECASE)


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def instructions(text: str) -> Iterator[tuple[str, str]]:
    """(KEYWORD, arguments) with continuation lines joined and comment lines dropped."""
    pending = ""
    for line in text.splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        keyword, _, args = pending.strip().partition(" ")
        yield keyword.upper(), args.strip()
        pending = ""
    assert not pending, "the Containerfile ends inside a continued line"


def stages(accel: str) -> list[Stage]:
    """The stages with FROM's arguments expanded, as `--build-arg ACCEL=accel` builds them."""
    build_args: dict[str, str] = {}
    found: list[Stage] = []
    for keyword, args in instructions(TEXT):
        if keyword == "ARG" and not found:
            name, _, default = args.partition("=")
            build_args[name] = default
        elif keyword == "FROM":
            build_args["ACCEL"] = accel
            words = re.sub(r"\$\{(\w+)\}", lambda m: build_args[m.group(1)], args).split()
            assert not words[0].startswith("--"), "no --platform: the host's platform is built"
            alias = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            found.append(Stage(words[0], alias))
        else:
            assert found or keyword == "ARG", f"{keyword} before the first FROM"
            found[-1].instructions.append((keyword, args))
    return found


def lineage(accel: str, stage: Stage) -> list[Stage]:
    """The stage and the stages it is built FROM, down to the one on a pulled image."""
    by_name = {s.name: s for s in stages(accel) if s.name}
    chain = [stage]
    while chain[-1].base in by_name:
        chain.append(by_name[chain[-1].base])
    return chain


def final(accel: str) -> list[Stage]:
    return lineage(accel, stages(accel)[-1])


def build(accel: str) -> list[Stage]:
    return lineage(accel, next(s for s in stages(accel) if s.name == "build"))


def commands(chain: list[Stage]) -> Iterator[list[str]]:
    """The shell commands of these stages' RUN lines, each as its words."""
    for stage in chain:
        for run in stage.args("RUN"):
            lexer = shlex.shlex(run, posix=True, punctuation_chars=True)
            lexer.whitespace_split = True
            command: list[str] = []
            for word in [*lexer, ";"]:
                if word in ("&&", "||", ";", "|"):
                    if command:
                        yield command
                    command = []
                else:
                    command.append(word)


def installed(chain: list[Stage]) -> set[str]:
    """Packages named by apt-get install in these stages' RUN lines."""
    names: set[str] = set()
    for words in commands(chain):
        if words[:2] == ["apt-get", "install"]:
            names |= {w for w in words[2:] if not w.startswith("-")}
    return names


@pytest.mark.parametrize("accel", ACCELS)
def test_the_final_image_is_not_the_build_stage(accel: str) -> None:
    names = [s.name for s in final(accel)]
    assert "build" not in names
    assert not any(name and name.startswith("build") for name in names)
    copied = [args for args in final(accel)[0].args("COPY")]
    assert copied, "the final stage copies the venv and the app from the build stage"
    assert all(args.startswith("--from=build ") for args in copied)
    assert any("/opt/appliance/.venv" in args for args in copied)


@pytest.mark.parametrize("accel", ACCELS)
def test_every_base_is_pinned_by_digest(accel: str) -> None:
    names = {s.name for s in stages(accel)}
    pulled = [s.base for s in stages(accel) if s.base not in names]
    assert pulled
    for base in pulled:
        assert re.search(r":[\w.-]+@sha256:[0-9a-f]{64}$", base), f"{base}: tag and digest"


@pytest.mark.parametrize("accel", ACCELS)
def test_build_and_runtime_carry_the_same_python(accel: str) -> None:
    """The venv's interpreter is a link into its base: the runtime base must have it too."""
    built, run = build(accel)[-1].base, final(accel)[-1].base
    assert built.split("@")[0].replace("-devel-", "-runtime-") == run.split("@")[0]


@pytest.mark.parametrize("accel", ACCELS)
def test_no_build_tools_in_the_final_image(accel: str) -> None:
    packages = installed(final(accel))
    assert packages & BUILD_TOOLS == set()
    assert {p for p in packages if p.endswith("-dev")} == set()
    assert "devel" not in final(accel)[-1].base
    assert "libgomp1" in packages  # llama.cpp's OpenMP (ldd on the venv's .so files)
    assert installed(build(accel)) & BUILD_TOOLS  # the check above would see them


def test_cuda_is_built_on_devel_and_runs_on_runtime() -> None:
    assert "-devel-" in build("cuda")[-1].base
    assert "-runtime-" in final("cuda")[-1].base
    assert any(
        'LLAMA_CMAKE_ARGS="-DGGML_CUDA=on"' in e for s in build("cuda") for e in s.args("ENV")
    )


@pytest.mark.parametrize("accel", ACCELS)
def test_it_runs_as_appliance_with_its_data_in_a_volume_it_owns(accel: str) -> None:
    last = final(accel)[0]
    users = [args for s in reversed(final(accel)) for args in s.args("USER")]
    assert users[-1] == "appliance"
    runs = " ".join(last.args("RUN"))
    assert re.search(r"useradd\b[^&]*\bappliance\b", runs)
    assert "chown -R appliance:appliance /var/lib/appliance" in runs
    assert last.args("VOLUME") == ['["/var/lib/appliance"]']
    assert "APPLIANCE_DATA_DIR=/var/lib/appliance" in " ".join(last.args("ENV"))
    assert json.loads(last.args("CMD")[-1]) == ["/opt/appliance/.venv/bin/appliance", "serve"]


def test_the_build_stage_runs_the_readmes_setup() -> None:
    readme = (ROOT / "README.md").read_text()
    assert re.search(r"^sudo scripts/setup\s", readme, re.M)  # the service's set-up
    calls = [words for words in commands(build("cpu")) if "scripts/setup" in words]
    assert calls, "the build stage runs scripts/setup"
    assert all(words[-1] == "scripts/setup" for words in calls)  # what serving needs, not `test`


def test_expose_is_the_default_port() -> None:
    last = final("cpu")[0]
    assert last.args("EXPOSE") == [str(WebSettings().port)]
    assert "APPLIANCE_WEB__PORT" not in " ".join(last.args("ENV"))


def test_no_secrets_in_the_image() -> None:
    for stage in stages("cpu") + stages("cuda"):
        for keyword, args in stage.instructions:
            if keyword in ("ENV", "ARG"):
                for name, value in re.findall(r"(\w+)=(\"[^\"]*\"|\S*)", args):
                    assert not (SECRET_NAME.search(name) and value.strip('"')), f"{keyword} {name}"
            if keyword in ("COPY", "ADD"):
                sources = [w for w in args.split()[:-1] if not w.startswith("--")]
                for source in sources:
                    assert source not in (".", "./"), "COPY of the whole context"
                    assert not re.search(r"\.env|\.pem$|\.key$|secret", source), source
    for name, _ in re.findall(r"^ARG (\w+)(=.*)?$", TEXT, re.M):
        assert not SECRET_NAME.search(name), name


def test_the_context_leaves_out_state_and_secrets() -> None:
    ignored = (ROOT / ".containerignore").read_text().split()
    for entry in (".venv", "data", ".git", ".env", "**/*.pem", "**/*.key"):
        assert entry in ignored


def answering(status: int) -> type[BaseHTTPRequestHandler]:
    """A server that answers /healthz with `status`, and 404 elsewhere."""

    class Healthz(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status if self.path == "/healthz" else 404)
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    return Healthz


def healthcheck(port: int, **env: str) -> subprocess.CompletedProcess[bytes]:
    """The HEALTHCHECK's command as the image runs it, with this interpreter for the venv's."""
    line = final("cpu")[0].args("HEALTHCHECK")[-1]
    command = json.loads(line[line.index("CMD ") + 4 :])
    assert command[0] == "/opt/appliance/.venv/bin/python"
    return subprocess.run([sys.executable, *command[1:]], capture_output=True, timeout=30,
                          env={"APPLIANCE_WEB__PORT": str(port), **env}, check=False)  # fmt: skip


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False)])
def test_the_healthcheck_asks_healthz(status: int, healthy: bool) -> None:
    """Over plain HTTP here; tests/e2e/test_tls.py runs it against the appliance over TLS."""
    assert "--start-period=" in final("cpu")[0].args("HEALTHCHECK")[-1]
    server = HTTPServer(("127.0.0.1", 0), answering(status))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        done = healthcheck(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
    assert (done.returncode == 0) is healthy, done.stderr
