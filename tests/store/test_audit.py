"""The audit log: chained records; an edit or a deletion is detected; details are redacted."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from appliance.store.audit import AuditLog
from appliance.store.db import Database
from tests.test_cli import appliance


@pytest.fixture
def log(tmp_path: Path) -> AuditLog:
    audit = AuditLog(Database(tmp_path / "appliance.db"),
                     redact=lambda t: t.replace("maria@example.com", "<EMAIL>"))  # fmt: skip
    for n in range(5):
        audit.record("ann", "chat", f"conv-{n}", "via session; documents []")
    audit.record("-", "sign_in_failed", "bob", "typed maria@example.com as the password",
                 private=True)
    return audit


def tamper(path: Path, sql: str) -> None:
    with closing(sqlite3.connect(path)) as db:
        db.executescript("DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;"
                         f"{sql}")  # fmt: skip


def test_an_intact_chain_verifies(log: AuditLog) -> None:
    verdict = log.verify()
    assert verdict.intact
    assert verdict.records == 6
    newest = log.records(limit=2)
    assert [r.id for r in newest] == [6, 5]
    assert newest[0].prev_hash == newest[1].hash
    assert "maria@example.com" not in newest[0].detail
    assert [r.target for r in log.records(actor="ann", before=3)] == ["conv-1", "conv-0"]


def test_records_cannot_be_changed_without_dropping_the_guard(log: AuditLog,
                                                              tmp_path: Path) -> None:  # fmt: skip
    db = sqlite3.connect(tmp_path / "appliance.db")
    try:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute("UPDATE audit SET actor = 'mallory' WHERE id = 2")
    finally:
        db.close()


def test_an_edit_is_detected(log: AuditLog, tmp_path: Path) -> None:
    tamper(tmp_path / "appliance.db", "UPDATE audit SET target = 'elsewhere' WHERE id = 3;")
    verdict = log.verify()
    assert not verdict.intact
    assert verdict.problem == "record 3 was changed after it was written"


def test_a_deletion_is_detected(log: AuditLog, tmp_path: Path) -> None:
    tamper(tmp_path / "appliance.db", "DELETE FROM audit WHERE id = 2;")
    verdict = log.verify()
    assert not verdict.intact
    assert "records 2..2 are missing" in (verdict.problem or "")


def test_audit_verify_on_the_command_line(log: AuditLog, tmp_path: Path) -> None:
    ok = appliance("audit", "verify", APPLIANCE_DATA_DIR=str(tmp_path))
    assert ok.returncode == 0
    assert "intact: 6 records" in ok.stdout
    tamper(tmp_path / "appliance.db", "UPDATE audit SET actor = 'x' WHERE id = 1;")
    bad = appliance("audit", "verify", APPLIANCE_DATA_DIR=str(tmp_path))
    assert bad.returncode == 1
    assert "record 1 was changed" in bad.stdout
