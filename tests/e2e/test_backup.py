"""Backup beside a real server that is indexing, restore into a new data dir, and a server on
it: every conversation, account, key, audit record and indexed document is there."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from appliance.store.chroma import ChromaIndex
from tests.conftest import EMBED_CACHE
from tests.e2e.conftest import Server, running_server
from tests.e2e.test_documents import statuses, wait_for

FILES = 40
PASSWORD = "erin's password for tests"  # noqa: S105 - a throwaway test account


def cli(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """An `appliance` command on `data` with the server's settings."""
    env = {
        **os.environ,
        "APPLIANCE_DATA_DIR": str(data),
        "APPLIANCE_EMBED__CACHE_DIR": str(EMBED_CACHE),
    }
    return subprocess.run(
        [sys.executable, "-m", "appliance", *args],
        env=env,
        text=True,
        capture_output=True,
        timeout=600,
        check=False,
    )


def drop_files(folder: Path) -> None:
    for i in range(FILES):
        body = "\n\n".join(
            f"Rule {i}.{n}: the archive of unit {i} keeps form {n} for "
            f"{n + i} years, stored by the clerk of team {i}."
            for n in range(40)
        )
        (folder / f"records-{i:02}.md").write_text(f"# Records {i}\n\n{body}\n")


def get(client: httpx.Client, path: str) -> Any:
    reply = client.get(path, timeout=30)
    assert reply.status_code == 200, (path, reply.text)
    return reply.json()


def conversations(client: httpx.Client) -> dict[str, Any]:
    """Each conversation of the client's user with its messages (role, content)."""
    return {
        c["id"]: (
            c["title"],
            [
                (m["role"], m["content"])
                for m in get(client, f"/api/conversations/{c['id']}")["messages"]
            ],
        )
        for c in get(client, "/api/conversations")
    }


@dataclass
class Source:
    """What the first server held, read through its API."""

    admin_key: str
    erin_key: str
    users: list[tuple[str, str]] = field(default_factory=list)
    admin_chats: dict[str, Any] = field(default_factory=dict)
    erin_chats: dict[str, Any] = field(default_factory=dict)
    audit: list[dict[str, Any]] = field(default_factory=list)
    indexed_before_backup: int = 0  # documents indexed when the backup started


@pytest.fixture(scope="module")
def backed_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, Source]]:
    """A server with accounts, a key, conversations and audit records, backed up while it
    indexes a folder of documents; yields (its data dir, the backup, what it held)."""
    data, backup = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("b") / "backup"
    with running_server(data, {}) as server:
        source = _fill(server, data)
        drop_files(data / "documents")
        wait_for("indexing under way", lambda: 0 < _indexed(server) < FILES)
        source.indexed_before_backup = _indexed(server)
        started = time.monotonic()
        made = cli(data, "backup", str(backup))
        took = time.monotonic() - started
        assert made.returncode == 0, made.stderr
        assert f"backup in {backup}: {FILES + 1} files ({FILES} documents)" in made.stdout
        size = sum(p.stat().st_size for p in backup.rglob("*") if p.is_file())
        print(
            f"\nbackup while indexing: {took:.1f} s, {size / 1024:.0f} KiB "
            f"({source.indexed_before_backup}/{FILES} documents indexed at its start)"
        )
        source.audit = get(server.http, "/api/audit?limit=1000")
        yield data, backup, source


def _fill(server: Server, data: Path) -> Source:
    added = server.http.post("/api/users", json={"name": "erin", "password": PASSWORD})
    assert added.status_code == 201, added.text
    key = cli(data, "keys", "create", "erin", "--name", "laptop")  # a CLI beside the server
    assert key.returncode == 0, key.stderr
    source = Source(server.key, key.stdout.strip())
    erin = httpx.Client(
        base_url=server.base_url, headers={"Authorization": f"Bearer {source.erin_key}"}
    )
    for client, title in ((server.http, "Quarterly numbers"), (erin, "Onboarding")):
        conv = client.post("/api/conversations", json={"title": title}).json()
        body = {
            "content": f"Say one word about {title.lower()}.",
            "max_tokens": 6,
            "temperature": 0,
        }
        with client.stream("POST", f"/api/conversations/{conv['id']}/messages", json=body) as reply:
            assert reply.status_code == 200
            assert list(reply.iter_lines())
    server.http.post("/api/conversations", json={"title": "Left empty"})
    source.users = [(u["name"], u["role"]) for u in get(server.http, "/api/users")]
    source.admin_chats, source.erin_chats = conversations(server.http), conversations(erin)
    erin.close()
    return source


def _indexed(server: Server) -> int:
    return list(statuses(server).values()).count("indexed")


@pytest.fixture(scope="module")
def restored(
    backed_up: tuple[Path, Path, Source], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, Path, Source]]:
    """The backup restored into a new data dir (checked before a server starts there), then a
    server on it; yields (that server, its data dir, what the first one held)."""
    _, backup, source = backed_up
    target = tmp_path_factory.mktemp("restored") / "data"
    started = time.monotonic()
    done = cli(target, "restore", str(backup))
    assert done.returncode == 0, done.stderr
    print(f"\nrestore: {time.monotonic() - started:.1f} s; {done.stdout.strip()}")
    with closing(sqlite3.connect(target / "appliance.db")) as conn:
        chunk_ids = {r[0] for r in conn.execute("SELECT id FROM chunks")}
    manifest = json.loads((backup / "manifest.json").read_text())
    index = ChromaIndex(target / "chroma", manifest["embedding"]["name"])
    assert chunk_ids
    assert index.ids() == chunk_ids  # every chunk of the copied catalog has its vector
    index.close()
    with running_server(target, {}) as server:
        yield server, target, source


def test_every_conversation_and_account_comes_back(restored: tuple[Server, Path, Source]) -> None:
    server, _, source = restored
    old_key = httpx.Client(
        base_url=server.base_url, headers={"Authorization": f"Bearer {source.admin_key}"}
    )
    erin = httpx.Client(
        base_url=server.base_url, headers={"Authorization": f"Bearer {source.erin_key}"}
    )
    try:
        assert get(old_key, "/api/me")["name"] == "admin"  # the keys still authenticate
        assert get(erin, "/api/me")["name"] == "erin"
        assert [(u["name"], u["role"]) for u in get(old_key, "/api/users")] == source.users
        assert conversations(old_key) == source.admin_chats
        assert conversations(erin) == source.erin_chats
        assert len(source.admin_chats) == 2
        assert all(len(m) == 2 for t, m in source.erin_chats.values())
        assert (
            httpx.post(
                f"{server.base_url}/api/session", json={"name": "erin", "password": PASSWORD}
            ).status_code
            == 200
        )
    finally:
        old_key.close()
        erin.close()


def test_the_audit_chain_comes_back_intact(restored: tuple[Server, Path, Source]) -> None:
    server, data, source = restored
    verified = cli(data, "audit", "verify", "--full")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "audit log intact" in verified.stdout
    back = {r["id"]: r for r in get(server.http, "/api/audit?limit=1000")}
    before = {r["id"]: r for r in source.audit}
    copied = [i for i in sorted(back) if i in before and back[i]["hash"] == before[i]["hash"]]
    assert copied == list(range(1, len(copied) + 1))  # a prefix of the chain, as it was
    assert len(copied) >= 5  # the sign-ups, keys and chats made before the backup
    assert back[len(copied) + 1]["action"] == "backup.restore"
    assert before[len(copied) + 1]["action"] == "backup.create"  # written after the copy


def test_every_indexed_document_comes_back_searchable_without_being_read_again(
    restored: tuple[Server, Path, Source], backed_up: tuple[Path, Path, Source]
) -> None:
    server = restored[0]
    copy = backed_up[1] / "appliance.db"
    with closing(sqlite3.connect(f"file:{copy}?mode=ro", uri=True)) as conn:
        in_backup = dict(
            conn.execute(
                "SELECT path, indexed_at FROM documents WHERE status = 'indexed'"
            ).fetchall()
        )
        first_chunks = conn.execute(
            "SELECT c.id, c.text, d.path FROM chunks c JOIN documents d ON d.id = c.document_id "
            "WHERE c.ord = 0 AND d.status = 'indexed'"
        ).fetchall()
    print(f"\n{len(in_backup)}/{FILES} documents were indexed in the backup")
    assert in_backup
    listed = {d["path"]: d for d in get(server.http, "/api/documents")["documents"]}
    for path, indexed_at in in_backup.items():  # not re-read: the same row, the same time
        assert (listed[path]["status"], listed[path]["indexed_at"]) == ("indexed", indexed_at)
    for chunk_id, text, path in first_chunks:
        hits = server.http.post("/api/search", json={"query": text, "k": 3}).json()
        assert (hits[0]["chunk_id"], hits[0]["source"]) == (chunk_id, path)
        assert "vector" in hits[0]["found_by"]
        assert hits[0]["similarity"] > 0.99  # its own text: the very vector it was stored with
    # the files still pending in the backup came back too, and are indexed now
    wait_for("the rest indexed", lambda: list(statuses(server).values()) == ["indexed"] * FILES)


def test_restore_refuses_a_data_dir_in_use(backed_up: tuple[Path, Path, Source]) -> None:
    data, backup, _ = backed_up
    refused = cli(data, "restore", str(backup))
    assert refused.returncode == 1
    assert f"appliance: data_dir {data} is not empty" in refused.stderr
    assert "nothing was written" in refused.stderr
