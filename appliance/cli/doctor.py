"""The doctor command: one line per check, the exit code of the worst."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import msgspec

STATUS_WORDS = {"ok": "ok", "warn": "WARN", "fail": "FAIL"}


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    doctor = sub.add_parser(
        "doctor",
        help="check the installation: model, llama.cpp build, memory, data, port",
        description="Checks the model file, the llama.cpp build against this CPU and GPU, "
        "memory, the embedding model, data_dir, the watched folder, the database, the vector "
        "index, the settings and the port, without loading a model or creating anything "
        "under data_dir. "
        "Exit code 0: all ok, 1: warnings, 2: failures.",
    )
    doctor.add_argument(
        "--json", action="store_true", help="print a JSON object: the checks and a summary"
    )


def run(config: Path | None, as_json: bool) -> int:
    from appliance.ops.doctor import run as run_checks
    from appliance.ops.doctor import summary

    checks = run_checks(config, os.environ)
    total = summary(checks)
    if as_json:
        print(msgspec.json.encode({"checks": checks, "summary": total}).decode())
        return total.exit_code
    width = max(len(c.name) for c in checks)
    for check in checks:
        todo = f" -> {check.action}" if check.action else ""
        print(f"{STATUS_WORDS[check.status]:<4}  {check.name:<{width}}  {check.detail}{todo}")
    print(f"{len(checks)} checks: {total.ok} ok, {total.warn} warnings, {total.fail} failures")
    return total.exit_code
