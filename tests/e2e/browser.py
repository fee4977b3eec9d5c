"""Debian's chromium driven by Playwright, for the page tests: launched quiet (nothing beyond
127.0.0.1), or the test fails with what to install."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser

CHROMIUM = shutil.which("chromium")
# Chromium reaches out on its own (updates, sync, field trials, Google's hosts): not here, where
# tests reach nothing beyond 127.0.0.1.
QUIET_CHROMIUM = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--disable-default-apps"]  # fmt: skip
WAIT_MS = 60_000
SHOTS = Path("/tmp")  # where the screenshots are looked at


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    try:
        from playwright import sync_api
    except ImportError:
        pytest.fail("the page tests need playwright (the test extras): run scripts/setup test")
    if CHROMIUM is None:
        pytest.fail("the page tests need Debian's chromium: apt-get install chromium "
                    "(scripts/setup test installs it when run as root)")  # fmt: skip
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=QUIET_CHROMIUM)
        yield browser
        browser.close()
