"""Crash safety: `appliance ingest` killed with SIGKILL at several moments, the folder changed
in between, then run to the end: the index equals the folder, no duplicates, nothing missing."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

from appliance.embed.embedder import Embedder
from tests.conftest import EMBED_CACHE
from tests.ingest.world import assert_index_equals_folder, make_world

FILES = 40


def paragraph(rng: random.Random, n: int) -> str:
    words = ["leave", "travel", "badge", "payroll", "laptop", "policy", "manager", "office"]
    return f"Section {n}. " + " ".join(rng.choice(words) for _ in range(60)) + "."


def fill(root: Path, rng: random.Random) -> None:
    for i in range(FILES):
        body = "\n\n".join(paragraph(rng, n) for n in range(rng.randint(4, 12)))
        (root / f"doc{i:02}.md").write_text(f"# Document {i}\n\n{body}\n")


def indexed(db: Path) -> int:
    if not db.exists():
        return 0
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as conn:
        try:
            sql = "SELECT COUNT(*) FROM documents WHERE status = 'indexed'"
            return int(conn.execute(sql).fetchone()[0])
        except sqlite3.OperationalError:  # schema not there yet
            return 0


def start_ingest(data: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "APPLIANCE_DATA_DIR": str(data),
           "APPLIANCE_EMBED__CACHE_DIR": str(EMBED_CACHE),
           "APPLIANCE_DOCUMENTS__CHUNK_TOKENS": "64",
           "APPLIANCE_DOCUMENTS__CHUNK_OVERLAP": "8"}  # fmt: skip
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "appliance", "ingest"], env=env,
                                stdout=out, stderr=subprocess.STDOUT)  # fmt: skip


def kill_after(process: subprocess.Popen[bytes], db: Path, docs: int, extra_s: float) -> None:
    """SIGKILL once `docs` documents are indexed, plus a little, to land mid-write."""
    deadline = time.monotonic() + 120
    while indexed(db) < docs and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(extra_s)
    assert process.poll() is None, "ingest finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


def test_kill_9_at_any_moment_then_restart_leaves_the_index_equal_to_the_folder(
    tmp_path: Path, onnx_embedder: Embedder
) -> None:
    rng = random.Random(5)  # noqa: S311 - sample text and kill moments, not secrets
    data = tmp_path / "data"
    root = data / "documents"
    root.mkdir(parents=True)
    fill(root, rng)
    db = data / "appliance.db"
    log = tmp_path / "ingest.log"
    for docs in (0, 3, 12, 25):
        kill_after(start_ingest(data, log), db, docs, rng.uniform(0, 0.3))
        # the folder moves on between runs: an edit, a rename and a delete
        victim = sorted(root.iterdir())[docs % 7]
        victim.write_text(victim.read_text() + "\n\nAmended after a crash.\n")
        sorted(root.iterdir())[docs % 5 + 1].rename(root / f"renamed-{docs}.md")
        sorted(root.iterdir())[-1].unlink()
    finished = start_ingest(data, log)
    assert finished.wait(timeout=300) == 0, log.read_text()
    world = make_world(data, onnx_embedder, size=64, overlap=8)
    assert_index_equals_folder(world)
    chunks = world.catalog.chunks(sorted(world.catalog.owners()))
    per_doc = {(c.path, c.ord) for c in chunks}
    assert len(per_doc) == len(chunks)  # no chunk twice
    assert indexed(db) == len(list(root.iterdir()))
