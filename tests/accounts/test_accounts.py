"""Accounts on a real SQLite file: argon2 hashes, sign-in checks, API keys stored hashed."""

from __future__ import annotations

from pathlib import Path

import pytest
from argon2 import PasswordHasher

from appliance.accounts.service import Accounts
from appliance.errors import Conflict, InvalidRequest
from appliance.store.db import Database
from appliance.store.users import UserStore

PASSWORD = "correct horse battery"  # noqa: S105 - a test account


@pytest.fixture
def accounts(tmp_path: Path) -> Accounts:
    return Accounts(UserStore(Database(tmp_path / "appliance.db")))


def test_passwords_are_stored_as_argon2_hashes_only(accounts: Accounts, tmp_path: Path) -> None:
    user = accounts.add("alice", PASSWORD, "admin")
    stored = accounts.users.password_hash(user.id)
    assert stored is not None
    assert stored.startswith("$argon2id$")
    assert PASSWORD.encode() not in (tmp_path / "appliance.db").read_bytes()
    assert accounts.authenticate("alice", PASSWORD) == user
    assert accounts.authenticate("ALICE", PASSWORD) == user  # names ignore case
    assert accounts.authenticate("alice", "wrong password!") is None
    assert accounts.authenticate("nobody", PASSWORD) is None


def test_disabled_users_cannot_sign_in_or_use_keys(accounts: Accounts) -> None:
    accounts.add("bob", PASSWORD)
    _, secret = accounts.create_key("bob")
    assert accounts.user_for_key(secret) is not None
    accounts.set_disabled("bob", True)
    assert accounts.authenticate("bob", PASSWORD) is None
    assert accounts.user_for_key(secret) is None
    accounts.set_disabled("bob", False)
    assert accounts.authenticate("bob", PASSWORD) is not None


def test_keys_are_shown_once_stored_hashed_and_revocable(accounts: Accounts,
                                                         tmp_path: Path) -> None:  # fmt: skip
    user = accounts.add("carol", PASSWORD)
    key, secret = accounts.create_key("carol", "laptop")
    assert secret.startswith("apl_")
    assert len(secret) > 40
    assert secret.encode() not in (tmp_path / "appliance.db").read_bytes()
    assert accounts.user_for_key(secret) == user
    assert accounts.users.keys(user.id)[0].last_used_at is not None
    assert accounts.user_for_key(secret[:-1] + "x") is None
    accounts.users.revoke_key(user.id, key.id)
    assert accounts.user_for_key(secret) is None


def test_bad_names_short_passwords_and_twins_are_refused(accounts: Accounts) -> None:
    with pytest.raises(InvalidRequest, match="at least 10"):
        accounts.add("dave", "short")
    with pytest.raises(InvalidRequest, match="user name"):
        accounts.add("no spaces please", PASSWORD)
    accounts.add("erin", PASSWORD)
    with pytest.raises(Conflict, match="exists"):
        accounts.add("Erin", PASSWORD)


def test_a_new_password_revokes_keys_and_a_rehash_keeps_them(accounts: Accounts) -> None:
    user = accounts.add("fred", PASSWORD)
    _, secret = accounts.create_key("fred")
    signed = accounts.sign_in("fred", PASSWORD)
    assert signed is not None
    weak = PasswordHasher(time_cost=1, memory_cost=8192).hash(PASSWORD)  # older parameters
    accounts.users.rehash_password(user.id, weak)
    assert accounts.authenticate("fred", PASSWORD) == user  # rehashed with today's parameters
    assert accounts.users.password_hash(user.id) != weak
    assert accounts.user_for_key(secret) == user  # the same password: key and session stay
    assert accounts.session(signed[1]) is not None
    assert accounts.set_password("fred", "a brand new password") == 1
    assert accounts.user_for_key(secret) is None
    assert accounts.session(signed[1]) is None
    assert accounts.users.keys(user.id)[0].revoked_at is not None
