"""`appliance doctor`: checks of an installation, each a verdict and, for a problem, what to do.

The checks read files and headers only: no model is loaded, no server is needed, nothing under
data_dir is created, and only Chroma's opening writes (a row in its lock table)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Literal

import msgspec

Status = Literal["ok", "warn", "fail"]
EXIT_CODES: dict[Status, int] = {"ok": 0, "warn": 1, "fail": 2}


class Check(msgspec.Struct, frozen=True, kw_only=True):
    """One line of the report."""

    name: str  # a stable identifier: "model", "database", ...
    status: Status
    detail: str  # what was found
    action: str = ""  # what to do, for a warning or a failure


class Summary(msgspec.Struct, frozen=True, kw_only=True):
    ok: int
    warn: int
    fail: int
    exit_code: int


def ok(name: str, detail: str) -> Check:
    return Check(name=name, status="ok", detail=detail)


def warn(name: str, detail: str, action: str) -> Check:
    return Check(name=name, status="warn", detail=detail, action=action)


def fail(name: str, detail: str, action: str) -> Check:
    return Check(name=name, status="fail", detail=detail, action=action)


def guarded(name: str, check: Callable[[], Check]) -> Check:
    """`check()`, or a failure saying how it broke: one broken check never hides the others."""
    try:
        return check()
    except Exception as exc:
        detail = f"the check itself failed: {type(exc).__name__}: {exc}"
        return fail(name, detail, "fix what the message names; the other checks ran")


def run(config: Path | None, environ: Mapping[str, str]) -> list[Check]:
    """Every check, in the order of the report. Bad settings leave the checks that need them
    out (they would check the defaults instead of the installation)."""
    from appliance.ops.doctor import host, model, serving, state

    found, settings = serving.settings_in_use(config, environ)
    build, build_checks = host.checks(settings)
    checks = [found, *build_checks]
    if settings is None:
        return checks
    checks += model.checks(settings, build)
    checks += state.checks(settings)
    checks.append(guarded("port", lambda: serving.port(settings.web)))
    return checks


def summary(checks: list[Check]) -> Summary:
    count = {status: sum(c.status == status for c in checks) for status in EXIT_CODES}
    worst = max((EXIT_CODES[c.status] for c in checks), default=0)
    return Summary(ok=count["ok"], warn=count["warn"], fail=count["fail"], exit_code=worst)


def size(n: float) -> str:
    """Bytes for a person: 512 B, 93.8 MiB, 1.2 GiB."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"
