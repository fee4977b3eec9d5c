"""A real server serving HTTPS itself (web.tls_cert, web.tls_key): TLS 1.2 at least, a Secure
`__Host-` cookie and HSTS, the image's health check, a new certificate on SIGHUP while it keeps
serving, and a start refused with the bad file named."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.certificates import make_certificate, trusting
from tests.conftest import ADMIN_PASSWORD
from tests.e2e.conftest import Server, free_port, running_server
from tests.test_containerfile import healthcheck


@dataclass
class Files:
    cert: Path  # the paths the server reads
    key: Path
    first: Path  # a copy of the first certificate, to trust it after the files change
    first_der: bytes


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    der = make_certificate(cert, key, "first")
    shutil.copy(cert, folder / "first.pem")
    return Files(cert, key, folder / "first.pem", der)


@pytest.fixture(scope="module")
def tls_server(files: Files, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {"APPLIANCE_WEB__TLS_CERT": str(files.cert), "APPLIANCE_WEB__TLS_KEY": str(files.key)}
    data = tmp_path_factory.mktemp("server")
    with running_server(data, env, tls=trusting(files.first)) as srv:
        yield srv


def port(server: Server) -> int:
    found = urlsplit(server.base_url).port
    assert found is not None
    return found


def peer_certificate(server: Server, context: ssl.SSLContext) -> tuple[bytes, str]:
    """A new connection's certificate (DER) and TLS version."""
    with socket.create_connection(("127.0.0.1", port(server)), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:  # fmt: skip
        der = tls.getpeercert(binary_form=True)
        version = tls.version()
    assert der is not None
    assert version is not None
    return der, version


def test_healthz_is_served_over_https_only(tls_server: Server, files: Files) -> None:
    assert tls_server.http.get("/healthz").json() == {"status": "ok"}
    der, version = peer_certificate(tls_server, trusting(files.first))
    assert der == files.first_der
    assert version == "TLSv1.3"  # OpenSSL's choice when both ends offer it
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port(tls_server)}/healthz", timeout=10)


def test_sign_in_gives_a_secure_host_cookie_and_hsts(tls_server: Server, files: Files) -> None:
    body = {"name": "admin", "password": ADMIN_PASSWORD}
    with httpx.Client(base_url=tls_server.base_url, verify=trusting(files.first)) as client:
        signed = client.post("/api/session", json=body)
        assert signed.status_code == 200
        cookie = signed.headers["set-cookie"]
        assert cookie.startswith("__Host-appliance_session=")
        assert "Secure" in cookie
        assert "domain" not in cookie.lower()
        assert signed.headers["strict-transport-security"] == "max-age=31536000"
        me = client.get("/api/me")  # the cookie is the session over this connection
    assert me.status_code == 200
    assert me.json()["name"] == "admin"
    assert "strict-transport-security" in me.headers


def tls_1_1(*trusted: Path) -> ssl.SSLContext:
    """A client that offers TLS 1.1 and nothing newer."""
    context = trusting(*trusted)
    context.set_ciphers("DEFAULT:@SECLEVEL=0")  # else this OpenSSL would not offer TLS 1.1 at all
    with warnings.catch_warnings():  # TLS 1.1 is deprecated: the point of this client
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1_1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    return context


def accepts_tls_1_1(tmp_path: Path) -> bool:
    """The client above gets TLS 1.1 from a server that allows it: it is really offered here."""
    cert, key = tmp_path / "old.pem", tmp_path / "old-key.pem"
    make_certificate(cert, key, "old")
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        server.minimum_version = ssl.TLSVersion.TLSv1
    server.load_cert_chain(cert, key)
    with socket.create_server(("127.0.0.1", 0)) as listening:
        done = threading.Thread(target=_accept_one, args=(listening, server), daemon=True)
        done.start()
        address = listening.getsockname()
        with socket.create_connection(address, timeout=10) as raw, \
                tls_1_1(cert).wrap_socket(raw, server_hostname="127.0.0.1") as tls:  # fmt: skip
            version = tls.version()
        done.join(10)
    return version == "TLSv1.1"


def _accept_one(listening: socket.socket, context: ssl.SSLContext) -> None:
    conn, _ = listening.accept()
    with context.wrap_socket(conn, server_side=True):
        pass


def test_tls_1_1_is_refused_and_1_2_accepted(
    tls_server: Server, files: Files, tmp_path: Path
) -> None:
    assert accepts_tls_1_1(tmp_path)
    # The handshake fails on the server's word: its alert, or its hanging up on the hello.
    with pytest.raises((ssl.SSLEOFError, ssl.SSLError)) as refused:
        peer_certificate(tls_server, tls_1_1(files.first))
    assert isinstance(refused.value, ssl.SSLEOFError) or (
        "TLSV1_ALERT_PROTOCOL_VERSION" in str(refused.value)
    ), refused.value
    tls12 = trusting(files.first)
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    assert peer_certificate(tls_server, tls12)[1] == "TLSv1.2"


def test_the_images_health_check_passes_over_tls(tls_server: Server, files: Files) -> None:
    assert healthcheck(port(tls_server), APPLIANCE_WEB__TLS_CERT=str(files.cert)).returncode == 0
    assert healthcheck(port(tls_server)).returncode != 0  # plain http to a TLS port


def test_sighup_serves_the_new_certificate_and_keeps_serving(
    tls_server: Server, files: Files
) -> None:
    second = make_certificate(files.cert, files.key, "second")
    both = trusting(files.first, files.cert)
    assert peer_certificate(tls_server, both)[0] == files.first_der  # read at start only
    tls_server.process.send_signal(signal.SIGHUP)
    assert _eventually(lambda: peer_certificate(tls_server, both)[0] == second)
    assert tls_server.process.poll() is None
    with httpx.Client(base_url=tls_server.base_url, verify=trusting(files.cert)) as client:
        assert client.get("/healthz").status_code == 200

    files.key.write_text("not a key\n")  # a bad reload: logged, the second one still served
    tls_server.process.send_signal(signal.SIGHUP)
    assert _eventually(lambda: "TLS certificate not reloaded" in tls_server.log.read_text())
    assert tls_server.process.poll() is None
    assert peer_certificate(tls_server, both)[0] == second
    key = {"Authorization": f"Bearer {tls_server.key}"}
    with httpx.Client(base_url=tls_server.base_url, verify=both, headers=key) as client:
        assert client.get("/readyz").json()["ready"] is True


def _eventually(check: object, limit: float = 30) -> bool:
    """A bounded wait for the server to act on a signal (not a timing check)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def serve(tmp_path: Path, cert: Path, key: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "APPLIANCE_DATA_DIR": str(tmp_path / "data"),
           "APPLIANCE_WEB__TLS_CERT": str(cert), "APPLIANCE_WEB__TLS_KEY": str(key)}  # fmt: skip
    command = [sys.executable, "-m", "appliance", "serve", "--port", str(free_port())]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120,
                          check=False)  # fmt: skip


def test_a_key_of_another_certificate_fails_the_start(tmp_path: Path) -> None:
    cert, other = tmp_path / "cert.pem", tmp_path / "other-key.pem"
    make_certificate(cert, tmp_path / "key.pem", "first")
    make_certificate(tmp_path / "other.pem", other, "other")
    done = serve(tmp_path, cert, other)
    assert done.returncode == 1
    assert (f"appliance: web.tls_key {other} is not the key of the certificate in "
            f"web.tls_cert {cert}") in done.stderr  # fmt: skip
    assert "Traceback" not in done.stderr


def test_an_unreadable_certificate_fails_the_start(tmp_path: Path) -> None:
    missing, key = tmp_path / "missing.pem", tmp_path / "key.pem"
    make_certificate(tmp_path / "cert.pem", key, "first")
    done = serve(tmp_path, missing, key)
    assert done.returncode == 1
    assert f"appliance: web.tls_cert {missing} cannot be read: No such file" in done.stderr
