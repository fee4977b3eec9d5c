"""The server's TLS context (appliance/web/tls.py): what each bad file says, and a reload that
puts a new certificate into new handshakes or, for a bad pair, leaves the old one serving."""

from __future__ import annotations

import logging
import os
import signal
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.errors import ApplianceError
from appliance.web.tls import Certificate
from tests.certificates import make_certificate, trusting


def handshake(server: ssl.SSLContext, client: ssl.SSLContext) -> bytes:
    """A TLS handshake in memory; the certificate the client was shown (DER)."""
    to_server, to_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    ends = [
        client.wrap_bio(to_client, to_server, server_hostname="127.0.0.1"),
        server.wrap_bio(to_server, to_client, server_side=True),
    ]
    pending = list(ends)
    for _ in range(10):
        for end in list(pending):
            try:
                end.do_handshake()
                pending.remove(end)
            except ssl.SSLWantReadError:
                pass
        if not pending:
            peer = ends[0].getpeercert(binary_form=True)
            assert peer is not None
            return peer
    raise AssertionError("the handshake did not finish")


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path, bytes]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    return cert, key, make_certificate(cert, key, "first")


def test_a_good_pair_serves_tls_1_2_and_up(pair: tuple[Path, Path, bytes]) -> None:
    cert, key, der = pair
    loaded = Certificate(str(cert), str(key))
    assert loaded.context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert handshake(loaded.context, trusting(cert)) == der


@pytest.mark.parametrize(
    ("which", "content", "said"),
    [
        ("cert", None, "web.tls_cert {cert} cannot be read: No such file"),
        ("key", None, "web.tls_key {key} cannot be read: No such file"),
        ("cert", "key", "web.tls_cert {cert} is not PEM with a certificate"),
        ("key", "cert", "web.tls_key {key} is not PEM with a private key"),
        ("cert", b"-----BEGIN CERTIFICATE-----\nbm90aGluZw==\n-----END CERTIFICATE-----\n",
         "web.tls_cert {cert} or web.tls_key {key} cannot be used"),
    ],
)  # fmt: skip
def test_a_bad_file_is_named(pair: tuple[Path, Path, bytes], which: str,
                             content: str | bytes | None, said: str) -> None:  # fmt: skip
    cert, key, _ = pair
    target = cert if which == "cert" else key
    if content is None:
        target.unlink()
    else:
        source = {"cert": cert, "key": key}.get(content) if isinstance(content, str) else None
        target.write_bytes(source.read_bytes() if source else content)  # type: ignore[arg-type]
    with pytest.raises(ApplianceError) as raised:
        Certificate(str(cert), str(key))
    assert said.format(cert=cert, key=key) in str(raised.value)


def test_an_unreadable_file_is_named(pair: tuple[Path, Path, bytes]) -> None:
    cert, key, _ = pair
    with pytest.raises(ApplianceError, match=r"web.tls_key .* cannot be read: Is a directory"):
        Certificate(str(cert), str(key.parent))


def test_a_key_of_another_certificate_is_named(pair: tuple[Path, Path, bytes],
                                               tmp_path: Path) -> None:  # fmt: skip
    cert, _, _ = pair
    other = tmp_path / "other.pem"
    make_certificate(tmp_path / "other-cert.pem", other, "other")
    with pytest.raises(ApplianceError) as raised:
        Certificate(str(cert), str(other))
    assert f"web.tls_key {other} is not the key of the certificate in web.tls_cert {cert}" in str(
        raised.value
    )


def test_an_encrypted_key_is_refused_not_asked_for(pair: tuple[Path, Path, bytes]) -> None:
    from cryptography.hazmat.primitives import serialization

    cert, key, _ = pair
    private = serialization.load_pem_private_key(key.read_bytes(), password=None)
    key.write_bytes(private.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.BestAvailableEncryption(b"x")))  # fmt: skip
    with pytest.raises(ApplianceError, match=f"web.tls_key {key} is encrypted"):
        Certificate(str(cert), str(key))


def test_a_reload_puts_the_new_certificate_into_new_handshakes(
    pair: tuple[Path, Path, bytes], tmp_path: Path
) -> None:
    cert, key, first = pair
    loaded = Certificate(str(cert), str(key))
    kept = tmp_path / "first.pem"
    kept.write_bytes(cert.read_bytes())
    second = make_certificate(cert, key, "second")
    client = trusting(kept, cert)
    assert handshake(loaded.context, client) == first  # read at start, not at each handshake
    loaded.reload()
    assert handshake(loaded.context, client) == second


def test_a_bad_pair_on_reload_leaves_the_old_certificate_serving(
    pair: tuple[Path, Path, bytes], tmp_path: Path
) -> None:
    """The new certificate is there but the key is still the old one (copied one at a time)."""
    cert, key, first = pair
    loaded = Certificate(str(cert), str(key))
    kept = tmp_path / "first.pem"
    kept.write_bytes(cert.read_bytes())
    make_certificate(cert, tmp_path / "new-key.pem", "second")
    with pytest.raises(ApplianceError, match="is not the key of the certificate"):
        loaded.reload()
    assert handshake(loaded.context, trusting(kept)) == first


@pytest.fixture
def sighup() -> Iterator[None]:
    before = signal.getsignal(signal.SIGHUP)
    yield
    signal.signal(signal.SIGHUP, before)


@pytest.mark.usefixtures("sighup")
def test_sighup_reloads_and_a_bad_file_is_logged_not_raised(
    pair: tuple[Path, Path, bytes], caplog: pytest.LogCaptureFixture
) -> None:
    cert, key, _ = pair
    loaded = Certificate(str(cert), str(key))
    loaded.reload_on_sighup()
    second = make_certificate(cert, key, "second")
    os.kill(os.getpid(), signal.SIGHUP)  # Python runs the handler in this thread, here
    assert handshake(loaded.context, trusting(cert)) == second
    key.write_text("not a key")
    with caplog.at_level(logging.ERROR, logger="appliance.web.tls"):
        os.kill(os.getpid(), signal.SIGHUP)
    assert "TLS certificate not reloaded" in caplog.text
    assert f"web.tls_key {key} is not PEM" in caplog.text
    assert handshake(loaded.context, trusting(cert)) == second
