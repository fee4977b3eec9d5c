"""A real OpenLDAP server (Debian's slapd) on 127.0.0.1, in a temporary directory, with a few
users and groups (one nested, one cycle), loaded through the protocol so memberOf is kept;
with `tls`, it also offers StartTLS on its ldap:// port and listens on an ldaps:// one."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ldap3 import MODIFY_DELETE, Connection, Server

SUFFIX = "dc=example,dc=com"
ROOT_DN, ROOT_PASSWORD = f"cn=admin,{SUFFIX}", "root-secret"
READER_DN, READER_PASSWORD = f"cn=reader,{SUFFIX}", "reader-secret"
PEOPLE, GROUPS = f"ou=people,{SUFFIX}", f"ou=groups,{SUFFIX}"
PASSWORDS = {"alice": "alice-pass-1", "bob": "bob-pass-12", "carol": "carol-pass-1"}
SLAPD = shutil.which("slapd") or "/usr/sbin/slapd"
SCHEMA = Path("/etc/ldap/schema")

TLS_CONFIG = """\
TLSCACertificateFile {ca}
TLSCertificateFile {cert}
TLSCertificateKeyFile {key}
"""
CONFIG = """\
{tls}include {schema}/core.schema
include {schema}/cosine.schema
include {schema}/inetorgperson.schema
include {schema}/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
pidfile {root}/slapd.pid
database mdb
maxsize 10485760
suffix "{suffix}"
rootdn "{root_dn}"
rootpw {root_pw}
directory {root}/db
overlay memberof
memberof-group-oc groupOfNames
memberof-member-ad member
memberof-memberof-ad memberOf
memberof-refint TRUE
access to attrs=userPassword by anonymous auth by * none
access to * by dn.exact="{reader}" read by self read by * none
"""


def user_dn(name: str) -> str:
    return f"uid={name},{PEOPLE}"


def group_dn(name: str) -> str:
    return f"cn={name},{GROUPS}"


@dataclass(frozen=True)
class ServerTls:
    """The PEM files slapd serves TLS with: its certificate, its key, the CA that signed it."""

    cert: Path
    key: Path
    ca: Path


class Slapd:
    def __init__(
        self, url: str, process: subprocess.Popen[bytes], ldaps_url: str | None = None
    ) -> None:
        self.url, self.process, self.ldaps_url = url, process, ldaps_url

    @contextlib.contextmanager
    def admin(self) -> Iterator[Connection]:
        conn = Connection(Server(self.url), ROOT_DN, ROOT_PASSWORD, auto_bind=True)
        try:
            yield conn
        finally:
            conn.unbind()

    def add_user(self, name: str, password: str) -> None:
        with self.admin() as c:
            ok = c.add(
                user_dn(name),
                ["inetOrgPerson"],
                {
                    "uid": name,
                    "cn": name,
                    "sn": name,
                    "mail": f"{name}@example.com",
                    "userPassword": password,
                },
            )
            assert ok, c.result

    def add_group(self, name: str, members: list[str]) -> None:
        with self.admin() as c:
            assert c.add(group_dn(name), ["groupOfNames"], {"cn": name, "member": members}), (
                c.result
            )

    def remove_member(self, group: str, member: str) -> None:
        with self.admin() as c:
            assert c.modify(group_dn(group), {"member": [(MODIFY_DELETE, [member])]}), c.result

    def delete(self, dn: str) -> None:
        with self.admin() as c:
            assert c.delete(dn), c.result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running_slapd(root: Path, tls: ServerTls | None = None) -> Iterator[Slapd]:
    """slapd on a free loopback port, serving the test directory; stopped after. With `tls`
    the ldap:// port offers StartTLS and a second port speaks ldaps://."""
    if not Path(SLAPD).exists() or not SCHEMA.is_dir():
        raise AssertionError(
            "slapd is missing: apt-get install slapd (or run scripts/setup test as root)"
        )
    (root / "db").mkdir(parents=True)
    conf = root / "slapd.conf"
    conf.write_text(
        CONFIG.format(
            schema=SCHEMA,
            root=root,
            suffix=SUFFIX,
            root_dn=ROOT_DN,
            root_pw=ROOT_PASSWORD,
            reader=READER_DN,
            tls="" if tls is None else TLS_CONFIG.format(ca=tls.ca, cert=tls.cert, key=tls.key),
        )
    )
    port = free_port()
    url = f"ldap://127.0.0.1:{port}"
    listen = [url + "/"]
    ldaps_port, ldaps_url = None, None
    if tls is not None:
        ldaps_port = free_port()
        ldaps_url = f"ldaps://127.0.0.1:{ldaps_port}"
        listen.append(ldaps_url + "/")
    log = (root / "slapd.log").open("wb")
    # -d keeps it in the foreground (a child we can stop); its log goes to the file
    process = subprocess.Popen(
        [SLAPD, "-f", str(conf), "-h", " ".join(listen), "-d", "stats"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for(port, process, root / "slapd.log")
        if ldaps_port is not None:
            _wait_for(ldaps_port, process, root / "slapd.log")
        server = Slapd(url, process, ldaps_url)
        _load(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _wait_for(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"slapd did not start: {log.read_text(errors='replace')}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.05)
    raise AssertionError("slapd did not listen within 30 s")


def _load(server: Slapd) -> None:
    with server.admin() as c:
        for dn, classes, attrs in [
            (SUFFIX, ["dcObject", "organization"], {"dc": "example", "o": "Example"}),
            (
                READER_DN,
                ["simpleSecurityObject", "organizationalRole"],
                {"cn": "reader", "userPassword": READER_PASSWORD},
            ),
            (PEOPLE, ["organizationalUnit"], {"ou": "people"}),
            (GROUPS, ["organizationalUnit"], {"ou": "groups"}),
        ]:
            assert c.add(dn, classes, attrs), c.result
    for name, password in PASSWORDS.items():
        server.add_user(name, password)
    server.add_group("engineering", [user_dn("alice"), user_dn("carol")])
    server.add_group("hr", [user_dn("bob")])
    server.add_group("staff", [group_dn("engineering"), group_dn("hr")])  # nested
    server.add_group("appliance-admins", [user_dn("bob")])
    server.add_group("loop-a", [user_dn("carol")])  # loop-a and loop-b contain each other
    server.add_group("loop-b", [group_dn("loop-a")])
    with server.admin() as c:
        assert c.modify(group_dn("loop-a"), {"member": [("MODIFY_ADD", [group_dn("loop-b")])]})


def server_settings(directory: Slapd, data: Path) -> dict[str, str]:
    """The settings (environment) of an appliance signing people in with `directory`; the
    service account's password is written to a file in `data`, as the setting asks."""
    secret = data / "ldap-password"
    secret.write_text(READER_PASSWORD)
    return {
        "APPLIANCE_AUTH__LDAP__URL": directory.url,
        "APPLIANCE_AUTH__LDAP__BIND_DN": READER_DN,
        "APPLIANCE_AUTH__LDAP__BIND_PASSWORD_FILE": str(secret),
        "APPLIANCE_AUTH__LDAP__USER_BASE": PEOPLE,
        "APPLIANCE_AUTH__LDAP__GROUP_BASE": GROUPS,
    }
