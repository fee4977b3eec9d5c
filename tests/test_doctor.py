"""`appliance doctor` on this box and on broken set-ups: the real command, model, SQLite, Chroma."""

from __future__ import annotations

import http.server
import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from appliance.embed.export import onnx_file
from appliance.embed.models import resolve_model_dir
from appliance.llm.build import probe
from appliance.store.chroma import ChromaIndex
from appliance.store.db import SCHEMA_VERSION, Database
from tests.conftest import EMBED_CACHE

ROOT = Path(__file__).parent.parent
APPLIANCE = Path(sys.executable).parent / "appliance"  # the installed console script
# Every check that runs when the settings are good, in the report's order.
ALL_CHECKS = [
    "settings",
    "cpu-features",
    "gpu",
    "model",
    "model-hash",
    "chat-template",
    "memory",
    "embedding-model",
    "onnx-export",
    "data-dir",
    "disk",
    "watched-folder",
    "database",
    "vector-index",
    "port",
]


class Report:
    def __init__(self, done: subprocess.CompletedProcess[str]) -> None:
        self.code, self.stdout, self.stderr = done.returncode, done.stdout, done.stderr
        parsed = json.loads(done.stdout) if done.stdout.startswith("{") else {}
        self.checks: dict[str, dict[str, Any]] = {c["name"]: c for c in parsed.get("checks", [])}
        self.summary: dict[str, int] = parsed.get("summary", {})

    def __getitem__(self, name: str) -> dict[str, Any]:
        return self.checks[name]

    def failed(self) -> set[str]:
        return {name for name, check in self.checks.items() if check["status"] == "fail"}


@pytest.fixture(scope="module")
def onnx_export() -> Path:
    """The embedding model's ONNX export in the suite's cache (made once per machine)."""
    return onnx_file(resolve_model_dir(""), EMBED_CACHE, quantize=True)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def doctor(data_dir: Path, *args: str, json_output: bool = True, **env: str) -> Report:
    """`appliance doctor` as an operator runs it, in the repository (models/manifest.toml)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE_")}
    environ["APPLIANCE_DATA_DIR"] = str(data_dir)
    environ["APPLIANCE_EMBED__CACHE_DIR"] = str(EMBED_CACHE)
    environ["APPLIANCE_WEB__PORT"] = str(free_port())
    environ.update(env)
    command = [str(APPLIANCE), *args, "doctor", *(["--json"] if json_output else [])]
    done = subprocess.run(
        command, env=environ, cwd=ROOT, capture_output=True, text=True, timeout=180, check=False
    )
    assert "Traceback" not in done.stderr, done.stderr
    return Report(done)


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    files = (p for p in sorted(folder.rglob("*")) if p.is_file())
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in files}


def test_a_fresh_install_on_this_box_is_healthy_and_left_untouched(
    data_dir: Path, onnx_export: Path
) -> None:
    report = doctor(data_dir)
    assert list(report.checks) == ALL_CHECKS
    # warnings this VM may give (a full disk, little free memory); every other check is ok
    warned = {name for name, c in report.checks.items() if c["status"] == "warn"}
    assert warned <= {"disk", "memory"}
    assert report.code == (1 if warned else 0)
    counts = {"ok": len(ALL_CHECKS) - len(warned), "warn": len(warned), "fail": 0}
    assert report.summary == {**counts, "exit_code": report.code}
    assert "sha256 and size match" in report["model-hash"]["detail"]
    assert "GGUF v3" in report["model"]["detail"]
    assert str(onnx_export) in report["onnx-export"]["detail"]
    assert "will be created" in report["database"]["detail"]
    assert not data_dir.exists()  # the doctor made nothing


def test_the_text_report_has_one_line_per_check_and_a_summary(data_dir: Path) -> None:
    report = doctor(data_dir, json_output=False)
    lines = report.stdout.splitlines()
    assert len(lines) == len(ALL_CHECKS) + 1
    assert [line.split()[1] for line in lines[:-1]] == ALL_CHECKS
    assert all(line.split()[0] in ("ok", "WARN", "FAIL") for line in lines[:-1])
    assert lines[-1].startswith(f"{len(ALL_CHECKS)} checks: ")


def test_a_used_data_dir_is_read_without_being_changed(data_dir: Path, onnx_export: Path) -> None:
    Database(data_dir / "appliance.db").close()
    index = ChromaIndex(data_dir / "chroma", "embedder-for-the-doctor")
    index.upsert(["a", "b"], np.ones((2, 4), dtype=np.float32))
    index.close()
    docs = data_dir / "documents"
    (docs / "hr").mkdir(parents=True)
    (docs / "hr" / "leave.md").write_text("# Leave\n\n25 days a year.\n")
    (docs / "notes.txt").write_text("notes")
    (docs / "photo.jpg").write_bytes(b"\xff\xd8" * 100)
    before = snapshot(data_dir)
    report = doctor(data_dir)
    assert report.failed() == set()
    assert f"schema version {SCHEMA_VERSION} (current)" in report["database"]["detail"]
    assert "1 collections" in report["vector-index"]["detail"]
    assert "(of embedder-for-the-doctor)" in report["vector-index"]["detail"]
    watched = report["watched-folder"]["detail"]
    assert "3 files" in watched
    assert "2 of a type the index reads" in watched
    after = snapshot(data_dir)
    assert after.keys() == before.keys()  # nothing created
    # Chroma adds a row to its lock table at every open; nothing else may change
    lock_table = "chroma/chroma.sqlite3"
    assert {k: v for k, v in after.items() if k != lock_table} == {
        k: v for k, v in before.items() if k != lock_table
    }


def test_a_missing_model_file_fails_with_what_to_do(data_dir: Path) -> None:
    report = doctor(data_dir, APPLIANCE_LLM__MODEL="/nonexistent.gguf")
    assert report.code == 2
    assert report.failed() == {"model"}
    assert "/nonexistent.gguf does not exist" in report["model"]["detail"]
    assert "llm.model" in report["model"]["action"]
    assert "model-hash" not in report.checks  # nothing to hash


@pytest.mark.parametrize(
    ("content", "expected"),
    [(b"<html>not a model</html>" * 40, "wrong magic bytes"), ("truncated", "is truncated")],
)
def test_a_model_file_that_is_no_whole_gguf_fails(
    tmp_path: Path, data_dir: Path, model_path: Path, content: bytes | str, expected: str
) -> None:
    bad = tmp_path / "bad.gguf"
    with model_path.open("rb") as source:
        bad.write_bytes(source.read(5_000_000) if content == "truncated" else content)
    report = doctor(data_dir, APPLIANCE_LLM__MODEL=str(bad))
    assert report.code == 2
    assert expected in report["model"]["detail"]
    assert "GGUF" in report["model"]["action"]


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"sha256": "0" * 64}, "says " + "0" * 64),
        ({"sha256": "0" * 64, "size": 12345}, "says 12345"),
    ],
)
def test_a_model_unlike_its_manifest_entry_fails(
    tmp_path: Path, data_dir: Path, model_path: Path, entry: dict[str, Any], expected: str
) -> None:
    models = tmp_path / "models"
    models.mkdir()
    lines = [f'file = "{model_path.name}"', *(f"{k} = {v!r}" for k, v in entry.items())]
    (models / "manifest.toml").write_text("[[model]]\n" + "\n".join(lines) + "\n")
    report = doctor(data_dir, APPLIANCE_LLM__MODELS_DIR=str(models))
    assert report.code == 2
    assert report.failed() == {"model-hash"}
    assert expected in report["model-hash"]["detail"]
    assert "copy" in report["model-hash"]["action"]


def test_a_model_not_in_the_manifest_is_not_hashed(tmp_path: Path, data_dir: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / "manifest.toml").write_text('[[model]]\nfile = "other.gguf"\nsha256 = "00"\n')
    report = doctor(data_dir, APPLIANCE_LLM__MODELS_DIR=str(models))
    assert report["model-hash"]["status"] == "ok"
    assert "is not listed" in report["model-hash"]["detail"]


def test_a_missing_embedding_model_fails(tmp_path: Path, data_dir: Path) -> None:
    empty = tmp_path / "embedding-model"
    empty.mkdir()
    report = doctor(data_dir, APPLIANCE_EMBED__MODEL=str(empty))
    assert report.code == 2
    assert report.failed() == {"embedding-model", "onnx-export"}
    assert "has no config.json" in report["embedding-model"]["detail"]
    assert "embed.model" in report["embedding-model"]["action"]


def test_a_watched_folder_that_is_a_file_fails(tmp_path: Path, data_dir: Path) -> None:
    not_a_folder = tmp_path / "documents.txt"
    not_a_folder.write_text("a file where the folder should be")
    report = doctor(data_dir, APPLIANCE_DOCUMENTS__WATCH_DIR=str(not_a_folder))
    assert report.code == 2
    assert report.failed() == {"watched-folder"}
    assert "is not a folder" in report["watched-folder"]["detail"]


def test_a_corrupt_database_fails_and_stays_as_it_was(data_dir: Path) -> None:
    data_dir.mkdir()
    garbage = b"this is no SQLite database " * 400
    (data_dir / "appliance.db").write_bytes(garbage)
    report = doctor(data_dir)
    assert report.code == 2
    assert report.failed() == {"database"}
    assert "not a database" in report["database"]["detail"]
    assert "backup" in report["database"]["action"]
    assert (data_dir / "appliance.db").read_bytes() == garbage
    assert sorted(p.name for p in data_dir.iterdir()) == ["appliance.db"]


def test_a_database_newer_than_the_code_fails(data_dir: Path) -> None:
    data_dir.mkdir()
    with sqlite3.connect(data_dir / "appliance.db") as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    report = doctor(data_dir)
    assert report.code == 2
    assert f"schema version {SCHEMA_VERSION + 1}, newer" in report["database"]["detail"]


def test_a_damaged_vector_index_fails(data_dir: Path) -> None:
    (data_dir / "chroma").mkdir(parents=True)
    (data_dir / "chroma" / "chroma.sqlite3").write_bytes(b"not sqlite at all " * 400)
    report = doctor(data_dir)
    assert report.code == 2
    assert report.failed() == {"vector-index"}
    assert "move it aside" in report["vector-index"]["action"]


def test_bad_settings_are_a_failure_with_their_message(tmp_path: Path, data_dir: Path) -> None:
    toml = tmp_path / "appliance.toml"
    toml.write_text("[llm]\nn_cxt = 4096\n")
    report = doctor(data_dir, "--config", str(toml))
    assert report.code == 2
    assert report.failed() == {"settings"}
    assert "unknown setting llm.n_cxt" in report["settings"]["detail"]
    assert str(toml) in report["settings"]["detail"]
    assert list(report.checks) == ["settings", "cpu-features", "gpu"]  # no check of defaults


def test_the_settings_line_names_the_file_and_the_variables(tmp_path: Path, data_dir: Path) -> None:
    toml = tmp_path / "appliance.toml"
    toml.write_text("[llm]\nn_ctx = 2048\n")
    report = doctor(data_dir, "--config", str(toml))
    detail = report["settings"]["detail"]
    assert detail.startswith(f"{toml} + environment (")
    assert "APPLIANCE_DATA_DIR" in detail
    assert str(data_dir) not in detail  # names only: a value may be a secret


def test_gpu_layers_without_a_gpu_backend_warn(data_dir: Path) -> None:
    report = doctor(data_dir, APPLIANCE_LLM__N_GPU_LAYERS="-1")
    if probe().gpu_offload:  # a GPU build: offload is checked against its devices
        assert report["gpu"]["status"] in ("ok", "warn")
        assert "GPU memory" in report["memory"]["detail"]
    else:
        assert report["gpu"]["status"] == "warn"
        assert "is ignored" in report["gpu"]["detail"]
        assert "GGML_CUDA" in report["gpu"]["action"]
        assert report.code == 1


@pytest.fixture
def healthz_server() -> Iterator[int]:
    """An HTTP server on loopback answering /healthz like the appliance."""

    class Healthz(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b'{"status":"ok"}' if self.path == "/healthz" else b"{}"
            self.send_response(200 if self.path == "/healthz" else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Healthz)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def test_a_taken_port_warns_and_says_who_answers(data_dir: Path, healthz_server: int) -> None:
    report = doctor(data_dir, APPLIANCE_WEB__PORT=str(healthz_server))
    assert report["port"]["status"] == "warn"
    assert "is in use" in report["port"]["detail"]
    assert "/healthz answers ok" in report["port"]["detail"]
    assert "already serving" in report["port"]["action"]


def test_a_port_held_by_something_else_warns(data_dir: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        report = doctor(data_dir, APPLIANCE_WEB__PORT=str(sock.getsockname()[1]))
    assert report["port"]["status"] == "warn"
    assert "no HTTP answer" in report["port"]["detail"]
