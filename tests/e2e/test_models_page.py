"""The Models page in a real browser: an admin opens it from the chat page's menu, sees every
model with its metadata (a broken file with what is wrong), serves another one and sees it
load, then serving; a model llama.cpp refuses shows its error while the old one still serves.
Screenshots go to /tmp/models-*.png."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from appliance.llm.models import BUNDLED_FILE
from tests.conftest import ADMIN_PASSWORD
from tests.e2e.browser import SHOTS, WAIT_MS, chromium
from tests.e2e.conftest import Server, running_server
from tests.llm.model_files import copy_of, truncated_copy, unloadable_copy

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model_path: Path) -> Iterator[Server]:
    models = tmp_path_factory.mktemp("models")
    copy_of(model_path, models / "second.gguf")
    unloadable_copy(model_path, models / "broken.gguf")
    truncated_copy(model_path, models / "cut.gguf")
    data = tmp_path_factory.mktemp("server")
    with running_server(data, {"APPLIANCE_LLM__MODELS_DIR": str(models)}) as srv:
        yield srv


@pytest.fixture(scope="module")
def browser(server: Server) -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def signed_in_admin(browser: Browser, server: Server) -> Page:
    page = browser.new_context(viewport={"width": 1280, "height": 760}).new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(f"{server.base_url}/signin")
    page.fill("#name", "admin")
    page.fill("#password", ADMIN_PASSWORD)
    page.click("#submit")
    page.wait_for_url(f"{server.base_url}/")
    page.wait_for_selector("#who:not(:empty)")
    return page


def row(name: str) -> str:
    return f'#rows tr[data-name="{name}"]'


def test_an_admin_lists_the_models_and_serves_another(browser: Browser, server: Server) -> None:
    page = signed_in_admin(browser, server)
    page.click('#admin-links a[href="/models"]')
    page.wait_for_url(f"{server.base_url}/models")
    page.wait_for_selector(f"{row(BUNDLED_FILE)} .status-pill.serving")
    names = page.eval_on_selector_all("#rows tr", "rows => rows.map(r => r.dataset.name)")
    assert names == [BUNDLED_FILE, "broken.gguf", "cut.gguf", "second.gguf"]
    second = page.inner_text(row("second.gguf"))
    for shown in ("llama", "Q4_1", "134.5M", "8,192", "93.8 MiB", "Serve this model"):
        assert shown in second
    assert "truncated" in page.inner_text(row("cut.gguf"))
    assert page.query_selector(f"{row('cut.gguf')} button") is None
    assert "serving SmolLM2-135M-Instruct.Q4_1" in page.inner_text("#state")
    page.screenshot(path=SHOTS / "models-1-list.png", full_page=True)

    page.click(f"{row('second.gguf')} button.serve")
    page.wait_for_selector(f"{row('second.gguf')} .status-pill.serving")
    assert page.query_selector(f"{row(BUNDLED_FILE)} button.serve") is not None
    page.wait_for_selector(f"{row(BUNDLED_FILE)} button.serve:not([disabled])")  # old one freed
    assert "serving second" in page.inner_text("#state")
    assert "chosen here by admin" in page.inner_text("#status")
    assert server.http.get("/v1/models").json()["data"][0]["id"] == "second"
    page.screenshot(path=SHOTS / "models-2-served.png", full_page=True)

    page.click(f"{row('broken.gguf')} button.serve")
    page.wait_for_selector("#failed:not([hidden])")
    assert "broken.gguf could not be served" in page.inner_text("#failed")
    assert "failed to load" in page.inner_text("#failed")
    page.wait_for_selector(f"{row('second.gguf')} .status-pill.serving")
    assert server.http.get("/v1/models").json()["data"][0]["id"] == "second"
    page.screenshot(path=SHOTS / "models-3-failed.png", full_page=True)
