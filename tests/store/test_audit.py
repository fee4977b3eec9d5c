"""The audit log: chained records; an edit or a deletion is detected; details are redacted."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from appliance.store import audit
from appliance.store.audit import AuditLog
from appliance.store.db import Database
from tests.test_cli import appliance


@pytest.fixture
def log(tmp_path: Path) -> AuditLog:
    audit = AuditLog(
        Database(tmp_path / "appliance.db"),
        redact=lambda t: t.replace("maria@example.com", "<EMAIL>"),
    )
    for n in range(5):
        audit.record("ann", "chat", f"conv-{n}", "via session; documents []")
    audit.record(
        "-", "sign_in_failed", "bob", "typed maria@example.com as the password", private=True
    )
    return audit


def tamper(path: Path, sql: str) -> None:
    with closing(sqlite3.connect(path)) as db:
        db.executescript(f"DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;{sql}")


def test_an_intact_chain_verifies(log: AuditLog) -> None:
    verdict = log.verify()
    assert verdict.intact
    assert verdict.records == 6
    newest = log.records(limit=2)
    assert [r.id for r in newest] == [6, 5]
    assert newest[0].prev_hash == newest[1].hash
    assert "maria@example.com" not in newest[0].detail
    assert [r.target for r in log.records(actor="ann", before=3)] == ["conv-1", "conv-0"]


def test_records_cannot_be_changed_without_dropping_the_guard(
    log: AuditLog, tmp_path: Path
) -> None:
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
    assert "intact: 6 records (all checked)" in ok.stdout
    again = appliance("audit", "verify", APPLIANCE_DATA_DIR=str(tmp_path))
    assert "intact: 6 records (0 checked after record 6" in again.stdout
    tamper(tmp_path / "appliance.db", "UPDATE audit SET actor = 'x' WHERE id = 1;")
    bad = appliance("audit", "verify", "--full", APPLIANCE_DATA_DIR=str(tmp_path))
    assert bad.returncode == 1
    assert "record 1 was changed" in bad.stdout


def test_verify_reads_the_table_in_batches(log: AuditLog, monkeypatch: pytest.MonkeyPatch) -> None:
    for n in range(30):
        log.record("ann", "chat", f"more-{n}")
    monkeypatch.setattr(audit, "BATCH", 7)
    db = log._db
    largest = 0
    query = db.query

    def counted(sql: str, params: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        nonlocal largest
        rows = query(sql, params)
        largest = max(largest, len(rows))
        return rows

    monkeypatch.setattr(db, "query", counted)
    verdict = log.verify(full=True)
    assert (verdict.intact, verdict.records, verdict.checked) == (True, 36, 36)
    assert largest == 7  # never the whole table in memory


def test_verify_goes_on_from_its_checkpoint(log: AuditLog, tmp_path: Path) -> None:
    assert log.verify().checked == 6
    log.record("ann", "chat", "conv-6")
    later = log.verify()
    assert (later.intact, later.records, later.checked, later.since) == (True, 7, 1, 6)
    tamper(tmp_path / "appliance.db", "UPDATE audit SET target = 'elsewhere' WHERE id = 7;")
    edited = log.verify()  # the checkpoint's own record is always checked again
    assert not edited.intact
    assert "record 7 was changed after it was verified" in (edited.problem or "")
    assert "--full" in (edited.problem or "")


def test_an_edit_before_the_checkpoint_is_found_by_a_full_check(
    log: AuditLog, tmp_path: Path
) -> None:
    assert log.verify().intact
    log.record("ann", "chat", "conv-6")
    tamper(tmp_path / "appliance.db", "UPDATE audit SET target = 'elsewhere' WHERE id = 2;")
    assert log.verify().intact  # as documented: only what came after the checkpoint is read
    full = log.verify(full=True)
    assert not full.intact
    assert full.problem == "record 2 was changed after it was written"


def test_a_cut_tail_is_found_from_the_checkpoint(log: AuditLog, tmp_path: Path) -> None:
    assert log.verify().intact
    tamper(tmp_path / "appliance.db", "DELETE FROM audit WHERE id >= 5;")
    for verdict in (log.verify(), log.verify(full=True)):
        assert not verdict.intact
        assert "record 6, verified before, is missing" in (verdict.problem or "")


def test_client_addresses_are_kept_beside_the_chain_and_purged(tmp_path: Path) -> None:
    path = tmp_path / "appliance.db"
    log = AuditLog(Database(path), address_days=30)
    log.record("ann", "sign_in", "ann", address="192.0.2.7")
    log.record("-", "sign_in_failed", "bob", address="198.51.100.9")
    assert [r.address for r in log.records()] == ["198.51.100.9", "192.0.2.7"]
    with closing(sqlite3.connect(path)) as db:
        chained = db.execute("SELECT * FROM audit").fetchall()
        db.execute("UPDATE audit_addresses SET at = at - 31 * 86400 WHERE record_id = 1")
        db.commit()
    assert not [row for row in chained if "192.0.2.7" in repr(row) or "198.51" in repr(row)]
    assert log.purge_addresses() == 1
    assert [r.address for r in log.records()] == ["198.51.100.9", None]
    assert log.verify(full=True).intact  # the chain never held them
    with closing(sqlite3.connect(path)) as db:
        assert "192.0.2.7" not in repr(db.execute("SELECT * FROM audit_addresses").fetchall())


def test_no_address_is_kept_when_address_days_is_0(tmp_path: Path) -> None:
    log = AuditLog(Database(tmp_path / "appliance.db"), address_days=0)
    log.record("ann", "sign_in", "ann", address="192.0.2.7")
    assert log.records()[0].address is None


def test_purged_addresses_are_in_no_file(tmp_path: Path) -> None:
    path = tmp_path / "appliance.db"
    db = Database(path)
    log = AuditLog(db, address_days=30)
    log.record("ann", "sign_in", "ann", address="192.0.2.77")
    log.record("ann", "sign_in", "ann", address="198.51.100.99")
    with closing(sqlite3.connect(path)) as other:
        other.execute("UPDATE audit_addresses SET at = at - 31 * 86400 WHERE record_id = 1")
        other.commit()
    assert log.purge_addresses() == 1
    files = [p for p in tmp_path.iterdir() if p.is_file()]
    assert not [p.name for p in files if b"192.0.2.77" in p.read_bytes()]  # nor in the -wal
    assert [p.name for p in files if b"198.51.100.99" in p.read_bytes()] == ["appliance.db"]
    db.close()
