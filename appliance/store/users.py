"""Users, groups and API keys in SQLite. Only hashes of secrets are stored."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from typing import Literal

import msgspec

from appliance.errors import Conflict, NotFound
from appliance.store.db import Database

Role = Literal["admin", "employee"]
KEY_USE_EVERY_S = 60  # an API key's `last_used_at` is written at most this often


class User(msgspec.Struct, frozen=True):
    id: int
    name: str
    role: Role
    disabled: bool
    created_at: float


class ApiKey(msgspec.Struct, frozen=True):
    id: int
    user_id: int
    name: str
    prefix: str  # the first characters of the key, to tell keys apart; not a secret
    created_at: float
    last_used_at: float | None
    revoked_at: float | None
    expires_at: float | None = None  # refused from then on, like a revoked key


def key_hash(secret: str) -> str:
    """API keys are long random strings: a plain hash is enough (no guessing to slow down)."""
    return hashlib.sha256(secret.encode()).hexdigest()


class UserStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, name: str, role: Role, password_hash: str | None) -> User:
        try:
            with self._db.transaction() as tx:
                tx.execute(
                    "INSERT INTO users (name, password_hash, role, created_at) VALUES (?, ?, ?, ?)",
                    (name, password_hash, role, time.time()),
                )
        except sqlite3.IntegrityError:
            raise Conflict(f"a user named {name!r} exists already") from None
        return self.by_name(name)

    def by_name(self, name: str) -> User:
        rows = self._db.query("SELECT * FROM users WHERE name = ?", (name,))
        if not rows:
            raise NotFound(f"no user named {name!r}; `appliance users list` shows them")
        return _user(rows[0])

    def by_id(self, user_id: int) -> User:
        rows = self._db.query("SELECT * FROM users WHERE id = ?", (user_id,))
        if not rows:
            raise NotFound(f"no user {user_id}")
        return _user(rows[0])

    def password_hash(self, user_id: int) -> str | None:
        rows = self._db.query("SELECT password_hash FROM users WHERE id = ?", (user_id,))
        return rows[0][0] if rows else None

    def all(self) -> list[User]:
        return [_user(r) for r in self._db.query("SELECT * FROM users ORDER BY name")]

    def names(self) -> list[str]:
        """Every account's name (the redactor's directory of people)."""
        return [str(r[0]) for r in self._db.query("SELECT name FROM users ORDER BY name")]

    def count(self) -> int:
        return int(self._db.query("SELECT COUNT(*) FROM users")[0][0])

    def set_password(self, user_id: int, password_hash: str) -> int:
        """A new password also ends every session of the user and revokes every API key (a
        stolen one among them), in the same transaction. Returns the number of keys revoked."""
        return self._update(
            user_id, "password_hash = ?", (password_hash,), end_sessions=True, revoke_keys=True
        )

    def rehash_password(self, user_id: int, password_hash: str) -> None:
        """The same password under stronger hash parameters: sessions and keys stay."""
        self._update(user_id, "password_hash = ?", (password_hash,), end_sessions=False)

    def set_disabled(self, user_id: int, disabled: bool) -> None:
        self._update(user_id, "disabled = ?", (int(disabled),), end_sessions=disabled)

    def _update(
        self,
        user_id: int,
        assignment: str,
        params: tuple[object, ...],
        end_sessions: bool,
        revoke_keys: bool = False,
    ) -> int:
        with self._db.transaction() as tx:
            tx.execute(f"UPDATE users SET {assignment} WHERE id = ?", (*params, user_id))  # noqa: S608
            if end_sessions:
                tx.execute("DELETE FROM sessions WHERE user_id = ?", (user_id,))
            if not revoke_keys:
                return 0
            revoked = tx.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL",
                (time.time(), user_id),
            )
            return revoked.rowcount

    # ---- API keys ---------------------------------------------------------------------------

    def add_key(
        self, user_id: int, name: str, secret: str, expires_at: float | None = None
    ) -> ApiKey:
        with self._db.transaction() as tx:
            cur = tx.execute(
                "INSERT INTO api_keys (user_id, name, prefix, hash, created_at, "
                "expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                (user_id, name, secret[:12], key_hash(secret), time.time(), expires_at),
            )
            key_id = cur.lastrowid
        return self.keys(user_id, key_id=key_id)[0]

    def keys(self, user_id: int, key_id: int | None = None) -> list[ApiKey]:
        rows = self._db.query(
            "SELECT id, user_id, name, prefix, created_at, last_used_at, revoked_at, expires_at "
            "FROM api_keys WHERE user_id = ? AND (? IS NULL OR id = ?) ORDER BY id",
            (user_id, key_id, key_id),
        )
        return [ApiKey(**dict(r)) for r in rows]

    def user_for_key(self, secret: str) -> User | None:
        """The owner of a valid key, neither revoked nor expired (and notes its use), or None."""
        rows = self._db.query(
            "SELECT k.id AS key_id, k.last_used_at AS last_used_at, u.* FROM api_keys k "
            "JOIN users u ON u.id = k.user_id WHERE k.hash = ? AND k.revoked_at IS NULL "
            "AND (k.expires_at IS NULL OR k.expires_at > ?)",
            (key_hash(secret), time.time()),
        )
        if not rows:
            return None
        now, last = time.time(), rows[0]["last_used_at"]
        if last is None or not 0 <= now - last < KEY_USE_EVERY_S:  # a write a minute, not a call
            with self._db.transaction() as tx:
                tx.execute(
                    "UPDATE api_keys SET last_used_at = ? WHERE id = ?", (now, rows[0]["key_id"])
                )
        return _user(rows[0])

    # ---- sessions ----------------------------------------------------------------------------

    def add_session(self, user_id: int, token: str, csrf: str, ttl_s: float) -> None:
        now = time.time()
        with self._db.transaction() as tx:
            tx.execute("DELETE FROM sessions WHERE expires_at < ?", (now,))
            tx.execute(
                "INSERT INTO sessions (id, user_id, csrf, created_at, expires_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (key_hash(token), user_id, csrf, now, now + ttl_s),
            )

    def session(self, token: str) -> tuple[User, str] | None:
        """The user and CSRF token of a live session, or None."""
        rows = self._db.query(
            "SELECT s.csrf AS csrf, u.* FROM sessions s JOIN users u ON u.id = s.user_id "
            "WHERE s.id = ? AND s.expires_at > ?",
            (key_hash(token), time.time()),
        )
        return (_user(rows[0]), rows[0]["csrf"]) if rows else None

    def end_session(self, token: str) -> None:
        with self._db.transaction() as tx:
            tx.execute("DELETE FROM sessions WHERE id = ?", (key_hash(token),))

    def revoke_key(self, user_id: int, key_id: int) -> None:
        with self._db.transaction() as tx:
            cur = tx.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND user_id = ? "
                "AND revoked_at IS NULL",
                (time.time(), key_id, user_id),
            )
        if cur.rowcount == 0:
            raise NotFound(f"no active API key {key_id} of this user")


def _user(row: sqlite3.Row) -> User:
    return User(
        id=row["id"],
        name=row["name"],
        role=row["role"],
        disabled=bool(row["disabled"]),
        created_at=row["created_at"],
    )
