"""Settings made at run time on the admin pages and kept across restarts (the `settings`
table): a key, its value, who set it and when. The TOML file and the environment are read
once at start; these are what an admin changed on a running server."""

from __future__ import annotations

import time

import msgspec

from appliance.store.db import Database

SERVED_MODEL = "llm.served_model"  # the file the Models page chose to serve


class Stored(msgspec.Struct, frozen=True, kw_only=True):
    key: str
    value: str
    set_by: str  # the admin's account name
    set_at: float


class SettingStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, key: str) -> Stored | None:
        rows = self._db.query(
            "SELECT key, value, set_by, set_at FROM settings WHERE key = ?", (key,)
        )
        return Stored(**dict(rows[0])) if rows else None

    def set(self, key: str, value: str, by: str) -> None:
        with self._db.transaction() as tx:
            tx.execute(
                "INSERT INTO settings (key, value, set_by, set_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value, "
                "set_by = excluded.set_by, set_at = excluded.set_at",
                (key, value, by, time.time()),
            )

    def clear(self, key: str) -> None:
        with self._db.transaction() as tx:
            tx.execute("DELETE FROM settings WHERE key = ?", (key,))
