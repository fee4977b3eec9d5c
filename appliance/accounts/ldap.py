"""LDAP and Active Directory (ldap3): the user's own bind checks the password; groups are
read through `memberOf` or a group search, nested ones walked or asked of the server."""

from __future__ import annotations

import logging
import re
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from ldap3 import BASE, NONE, SUBTREE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_bytes, escape_filter_chars

from appliance.accounts.directory import DirectoryAccount, in_admin_groups
from appliance.config import LdapSettings
from appliance.errors import ApplianceError, DirectoryUnavailable
from appliance.store.users import Source

log = logging.getLogger(__name__)
IN_CHAIN = "1.2.840.113556.1.4.1941"  # AD's LDAP_MATCHING_RULE_IN_CHAIN
_HEX = "hex:"
Scope = Literal[
    "BASE", "LEVEL", "SUBTREE"
]  # an id that is not text (AD's objectGUID) is kept as hex


class LdapDirectory:
    source: Source = "ldap"

    def __init__(self, settings: LdapSettings) -> None:
        self._s = checked(settings)
        tls = _CheckedTls(settings.ca_file or None)
        self._server = Server(
            settings.url,
            use_ssl=settings.url.startswith("ldaps://"),
            tls=tls,
            get_info=NONE,
            connect_timeout=settings.timeout_s,
        )

    def authenticate(self, name: str, password: str) -> DirectoryAccount | None:
        if not password:  # an empty password is an anonymous bind: it always "succeeds"
            return None
        with self._service() as conn:
            entry = self._one(conn, _fill(self._s.user_filter, name=escape_filter_chars(name)))
            if entry is None:
                return None
            if not self._binds(entry["dn"], password):
                return None
            return self._account(conn, entry)

    def lookup(self, external_id: str) -> DirectoryAccount | None:
        with self._service() as conn:
            wanted = f"({self._s.id_attribute}={_escaped_id(external_id)})"
            entry = self._one(conn, f"(&{_fill(self._s.user_filter, name='*')}{wanted})")
            return None if entry is None else self._account(conn, entry)

    # ---- connections ------------------------------------------------------------------------

    @contextmanager
    def _service(self) -> Iterator[Connection]:
        """A connection bound as the service account (or anonymous), closed after."""
        s = self._s
        password = _secret(s.bind_password_file) if s.bind_password_file else None
        conn = self._connection(s.bind_dn or None, password)
        try:
            if not conn.bind():
                raise DirectoryUnavailable(
                    f"the LDAP server refused the service account (auth.ldap.bind_dn "
                    f"{s.bind_dn!r}): {conn.result.get('description')}; check bind_dn and "
                    "the password in auth.ldap.bind_password_file"
                )
            yield conn
        except LDAPException as exc:
            raise self._unavailable(exc) from None
        finally:
            conn.unbind()

    def _binds(self, dn: str, password: str) -> bool:
        conn = self._connection(dn, password)
        try:
            return bool(conn.bind())
        except LDAPException as exc:
            raise self._unavailable(exc) from None
        finally:
            conn.unbind()

    def _connection(self, user: str | None, password: str | None) -> Connection:
        conn = Connection(
            self._server,
            user=user,
            password=password,
            receive_timeout=self._s.timeout_s,
            raise_exceptions=False,
            read_only=True,
        )
        try:
            conn.open()
            if self._s.start_tls and not conn.start_tls():
                raise DirectoryUnavailable(
                    f"StartTLS with {self._s.url} failed: {conn.result.get('description')}; "
                    "check auth.ldap.start_tls and auth.ldap.ca_file"
                )
        except (LDAPException, DirectoryUnavailable) as exc:
            if conn.socket is not None:  # ldap3 leaves a socket that failed to connect open
                conn.socket.close()
            if isinstance(exc, DirectoryUnavailable):
                raise
            raise self._unavailable(exc) from None
        return conn

    def _unavailable(self, exc: LDAPException) -> DirectoryUnavailable:
        log.warning("LDAP %s: %s", self._s.url, exc)
        refused = _certificate_error(exc)
        if refused:
            trusted = self._s.ca_file or "the system's CAs (auth.ldap.ca_file is empty)"
            return DirectoryUnavailable(
                f"the directory's TLS certificate ({self._s.url}) was refused: "
                f"{refused}; check auth.ldap.ca_file (now "
                f"{trusted}): it must hold the CA that signed the server's certificate, "
                "and auth.ldap.url must name a host the certificate is for; local accounts "
                "can still sign in"
            )
        return DirectoryUnavailable(
            f"the directory ({self._s.url}, auth.ldap.url) cannot be reached: {exc}; "
            "local accounts can still sign in"
        )

    # ---- reading ----------------------------------------------------------------------------

    def _search(
        self,
        conn: Connection,
        base: str,
        query: str,
        attributes: list[str],
        scope: Scope = SUBTREE,
        limit: int = 0,
    ) -> list[dict[str, Any]]:
        conn.search(base, query, scope, attributes=attributes, size_limit=limit)
        code = conn.result.get("result", 0)
        if code not in (0, 4, 32):  # success, size limit exceeded, no such object
            raise DirectoryUnavailable(
                f"the LDAP search {query!r} under {base!r} failed: "
                f"{conn.result.get('description')} {conn.result.get('message', '')}".strip()
                + "; check auth.ldap's bases and filters"
            )
        return [r for r in conn.response or () if r.get("type") == "searchResEntry"]

    def _one(self, conn: Connection, query: str) -> dict[str, Any] | None:
        """The one user the filter finds (not disabled); None for none, or for two (a filter
        that matches more than one account must not pick one)."""
        s = self._s
        if s.disabled_filter:
            query = f"(&{query}(!{s.disabled_filter}))"
        attributes = [s.name_attribute, s.email_attribute, s.id_attribute]
        if s.group_lookup == "memberof":
            attributes.append(s.member_of_attribute)
        found = self._search(conn, s.user_base, query, attributes, limit=2)
        if len(found) > 1:
            log.warning("LDAP: auth.ldap.user_filter %s finds more than one user", query)
        return found[0] if len(found) == 1 else None

    def _account(self, conn: Connection, entry: dict[str, Any]) -> DirectoryAccount:
        s = self._s
        raw = entry["raw_attributes"]
        ids = _values(raw, s.id_attribute, text=False)
        names = _values(raw, s.name_attribute)
        if not ids or not names:
            missing = s.name_attribute if ids else s.id_attribute
            raise DirectoryUnavailable(
                f"the LDAP entry {entry['dn']!r} has no {missing}; check "
                "auth.ldap.id_attribute and name_attribute"
            )
        emails = _values(raw, s.email_attribute)
        groups = self._groups(conn, entry)
        admin = in_admin_groups([*groups, *groups.values()], s.admin_groups)
        return DirectoryAccount(
            ids[0],
            names[0],
            emails[0] if emails else None,
            sorted(set(groups.values()), key=str.casefold),
            admin,
        )

    def _groups(self, conn: Connection, entry: dict[str, Any]) -> dict[str, str]:
        """The user's groups, nested ones included: DN -> name."""
        s = self._s
        dn = entry["dn"]
        if s.nested == "in_chain":
            query = f"(member:{IN_CHAIN}:={escape_filter_chars(dn)})"
            return self._named(self._search(conn, s.group_base, query, [s.group_name_attribute]))
        found: dict[str, str] = {}
        level = self._direct(conn, entry)
        for _depth in range(s.nested_depth if s.nested == "walk" else 1):
            fresh = {g: n for g, n in level.items() if g.casefold() not in _folded(found)}
            if not fresh:
                break
            found.update(fresh)
            level = {}
            for group_dn in fresh:  # the groups a group is in: one level up
                level.update(self._direct(conn, {"dn": group_dn}))
        return found

    def _direct(self, conn: Connection, entry: dict[str, Any]) -> dict[str, str]:
        """The groups `entry` (a user or a group) is directly in: DN -> name."""
        s = self._s
        if s.group_lookup == "search":
            name = _values(entry.get("raw_attributes", {}), s.name_attribute)
            query = _fill(
                s.group_filter,
                dn=escape_filter_chars(entry["dn"]),
                name=escape_filter_chars(name[0]) if name else "",
            )
            return self._named(self._search(conn, s.group_base, query, [s.group_name_attribute]))
        raw = entry.get("raw_attributes")
        if raw is None:  # a group reached by walking: read its own memberOf
            read = self._search(
                conn, entry["dn"], "(objectClass=*)", [s.member_of_attribute], scope=BASE
            )
            raw = read[0]["raw_attributes"] if read else {}
        found = {}
        for group_dn in _values(raw, s.member_of_attribute):
            read = self._search(
                conn, group_dn, "(objectClass=*)", [s.group_name_attribute], scope=BASE
            )
            found.update(self._named(read))
        return found

    def _named(self, entries: list[dict[str, Any]]) -> dict[str, str]:
        out = {}
        for e in entries:
            names = _values(e["raw_attributes"], self._s.group_name_attribute)
            if names:
                out[e["dn"]] = names[0]
        return out


class _CheckedTls(Tls):
    """TLS whose chain and host name Python's ssl checks in the handshake (IP addresses
    too). ldap3's own name check calls ssl.match_hostname, deprecated in Python 3.7 and gone
    in 3.12, where ldap3's stand-in refuses a certificate for an IP address."""

    def __init__(self, ca_file: str | None) -> None:
        super().__init__(validate=ssl.CERT_REQUIRED, ca_certs_file=ca_file)
        self._context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)

    def wrap_socket(self, connection: Connection, do_handshake: bool = False) -> None:
        connection.socket = self._context.wrap_socket(
            connection.socket,
            server_side=False,
            do_handshake_on_connect=do_handshake,
            server_hostname=connection.server.host,
        )


def _certificate_error(exc: BaseException) -> str | None:
    """Why the server's certificate was refused, when that is what an ldap3 error hides
    (ldap3 re-raises the ssl error as text within its handler: the original is the error's
    context; its own copy may pass as one too, without the reason)."""
    reason: str | None = None
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            break
        if isinstance(seen, ssl.SSLCertVerificationError):
            verify = getattr(seen, "verify_message", None)
            if verify:
                return str(verify)
            found = re.search(r"certificate verify failed: ([^(']+)", str(seen))
            reason = reason or (found.group(1).strip() if found else "certificate verify failed")
        seen = seen.__cause__ or seen.__context__
    return reason


def checked(s: LdapSettings) -> LdapSettings:
    """The settings, or an error at start naming the one to fix."""
    if not s.url.startswith(("ldap://", "ldaps://")):
        raise ApplianceError(
            f"setting auth.ldap.url: {s.url!r} must start with ldaps:// "
            "or ldap:// (with start_tls = true)"
        )
    if s.start_tls and s.url.startswith("ldaps://"):
        raise ApplianceError(
            "setting auth.ldap.start_tls: an ldaps:// URL is TLS already; "
            "use ldap:// with start_tls, or drop start_tls"
        )
    if not s.user_base:
        raise ApplianceError(
            "setting auth.ldap.user_base: give where users are searched, "
            "e.g. ou=people,dc=example,dc=com"
        )
    if "{name}" not in s.user_filter:
        raise ApplianceError(
            f"setting auth.ldap.user_filter: {s.user_filter!r} has no "
            "{name}, so it cannot tell users apart"
        )
    if (s.group_lookup == "search" or s.nested == "in_chain") and not s.group_base:
        raise ApplianceError(
            f"setting auth.ldap.group_base: needed by group_lookup = "
            f"{s.group_lookup!r} / nested = {s.nested!r}"
        )
    for name in ("ca_file", "bind_password_file"):
        path = getattr(s, name)
        if path and not Path(path).is_file():
            raise ApplianceError(
                f"setting auth.ldap.{name}: {path} is not a file; create it or fix the path"
            )
    if s.bind_password_file:
        _secret(s.bind_password_file)
    return s


def _secret(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").strip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise DirectoryUnavailable(
            f"setting auth.ldap.bind_password_file: {path} cannot be read ({exc}); make it "
            "readable by this user"
        ) from None


def _fill(template: str, **values: str) -> str:
    for key, value in values.items():
        template = template.replace("{" + key + "}", value)
    return template


def _values(raw: dict[str, list[bytes]], attribute: str, text: bool = True) -> list[str]:
    """An attribute's values (names compare without case in LDAP) as text; with text=False
    a value that is not UTF-8 comes as hex:… (an id)."""
    for key, values in raw.items():
        if key.casefold() == attribute.casefold():
            out = []
            for v in values:
                try:
                    out.append(v.decode())
                except UnicodeDecodeError:
                    if text:
                        continue
                    out.append(_HEX + v.hex())
            return out
    return []


def _escaped_id(external_id: str) -> str:
    if external_id.startswith(_HEX):
        return str(escape_bytes(bytes.fromhex(external_id[len(_HEX) :])))
    return str(escape_filter_chars(external_id))


def _folded(found: dict[str, str]) -> set[str]:
    return {dn.casefold() for dn in found}
