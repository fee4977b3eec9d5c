"""Crash safety: `appliance ingest` killed with SIGKILL at each kind of moment (while starting,
between the vector write and the catalog commit, after the commit and before the old vectors
go, inside a rename or a failure, at a random time), the folder changing in between; then run
to the end: the index equals the folder, no chunk twice, none of deleted files, none missing."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from appliance.embed.embedder import Embedder
from tests.conftest import EMBED_CACHE
from tests.ingest.samples import junk_bytes
from tests.ingest.world import assert_index_equals_folder, make_world

REPO = Path(__file__).resolve().parents[2]
FILES = 60


def fill(root: Path, rng: random.Random) -> None:
    words = ["leave", "travel", "badge", "payroll", "laptop", "policy", "manager", "office"]
    for i in range(FILES):
        body = "\n\n".join(f"Section {n}. " + " ".join(rng.choice(words) for _ in range(60))
                           for n in range(rng.randint(4, 12)))  # fmt: skip
        (root / f"doc{i:02}.md").write_text(f"# Document {i}\n\n{body}\n")


def run(data: Path, log: Path, *kill_at: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "APPLIANCE_DATA_DIR": str(data),
           "APPLIANCE_EMBED__CACHE_DIR": str(EMBED_CACHE),
           "APPLIANCE_DOCUMENTS__CHUNK_TOKENS": "64",
           "APPLIANCE_DOCUMENTS__CHUNK_OVERLAP": "8"}  # fmt: skip
    cmd = [sys.executable, "-m", "tests.ingest.crash_run", *kill_at] if kill_at else [
        sys.executable, "-m", "appliance", "ingest"]  # fmt: skip
    with log.open("ab") as out:
        return subprocess.Popen(cmd, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)


def killed(process: subprocess.Popen[bytes], log: Path) -> None:
    assert process.wait(timeout=300) == -signal.SIGKILL, log.read_text()[-2000:]


def kill_after(process: subprocess.Popen[bytes], delay: float, log: Path) -> None:
    time.sleep(delay)
    assert process.poll() is None, "ingest finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    killed(process, log)


def test_kill_9_at_any_moment_then_restart_leaves_the_index_equal_to_the_folder(
    tmp_path: Path, onnx_embedder: Embedder
) -> None:
    rng = random.Random(5)  # noqa: S311 - sample text, not secrets
    data, log = tmp_path / "data", tmp_path / "ingest.log"
    root = data / "documents"
    root.mkdir(parents=True)
    fill(root, rng)
    kill_after(run(data, log), 0.3, log)  # still starting
    kill_after(run(data, log), 1.5 + rng.uniform(0, 0.5), log)  # anywhere in the work
    killed(run(data, log, "index", "upsert", "1", "after"), log)  # vectors, no rows yet
    killed(run(data, log, "catalog", "replace_chunks", "3", "after"), log)  # some rows in
    edited = root / "doc01.md"  # indexed above: its old vectors must go
    edited.write_text(edited.read_text() + "\n\nAmended after a crash.\n")
    (root / "doc00.md").unlink()
    killed(run(data, log, "index", "delete", "2", "before"), log)  # rows in, old vectors not out
    (root / "doc02.md").rename(root / "renamed.md")
    killed(run(data, log, "catalog", "move", "1", "after"), log)  # a rename, half done
    (root / "doc03.md").write_bytes(junk_bytes(2000, seed=9))
    killed(run(data, log, "catalog", "settle", "1", "after"), log)  # a failure, half done
    (root / "doc04.md").write_text("# Rewritten\n\nAll new.\n")
    assert run(data, log).wait(timeout=300) == 0, log.read_text()[-2000:]
    world = make_world(data, onnx_embedder, size=64, overlap=8)
    assert_index_equals_folder(world)
    chunks = world.catalog.chunks(sorted(world.catalog.owners()))
    assert len({(c.path, c.ord) for c in chunks}) == len(chunks)  # no chunk twice
    assert "Amended after a crash." in " ".join(c.text for c in chunks if c.path == "doc01.md")
    assert world.status()["doc03.md"] == "failed"
    assert "doc00.md" not in world.status()
