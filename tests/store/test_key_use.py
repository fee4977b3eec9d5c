"""An API key's `last_used_at` is written at most once a minute, not on every request (each
write takes the one SQLite writer that ingestion and the guard of every request wait on)."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.store import users
from appliance.store.db import Database
from appliance.store.users import UserStore


def test_last_used_at_is_written_once_a_minute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = UserStore(Database(tmp_path / "appliance.db"))
    owner = store.add("ann", "employee", None)
    key = store.add_key(owner.id, "api", "apl_" + "k" * 40)
    now = [1_000_000.0]
    monkeypatch.setattr(users.time, "time", lambda: now[0])
    writes = 0
    transaction = store._db.transaction

    def counted() -> object:
        nonlocal writes
        writes += 1
        return transaction()

    monkeypatch.setattr(store._db, "transaction", counted)
    for _ in range(50):
        assert store.user_for_key("apl_" + "k" * 40) == owner
    assert writes == 1
    assert store.keys(owner.id, key.id)[0].last_used_at == 1_000_000.0
    now[0] += users.KEY_USE_EVERY_S
    assert store.user_for_key("apl_" + "k" * 40) == owner
    assert writes == 2
    assert store.keys(owner.id, key.id)[0].last_used_at == now[0]
