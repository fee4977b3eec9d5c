"""Shared fixtures: the real bundled model, settings in tmp_path, a running engine."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import msgspec
import pytest

from appliance.accounts.service import Accounts
from appliance.config import EmbedSettings, LlmSettings, Settings
from appliance.embed.embedder import Embedder
from appliance.errors import Conflict
from appliance.llm.batched import BatchedEngine
from appliance.llm.models import bundled_model
from appliance.pii.redactor import Redactor
from appliance.store.db import Database
from appliance.store.users import Role, UserStore
from appliance.wiring import build_embedder, build_redactor

# Keep llama.cpp to the threads the suite is sized for (2-core machines, one core of compute).
THREADS = int(os.environ.get("TEST_LLM_THREADS", "2"))
LONG_PROMPT = "Write a long story about a dragon."
# The ONNX export of the embedding model, shared by every test's data dir (made once, ~4 s).
EMBED_CACHE = Path(tempfile.gettempdir()) / f"appliance-tests-onnx-{os.getuid()}"


@pytest.fixture(scope="session")
def model_path() -> Path:
    return bundled_model()


def llm_settings(**llm: object) -> LlmSettings:
    """The suite's model settings: a small context and the suite's thread count."""
    return msgspec.convert({"n_ctx": 2048, "n_threads": THREADS, **llm}, LlmSettings)


def make_settings(data_dir: Path, **llm: object) -> Settings:
    return Settings(data_dir=str(data_dir), llm=llm_settings(queue_size=2, **llm),
                    embed=EmbedSettings(cache_dir=str(EMBED_CACHE)))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data")


def running_engine(model_path: Path, **llm: object) -> Iterator[BatchedEngine]:
    """An engine on the bundled model with the suite's settings and `llm`, loaded; stopped
    after (a fixture's body: `yield from running_engine(...)`)."""
    eng = BatchedEngine(model_path, "smollm2", llm_settings(**llm))
    eng.start()
    assert eng.wait_ready(60), eng.info().load_error
    yield eng
    eng.stop()


@pytest.fixture(scope="session")
def engine(model_path: Path) -> Iterator[BatchedEngine]:
    yield from running_engine(model_path, queue_size=1, parallel=2)


def embedder_settings(**embed: object) -> Settings:
    return msgspec.convert({"embed": {"cache_dir": str(EMBED_CACHE), **embed}}, Settings)


@pytest.fixture(scope="session")
def onnx_embedder() -> Embedder:
    """The default embedder: bundled all-MiniLM-L6-v2, ONNX int8 (exported once per machine)."""
    return build_embedder(embedder_settings())


@pytest.fixture(scope="session")
def st_embedder() -> Embedder:
    return build_embedder(embedder_settings(backend="sentence-transformers"))


@pytest.fixture(scope="session")
def redactor() -> Redactor:
    """Presidio with the offline spaCy model, default pii settings (loads in ~3 s)."""
    return build_redactor(msgspec.convert({}, Settings))


ADMIN_PASSWORD = "admin password for tests"  # noqa: S105 - a throwaway test account


def make_admin(data_dir: Path, name: str = "admin", role: Role = "admin") -> str:
    """A user in data_dir's database, and an API key for it (returned)."""
    db = Database(data_dir / "appliance.db")
    try:
        accounts = Accounts(UserStore(db))
        with contextlib.suppress(Conflict):  # there from an earlier start on this data dir
            accounts.add(name, ADMIN_PASSWORD, role)
        return accounts.create_key(name)[1]
    finally:
        db.close()


def load_script(path: Path, name: str) -> ModuleType:
    """A script of scripts/ as a module, for the tests that hold its figures to a floor."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # msgspec resolves the Structs' annotations through it
    spec.loader.exec_module(module)
    return module
