"""Settings an admin made on a running server: kept in appliance.db, across a reopening, with
who set them; a database of schema 11 gains the table when it is opened."""

from __future__ import annotations

import shutil
from pathlib import Path

from appliance.store.db import Database
from appliance.store.settings import SERVED_MODEL, SettingStore
from tests.data import make_fixture_db as fixture


def test_a_setting_is_kept_across_a_reopening_with_who_set_it(tmp_path: Path) -> None:
    db = Database(tmp_path / "appliance.db")
    SettingStore(db).set(SERVED_MODEL, "first.gguf", "ada")
    SettingStore(db).set(SERVED_MODEL, "second.gguf", "grace")
    db.close()
    again = Database(tmp_path / "appliance.db")
    stored = SettingStore(again).get(SERVED_MODEL)
    assert stored is not None
    assert (stored.value, stored.set_by) == ("second.gguf", "grace")
    assert stored.set_at > 0
    SettingStore(again).clear(SERVED_MODEL)
    assert SettingStore(again).get(SERVED_MODEL) is None
    again.close()


def test_a_database_of_an_older_schema_gains_the_settings(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    shutil.copyfile(fixture.FIXTURE, path)
    db = Database(path)
    assert SettingStore(db).get(SERVED_MODEL) is None
    SettingStore(db).set(SERVED_MODEL, "x.gguf", "ada")
    assert SettingStore(db).get(SERVED_MODEL) is not None
    db.close()
