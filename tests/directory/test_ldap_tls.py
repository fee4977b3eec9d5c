"""LDAP sign-in over TLS with a real OpenLDAP: StartTLS on ldap:// and ldaps://, each checking
the server's certificate against auth.ldap.ca_file (a CA made here); a certificate that file
does not vouch for fails sign-in with an error naming the setting, and local accounts go on."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec
import pytest

from appliance.accounts.ldap import LdapDirectory
from appliance.config import LdapSettings
from appliance.errors import ApplianceError, DirectoryUnavailable
from tests.directory.ca import issue_server, make_ca
from tests.directory.slapd import PASSWORDS, ServerTls, Slapd, running_slapd
from tests.directory.test_ldap import LOCAL_PASSWORD, ldap_settings, make_accounts


@dataclass(frozen=True)
class TlsDirectory:
    slapd: Slapd
    ldaps_url: str
    ca_file: Path  # the CA that signed the server's certificate
    other_ca_file: Path  # a CA that did not
    log: Path  # slapd's log (-d stats)


@pytest.fixture(scope="module")
def tls_slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsDirectory]:
    """A slapd of its own serving TLS (the plain tests keep theirs, without TLS)."""
    root = tmp_path_factory.mktemp("slapd-tls")
    pki = root / "pki"
    pki.mkdir()
    ca = make_ca(pki, "directory-ca")
    other = make_ca(pki, "other-ca")
    # for the address alone (not localhost): Python's ssl checks an IP address in the
    # certificate, which ldap3's own name check (gone ssl.match_hostname) would not
    issue_server(ca, pki / "server.pem", pki / "server.key", names=("127.0.0.1",))
    tls = ServerTls(cert=pki / "server.pem", key=pki / "server.key", ca=ca.cert_file)
    with running_slapd(root / "server", tls) as server:
        assert server.ldaps_url is not None
        yield TlsDirectory(
            server, server.ldaps_url, ca.cert_file, other.cert_file, root / "server" / "slapd.log"
        )


def tls_settings(
    d: TlsDirectory, tmp_path: Path, mode: str, ca_file: Path | None, **extra: object
) -> LdapSettings:
    url = {"starttls": d.slapd.url, "ldaps": d.ldaps_url}[mode]
    return ldap_settings(
        d.slapd,
        tmp_path,
        url=url,
        start_tls=mode == "starttls",
        ca_file="" if ca_file is None else str(ca_file),
        **extra,
    )


def established(d: TlsDirectory) -> int:
    return d.log.read_text(errors="replace").count("TLS established")


@pytest.mark.parametrize("mode", ["starttls", "ldaps"])
def test_a_directory_user_signs_in_over_tls_with_the_ca_file(
    tls_slapd: TlsDirectory, tmp_path: Path, mode: str
) -> None:
    accounts = make_accounts(tmp_path, tls_settings(tls_slapd, tmp_path, mode, tls_slapd.ca_file))
    before = established(tls_slapd)
    found = accounts.sign_in("alice", PASSWORDS["alice"])
    assert found is not None
    user = found[0]
    assert (user.name, user.source, user.email) == ("alice", "ldap", "alice@example.com")
    assert {"engineering", "staff"} <= set(accounts.groups_of(user))
    assert accounts.sign_in("alice", "wrong password") is None  # the bind checks it, over TLS
    # the service bind and the user's bind each went over TLS, as slapd saw it
    assert established(tls_slapd) >= before + 2


@pytest.mark.parametrize("mode", ["starttls", "ldaps"])
@pytest.mark.parametrize("trusted", ["other", "system"])
def test_a_certificate_the_ca_file_does_not_vouch_for_fails_clearly(
    tls_slapd: TlsDirectory, tmp_path: Path, mode: str, trusted: str
) -> None:
    """Signed by another CA than auth.ldap.ca_file's, or with no ca_file, by none of the
    system's CAs: sign-in fails naming the setting, local accounts still sign in, and the
    server is unharmed."""
    ca_file = tls_slapd.other_ca_file if trusted == "other" else None
    accounts = make_accounts(tmp_path, tls_settings(tls_slapd, tmp_path, mode, ca_file))
    accounts.add("local", LOCAL_PASSWORD)
    with pytest.raises(DirectoryUnavailable, match=r"auth\.ldap\.ca_file") as failed:
        accounts.sign_in("alice", PASSWORDS["alice"])
    assert "was refused" in str(failed.value)
    assert "local accounts can still sign in" in str(failed.value)
    assert accounts.sign_in("local", LOCAL_PASSWORD) is not None
    good = make_accounts(
        tmp_path / "good", tls_settings(tls_slapd, tmp_path, mode, tls_slapd.ca_file)
    )
    assert good.sign_in("alice", PASSWORDS["alice"]) is not None


def test_start_tls_on_an_ldaps_url_is_refused_at_start(
    tls_slapd: TlsDirectory, tmp_path: Path
) -> None:
    with pytest.raises(ApplianceError, match=r"auth\.ldap\.start_tls"):
        LdapDirectory(
            ldap_settings(
                tls_slapd.slapd,
                tmp_path,
                url=tls_slapd.ldaps_url,
                start_tls=True,
                ca_file=str(tls_slapd.ca_file),
            )
        )


@pytest.mark.parametrize("mode", ["starttls", "ldaps"])
def test_a_certificate_for_another_host_is_refused(
    tls_slapd: TlsDirectory, tmp_path: Path, mode: str
) -> None:
    """The right CA, but the certificate is for 127.0.0.1 and the URL says localhost: the
    name is checked too."""
    settings = tls_settings(tls_slapd, tmp_path, mode, tls_slapd.ca_file)
    settings = msgspec.structs.replace(settings, url=settings.url.replace("127.0.0.1", "localhost"))
    accounts = make_accounts(tmp_path, settings)
    with pytest.raises(DirectoryUnavailable, match=r"(?i)hostname mismatch.*auth\.ldap\.ca_file"):
        accounts.sign_in("alice", PASSWORDS["alice"])
