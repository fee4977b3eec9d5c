"""`appliance ingest` and `appliance documents` as an admin runs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from appliance.store.lock import IndexLock
from tests.conftest import EMBED_CACHE
from tests.ingest.samples import junk_bytes
from tests.test_cli import appliance


def env(data: Path) -> dict[str, str]:
    return {"APPLIANCE_DATA_DIR": str(data), "APPLIANCE_EMBED__CACHE_DIR": str(EMBED_CACHE)}


def test_ingest_shows_progress_and_documents_lists_the_catalog(tmp_path: Path) -> None:
    docs = tmp_path / "documents"
    (docs / "team").mkdir(parents=True)
    (docs / "handbook.md").write_text("# Handbook\n\nLeave is 25 days.\n")
    (docs / "team" / "notes.txt").write_text("Team notes.")
    (docs / "photo.png").write_bytes(b"\x89PNG")
    (docs / "junk.txt").write_bytes(junk_bytes(3000, seed=1))
    done = appliance("ingest", **env(tmp_path))
    assert done.returncode == 1, done.stderr  # one file failed: a script can tell
    assert "4/4 files" in done.stderr
    assert "chunks/s" in done.stderr
    assert "ETA" in done.stderr
    assert "1 failed" in done.stdout
    listing = appliance("documents", **env(tmp_path))
    assert listing.returncode == 0
    status = {line.split()[4]: line for line in listing.stdout.splitlines()[2:]}
    assert status["handbook.md"].startswith("indexed")
    assert status["team/notes.txt"].startswith("indexed")
    assert status["photo.png"].startswith("skipped")
    assert status["junk.txt"].startswith("failed")
    assert "binary" in status["junk.txt"]
    again = appliance("ingest", str(docs / "team"), **env(tmp_path))
    assert again.returncode == 0, again.stderr
    assert "0 files read" in again.stdout  # nothing changed: nothing re-read


def test_ingest_refuses_a_path_outside_the_watched_folder(tmp_path: Path) -> None:
    done = appliance("ingest", str(tmp_path), **env(tmp_path / "data"))
    assert done.returncode == 1
    assert "outside the watched folder" in done.stderr
    assert "APPLIANCE_DOCUMENTS__WATCH_DIR" in done.stderr
    assert "Traceback" not in done.stderr


def test_ingest_while_the_index_is_held_says_who_holds_it(tmp_path: Path) -> None:
    lock = IndexLock(tmp_path / "index.lock")
    try:
        done = appliance("ingest", **env(tmp_path))
    finally:
        lock.release()
    assert done.returncode == 1
    assert "in use by process" in done.stderr
    assert "Traceback" not in done.stderr


def test_too_large_chunks_for_the_embedding_model_are_a_clear_error(tmp_path: Path) -> None:
    done = appliance("ingest", APPLIANCE_DOCUMENTS__CHUNK_TOKENS="400", **env(tmp_path))
    assert done.returncode == 1
    assert "documents.chunk_tokens" in done.stderr
    assert "254" in done.stderr


def test_a_watched_folder_holding_the_data_dir_is_refused(tmp_path: Path) -> None:
    done = appliance("ingest", APPLIANCE_DOCUMENTS__WATCH_DIR=str(tmp_path), **env(tmp_path))
    assert done.returncode == 1
    assert "documents.watch_dir" in done.stderr
    assert "holds data_dir" in done.stderr


def test_redact_reads_a_file_or_standard_input(tmp_path: Path) -> None:
    letter = tmp_path / "letter.txt"
    letter.write_text("Dear Maria Garcia, your card 4111 1111 1111 1111 is ready.\n")
    done = appliance("redact", str(letter))
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Dear <PERSON>, your card <CREDIT_CARD> is ready.\n"
    assert "CREDIT_CARD\t29\t48" in done.stderr
    piped = subprocess.run([sys.executable, "-m", "appliance", "redact", "-"], text=True,
                           input="mail bob@example.org", capture_output=True, check=False,
                           timeout=120)  # fmt: skip
    assert piped.stdout == "mail <EMAIL_ADDRESS>\n"
    missing = appliance("redact", str(tmp_path / "none.txt"))
    assert missing.returncode == 1
    assert "cannot read" in missing.stderr


def test_a_custom_pattern_with_a_bad_name_or_regex_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "a.toml"
    config.write_text('[[pii.custom]]\nname = "badge-id"\npattern = "B\\\\d+"\n')
    done = appliance("--config", str(config), "redact", "-")
    assert done.returncode == 1
    assert "pii.custom[0].name" in done.stderr
    config.write_text('[[pii.custom]]\nname = "BADGE"\npattern = "B(\\\\d+"\n')
    done = appliance("--config", str(config), "redact", "-")
    assert "pii.custom[0].pattern" in done.stderr
