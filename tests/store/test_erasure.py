"""Erasure leaves nothing on disk: a deleted conversation, a user's erased data and a removed
document's text are found in no file under data_dir (WAL and Chroma's files included)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.config import Settings
from appliance.ingest.pipeline import IngestPipeline
from appliance.store.catalog import Catalog, ChunkRow, FileState
from appliance.store.conversations import ConversationStore
from appliance.store.db import Database
from appliance.store.feedback import FeedbackStore
from appliance.store.keywords import KeywordIndex
from appliance.store.users import UserStore
from appliance.wiring import build_pipeline
from tests.conftest import make_settings


def nonce() -> str:
    """One word no tokenizer splits (FTS5 keeps it as one term) and no text holds by chance."""
    return "zqxnonce" + uuid.uuid4().hex


def found(data_dir: Path, word: str) -> list[str]:
    """The files under `data_dir` whose bytes hold `word`. Looked for by a middle part of its
    random half: FTS5 stores a term without the prefix it shares with the term before it, and
    the stemmer may cut its end."""
    mark = word[12:32].encode()
    return sorted(str(p.relative_to(data_dir)) for p in data_dir.rglob("*")
                  if p.is_file() and mark in p.read_bytes())  # fmt: skip


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    made = Database(tmp_path / "data" / "appliance.db")
    yield made
    made.close()


def chat(db: Database, user_id: int | None, word: str, others: int = 20) -> str:
    """A conversation (among others) whose title, question, answer and feedback hold `word`."""
    store = ConversationStore(db)
    for n in range(others):
        filler = store.create(f"other {n}", user_id)
        store.add_message(filler.id, "user", f"an unrelated question number {n} " * 20)
    conv = store.create(f"About {word}", user_id)
    store.add_message(conv.id, "user", f"What is {word}? " + "Some context. " * 50)
    answer = store.add_message(conv.id, "assistant", f"{word} is a code word. " * 30)
    FeedbackStore(db).rate(answer.id, user_id, -1, f"wrong about {word}")
    return conv.id


def test_a_deleted_conversation_is_in_no_file(db: Database) -> None:
    word = nonce()
    conversation = chat(db, None, word)
    assert "appliance.db-wal" in found(db.path.parent, word)
    ConversationStore(db).delete(conversation)
    assert found(db.path.parent, word) == []


def test_a_users_erased_data_is_in_no_file_and_others_stay(db: Database) -> None:
    users = UserStore(db)
    erased, kept = users.add("erased", "employee", None), users.add("kept", "employee", None)
    gone, stays = nonce(), nonce()
    chat(db, erased.id, gone)
    chat(db, kept.id, stays)
    assert found(db.path.parent, gone) == ["appliance.db-wal"]
    assert ConversationStore(db).delete_all(erased.id) == 21
    assert found(db.path.parent, gone) == []
    assert found(db.path.parent, stays) == ["appliance.db"]


def test_conversations_past_retention_are_in_no_file(db: Database) -> None:
    word = nonce()
    chat(db, None, word, others=0)
    assert found(db.path.parent, word) == ["appliance.db-wal"]
    ConversationStore(db).delete_older(before=float("inf"))
    assert found(db.path.parent, word) == []


def chunk(n: int, text: str) -> ChunkRow:
    return ChunkRow(id=uuid.uuid4().hex, ord=n, text=text, page=None, heading=f"Part {n}",
                    hash=uuid.uuid4().hex, tokens=len(text.split()))  # fmt: skip


def fill(catalog: Catalog, files: int, word: str = "") -> None:
    """`files` documents, one transaction each (so the keyword index has several segments);
    the middle one mentions `word`."""
    for f in range(files):
        text = [f"policy {f} section {n} covers travel and leave rules" * 8 for n in range(10)]
        if f == files // 2 and word:
            text[3] += f" ask {word} first"
        catalog.replace_chunks(FileState(f"doc-{f}.md", 1, 1, "sha"), None,
                               [chunk(n, t) for n, t in enumerate(text)])  # fmt: skip


def test_a_removed_documents_words_leave_the_keyword_index(db: Database) -> None:
    catalog, word = Catalog(db), nonce()
    fill(catalog, 40, word)
    assert [i for i, _ in KeywordIndex(db).search(word, 5)]
    catalog.remove("doc-20.md")
    db.checkpoint()
    assert KeywordIndex(db).search(word, 5) == []
    assert found(db.path.parent, word) == ["appliance.db"]  # FTS5 keeps it in a segment
    steps: list[int] = []
    catalog.compact(between=lambda: steps.append(1))
    assert steps  # merged in steps, the database free between them
    assert found(db.path.parent, word) == []
    assert KeywordIndex(db).search("travel", 3)  # the other documents are still found


def test_compaction_is_done_once_per_removal_and_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "appliance.db"
    db = Database(path)
    fill(Catalog(db), 4)
    assert not KeywordIndex(db).compact()  # nothing was removed: nothing to merge
    Catalog(db).remove("doc-1.md")
    db.close()  # as if the server stopped before it compacted
    again = Database(path)
    assert KeywordIndex(again).compact()
    assert not KeywordIndex(again).compact()
    again.close()


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IngestPipeline]:
    """The real pipeline (ONNX embedder, Chroma, SQLite) on a data_dir of its own."""
    settings: Settings = make_settings(tmp_path_factory.mktemp("erasure") / "data")
    db = Database(settings.data_path / "appliance.db")
    made = build_pipeline(settings, db)
    yield made
    made.index.close()
    db.close()


def document(word: str) -> str:
    body = "\n\n".join(f"Clause {n}: the travel desk books trains for staff of team {n}."
                       for n in range(40))  # fmt: skip
    return f"# Travel\n\n{body}\n\nThe desk code is {word}, ask for it.\n"


def test_a_deleted_document_is_in_no_file_and_chroma_holds_no_text(
    pipeline: IngestPipeline,
) -> None:
    data, word = pipeline.root.parent, nonce()
    (pipeline.root / "travel.md").write_text(document(word))
    (pipeline.root / "other.md").write_text(document(nonce()))
    pipeline.reconcile()
    where = found(data, word)
    assert "appliance.db-wal" in where
    # Chroma holds vectors and chunk ids, no text
    assert all(n.startswith(("appliance.db", "documents/")) for n in where), where
    (pipeline.root / "travel.md").unlink()
    pipeline.reconcile()
    assert found(data, word) == []


def test_the_words_an_edit_takes_out_of_a_document_are_in_no_file(
    pipeline: IngestPipeline,
) -> None:
    data, word = pipeline.root.parent, nonce()
    (pipeline.root / "edited.md").write_text(document(word))
    pipeline.reconcile()
    assert found(data, word)
    (pipeline.root / "edited.md").write_text(document("nothing secret any more"))
    pipeline.reconcile()
    assert found(data, word) == []


def test_a_compaction_cut_short_is_done_again_at_the_next_call(db: Database) -> None:
    catalog, word = Catalog(db), nonce()
    fill(catalog, 40, word)
    catalog.remove("doc-20.md")

    def crash() -> None:
        raise RuntimeError("stopped between two merge steps")

    with pytest.raises(RuntimeError):
        KeywordIndex(db).compact(between=crash)
    assert KeywordIndex(db).compact()  # still due (the merge may not have reached it): done now
    db.checkpoint()
    assert found(db.path.parent, word) == []
    assert not KeywordIndex(db).compact()
