"""The conversation store on a real SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.errors import NotFound, StoreError
from appliance.store.conversations import ConversationStore
from appliance.store.db import Database


@pytest.fixture
def store(tmp_path: Path) -> ConversationStore:
    return ConversationStore(Database(tmp_path / "appliance.db"))


def test_messages_keep_their_order_and_usage(store: ConversationStore) -> None:
    conv = store.create("t")
    store.add_message(conv.id, "user", "q")
    store.add_message(conv.id, "assistant", "a", finish_reason="stop", completion_tokens=3)
    messages = store.messages(conv.id)
    assert [(m.role, m.content) for m in messages] == [("user", "q"), ("assistant", "a")]
    assert messages[1].completion_tokens == 3
    assert store.recent()[0].updated_at >= conv.updated_at


def test_regenerate_drops_only_a_trailing_answer(store: ConversationStore) -> None:
    conv = store.create("t")
    store.add_message(conv.id, "user", "q")
    store.drop_trailing_assistant(conv.id)
    assert len(store.messages(conv.id)) == 1
    store.add_message(conv.id, "assistant", "a")
    store.drop_trailing_assistant(conv.id)
    assert [m.role for m in store.messages(conv.id)] == ["user"]


def test_deleting_a_conversation_deletes_its_messages(store: ConversationStore) -> None:
    conv = store.create("t")
    store.add_message(conv.id, "user", "q")
    store.delete(conv.id)
    assert store.messages(conv.id) == []
    with pytest.raises(NotFound):
        store.get(conv.id)


def test_a_message_for_a_missing_conversation_is_not_found(store: ConversationStore) -> None:
    with pytest.raises(NotFound, match="nope"):
        store.add_message("nope", "user", "q")


def test_reopening_keeps_data_and_schema(tmp_path: Path) -> None:
    first = ConversationStore(Database(tmp_path / "appliance.db"))
    conv = first.create("kept")
    again = ConversationStore(Database(tmp_path / "appliance.db"))
    assert again.get(conv.id).title == "kept"


def test_unusable_data_dir_is_explained(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match="cannot open the database"):
        Database(blocker / "appliance.db")
