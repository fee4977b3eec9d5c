"""Accounts: creating users, checking passwords and API keys. No HTTP here."""

from __future__ import annotations

import re
import secrets
import threading
import time

from appliance.accounts.directory import Directory, DirectoryAccount, role_for
from appliance.accounts.limits import SignInBrake
from appliance.accounts.passwords import MIN_LENGTH, hash_password, needs_rehash, verify_password
from appliance.errors import Forbidden, InvalidRequest, NotFound, RateLimited
from appliance.ops.metrics import Metrics
from appliance.store.audience import Reader
from appliance.store.users import ApiKey, Role, Source, User, UserStore

NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}"  # what a user name may be
_NAME = re.compile(NAME_PATTERN)
KEY_PREFIX = "apl_"
SESSION_TTL_S = 7 * 24 * 3600  # a week; signing out ends it at once


class Accounts:
    """`directory`: checks the passwords of names that are no local account (and of its own
    accounts); `local`: whether local accounts may sign in with a password (auth.local)."""

    def __init__(self, users: UserStore, brake: SignInBrake | None = None,
                 metrics: Metrics | None = None, directory: Directory | None = None,
                 local: bool = True) -> None:  # fmt: skip
        self.users = users
        self.directory = directory
        self._local = local
        self._metrics = metrics or Metrics()
        self._brake = brake or SignInBrake()
        self._setup_token: str | None = None
        self._setup_lock = threading.Lock()

    def setup_token(self) -> str | None:
        """While no account exists: a one-time token that lets one person create the first
        admin (printed by `serve`). None once there is an account."""
        if self.users.count():
            return None
        if self._setup_token is None:
            self._setup_token = secrets.token_urlsafe(24)
        return self._setup_token

    def create_first_admin(self, token: str, name: str, password: str) -> User:
        with self._setup_lock:  # two tabs at once must not make two first admins
            expected = self._setup_token
            if (
                expected is None
                or self.users.count()
                or not secrets.compare_digest(token.encode(), expected.encode())
            ):
                raise Forbidden(
                    "this set-up link is not valid (used already, or the server "
                    "restarted: its log shows the current one)"
                )
            user = self.add(name, password, "admin")
            self._setup_token = None
            return user

    def add(self, name: str, password: str, role: Role = "employee") -> User:
        if not _NAME.fullmatch(name):
            raise InvalidRequest(
                f"user name {name!r}: use 1-64 letters, digits, '.', '_', "
                "'@' or '-', starting with a letter or digit",
                param="name",
            )
        return self.users.add(name, role, hash_password(_checked(password)))

    def set_password(self, name: str, password: str) -> int:
        """Also ends the user's sessions and revokes their API keys (how many: returned)."""
        user = self.users.by_name(name)
        if user.source != "local":
            raise InvalidRequest(f"{user.name!r} signs in with the directory ({user.source}): "
                                 "change the password there", param="password")  # fmt: skip
        return self.users.set_password(user.id, hash_password(_checked(password)))

    def set_disabled(self, name: str, disabled: bool) -> User:
        user = self.users.by_name(name)
        self.users.set_disabled(user.id, disabled)
        return self.users.by_id(user.id)

    def listing(self) -> list[tuple[User, list[str]]]:
        """Every user with the names of their groups (two queries, not one per user)."""
        groups: dict[str, list[str]] = {}
        for group in self.users.groups():
            for member in group.members:
                groups.setdefault(member.casefold(), []).append(group.name)
        return [(u, groups.get(u.name.casefold(), [])) for u in self.users.all()]

    def change_groups(self, name: str, add: list[str], remove: list[str]) -> list[str]:
        """Puts the user in the local groups `add` and takes them out of `remove`; the user's
        groups after. Taking out of a directory's group lasts until its next sync."""
        user = self.users.by_name(name)
        for group in add:
            self.users.add_member(group, user.id)
        for group in remove:
            self.users.remove_member(group, user.id)
        return self.users.groups_of(user.id)

    def groups_of(self, user: User) -> frozenset[str]:
        """The user's groups, case-folded: what documents' audiences are matched against."""
        return frozenset(g.casefold() for g in self.users.groups_of(user.id))

    def reader(self, user: User) -> Reader:
        """Whom the user's searches and document views are for: an admin sees every
        document, anyone else those of everyone and of their groups."""
        return Reader(groups=self.groups_of(user), admin=user.role == "admin")

    def add_to_group(self, name: str, group: str) -> list[str]:
        """Puts a user (local or from the directory) in a group of the appliance's own."""
        user = self.users.by_name(name)
        self.users.add_member(group, user.id)
        return self.users.groups_of(user.id)

    def remove_from_group(self, name: str, group: str) -> list[str]:
        user = self.users.by_name(name)
        self.users.remove_member(group, user.id)
        return self.users.groups_of(user.id)

    def authenticate(self, name: str, password: str) -> User | None:
        """The user, if the name exists, is enabled and the password matches; else None. A
        local account's password is checked here; a name that is none, or an account of the
        directory, is asked of the directory (DirectoryUnavailable when it cannot be)."""
        try:
            user: User | None = self.users.by_name(name)
        except NotFound:
            user = None
        directory = self.directory
        if user is not None and user.source == "local" and self._local:
            return self._local_password(user, password)
        if directory is not None and (user is None or user.source == directory.source):
            return self._from_directory(directory, name, password)
        verify_password(None, password)  # as slow as a real check: names stay private
        return None

    def _from_directory(self, directory: Directory, name: str, password: str) -> User | None:
        found = directory.authenticate(name, password)
        if found is None:
            return None
        user = self.sync(directory.source, found)
        return None if user.disabled else user  # disabled here: an admin's (or a leaver's)

    def sign_in_account(self, source: Source, account: DirectoryAccount,
                        address: str = "") -> tuple[User, str, str] | None:  # fmt: skip
        """A session for an account a provider vouched for (OIDC); None when disabled here."""
        user = self.sync(source, account)
        if user.disabled:
            self._metrics.sign_ins_failed.inc()
            return None
        return user, *self._new_session(user)

    def _new_session(self, user: User) -> tuple[str, str]:
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        self.users.add_session(user.id, token, csrf, SESSION_TTL_S)
        return token, csrf

    def sync(self, source: Source, account: DirectoryAccount) -> User:
        """The directory's account as it reads now: made or updated, its groups replaced."""
        known = self.users.by_external(source, account.external_id)
        role = role_for(account.admin, known.role if known else None)
        user = self.users.upsert_external(source, account.external_id, account.name, role,
                                          account.email)  # fmt: skip
        self.users.set_groups(user.id, account.groups, source)
        return user

    def _local_password(self, user: User, password: str) -> User | None:
        stored = self.users.password_hash(user.id)
        if not verify_password(stored, password) or user.disabled:  # same cost either way
            return None
        if stored and needs_rehash(stored):  # the same password: sessions and keys stay
            self.users.rehash_password(user.id, hash_password(password))
        return user

    def sign_in(self, name: str, password: str, address: str = "") -> tuple[User, str, str] | None:
        """(user, session token, CSRF token) for a right name and password, else None.
        Repeated failures are slowed (RateLimited): see SignInBrake."""
        try:
            counted = self._brake.admit(name, address)  # counted as failed until it is not
        except RateLimited:
            self._metrics.sign_ins_failed.inc()
            raise
        user = self.authenticate(name, password)
        if user is None:
            self._metrics.sign_ins_failed.inc()
            return None
        self._brake.succeeded(name, address, counted)
        return user, *self._new_session(user)

    def session(self, token: str) -> tuple[User, str] | None:
        found = self.users.session(token)
        return None if found is None or found[0].disabled else found

    def sign_out(self, token: str) -> None:
        self.users.end_session(token)

    def create_key(
        self, name: str, label: str = "api", expires_at: float | None = None
    ) -> tuple[ApiKey, str]:
        """A new API key for the user `name`, valid until `expires_at` (Unix time; None: until
        revoked or a new password). The secret is returned once and never stored."""
        if expires_at is not None and expires_at <= time.time():
            raise InvalidRequest(
                f"expires_at {expires_at:.0f} is not in the future; give a later "
                "Unix time, or expires_in_days",
                param="expires_at",
            )
        user = self.users.by_name(name)
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        return self.users.add_key(user.id, label, secret, expires_at), secret

    def user_for_key(self, secret: str) -> User | None:
        if not secret.startswith(KEY_PREFIX):
            return None
        user = self.users.user_for_key(secret)
        return None if user is None or user.disabled else user


def _checked(password: str) -> str:
    if len(password) < MIN_LENGTH:
        raise InvalidRequest(
            f"the password must have at least {MIN_LENGTH} characters", param="password"
        )
    return password
