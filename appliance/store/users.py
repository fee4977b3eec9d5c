"""Users, groups and API keys in SQLite. Only hashes of secrets are stored."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Iterable
from typing import Literal

import msgspec

from appliance.errors import Conflict, InvalidRequest, NotFound
from appliance.store.db import Database

Role = Literal["admin", "employee"]
Source = Literal["local", "ldap", "oidc"]  # where an account and its groups come from
KEY_USE_EVERY_S = 60  # an API key's `last_used_at` is written at most this often


class User(msgspec.Struct, frozen=True):
    id: int
    name: str
    role: Role
    disabled: bool
    created_at: float
    source: Source = "local"
    email: str | None = None


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

    # ---- groups -----------------------------------------------------------------------------
    # A group is a name (case-insensitive) with the source it comes from: `local` ones are made
    # by admins, `ldap` and `oidc` ones are the directory's, kept in step at each sign-in.

    def groups_of(self, user_id: int) -> list[str]:
        """The names of the user's groups, sorted."""
        rows = self._db.query(
            "SELECT g.name FROM groups g JOIN group_members m ON m.group_id = g.id "
            "WHERE m.user_id = ? ORDER BY g.name COLLATE NOCASE",
            (user_id,),
        )
        return [str(r[0]) for r in rows]

    def groups(self) -> list[Group]:
        """Every group with its source and members' names, by name."""
        rows = self._db.query(
            "SELECT g.name AS name, g.source AS source, "
            "COALESCE(json_group_array(u.name) FILTER (WHERE u.name IS NOT NULL), '[]') "
            "AS members FROM groups g LEFT JOIN group_members m ON m.group_id = g.id "
            "LEFT JOIN users u ON u.id = m.user_id GROUP BY g.id ORDER BY g.name COLLATE NOCASE"
        )
        return [
            Group(r["name"], r["source"], sorted(msgspec.json.decode(r["members"]), key=str.lower))
            for r in rows
        ]

    def set_groups(self, user_id: int, names: Iterable[str], source: Source) -> list[str]:
        """Of the memberships `source` gave, the user keeps exactly those in `names` (groups
        made when new; memberships an admin gave stay): a directory's view, at sign-in or
        refresh. Returns the user's groups after."""
        wanted = {n.strip().casefold(): n.strip() for n in names if n.strip()}
        with self._db.transaction() as tx:
            tx.execute(
                "DELETE FROM group_members WHERE user_id = ? AND source = ?", (user_id, source)
            )
            for name in wanted.values():
                tx.execute(
                    "INSERT OR IGNORE INTO group_members (group_id, user_id, source) "
                    "VALUES (?, ?, ?)",
                    (_group_id(tx, name, source), user_id, source),
                )
        return self.groups_of(user_id)

    def add_member(self, group: str, user_id: int) -> None:
        """Puts the user in a group, made as a local one when there is none of that name."""
        with self._db.transaction() as tx:
            group_id = _group_id(tx, _group_name(group), "local")
            tx.execute(
                "INSERT OR IGNORE INTO group_members (group_id, user_id) VALUES (?, ?)",
                (group_id, user_id),
            )

    def remove_member(self, group: str, user_id: int) -> None:
        with self._db.transaction() as tx:
            cur = tx.execute(
                "DELETE FROM group_members WHERE user_id = ? AND group_id = "
                "(SELECT id FROM groups WHERE name = ?)",
                (user_id, group),
            )
            # a local group nobody is in any more goes with its last member
            tx.execute(
                "DELETE FROM groups WHERE source = 'local' AND NOT EXISTS "
                "(SELECT 1 FROM group_members m WHERE m.group_id = groups.id)"
            )
        if cur.rowcount == 0:
            raise NotFound(f"the user is not in a group named {group!r}")

    # ---- accounts of the directory ----------------------------------------------------------

    def by_external(self, source: Source, external_id: str) -> User | None:
        rows = self._db.query(
            "SELECT * FROM users WHERE source = ? AND external_id = ?", (source, external_id)
        )
        return _user(rows[0]) if rows else None

    def external(self, source: Source) -> list[tuple[User, str]]:
        """The accounts of a directory, each with its id there."""
        rows = self._db.query(
            "SELECT * FROM users WHERE source = ? AND external_id IS NOT NULL ORDER BY name",
            (source,),
        )
        return [(_user(r), str(r["external_id"])) for r in rows]

    def upsert_external(self, source: Source, external_id: str, name: str, role: Role,
                        email: str | None) -> User:  # fmt: skip
        """The directory's account as it reads now: made at its first sign-in (no password:
        the directory checks it), its name, role and e-mail updated at later ones. A local
        account of the same name is not taken over (Conflict)."""
        now = time.time()
        try:
            with self._db.transaction() as tx:
                cur = tx.execute(
                    "UPDATE users SET name = ?, role = ?, email = ?, synced_at = ? "
                    "WHERE source = ? AND external_id = ?",
                    (name, role, email, now, source, external_id),
                )
                if cur.rowcount == 0:
                    tx.execute(
                        "INSERT INTO users (name, password_hash, role, created_at, source, "
                        "external_id, email, synced_at) VALUES (?, NULL, ?, ?, ?, ?, ?, ?)",
                        (name, role, now, source, external_id, email, now),
                    )
        except sqlite3.IntegrityError:
            raise Conflict(
                f"a user named {name!r} exists already, not from {source}: rename or remove "
                "that account (`appliance users`) for the directory's to sign in"
            ) from None
        found = self.by_external(source, external_id)
        if found is None:  # deleted between the two statements
            raise NotFound(f"the account {name!r} of {source} is gone")
        return found

    def end_access(self, user_id: int) -> None:
        """A directory account that is gone or disabled there: disabled here, its sessions
        ended and its API keys revoked, in one transaction."""
        self._update(user_id, "disabled = 1", (), end_sessions=True, revoke_keys=True)

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


class Group(msgspec.Struct, frozen=True):
    name: str
    source: Source
    members: list[str]


def _group_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 256 or any(c in name for c in "\n\r\t"):
        raise InvalidRequest(
            f"group name {name!r}: give 1-256 characters on one line", param="group"
        )
    return name


def _group_id(tx: sqlite3.Connection, name: str, source: Source) -> int:
    """The id of the group named `name` (any source: one name is one group), made if new."""
    row = tx.execute("SELECT id FROM groups WHERE name = ?", (name,)).fetchone()
    if row is not None:
        return int(row[0])
    cur = tx.execute("INSERT INTO groups (name, source) VALUES (?, ?) RETURNING id", (name, source))
    return int(cur.fetchone()[0])


def _user(row: sqlite3.Row) -> User:
    return User(
        id=row["id"],
        name=row["name"],
        role=row["role"],
        disabled=bool(row["disabled"]),
        created_at=row["created_at"],
        source=row["source"],
        email=row["email"],
    )
