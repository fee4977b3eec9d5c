"""HTTPS without a proxy: the server's SSLContext from `web.tls_cert` and `web.tls_key`, read at
start (TLS 1.2 minimum) and read again into the same context on SIGHUP."""

from __future__ import annotations

import logging
import re
import signal
import ssl
from pathlib import Path
from types import FrameType
from typing import Any

from appliance.config import WebSettings
from appliance.errors import ApplianceError

log = logging.getLogger(__name__)

_CERTIFICATE = re.compile(rb"-----BEGIN CERTIFICATE-----")
_KEY = re.compile(rb"-----BEGIN (?:(?:RSA|EC|ENCRYPTED) )?PRIVATE KEY-----")
_ENCRYPTED = re.compile(rb"-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED")


class Certificate:
    """One SSLContext for the server's life; `reload` puts the files' current certificate and key
    into it, so new handshakes use them while open connections go on with the old ones."""

    def __init__(self, cert: str, key: str) -> None:
        self.cert, self.key = cert, key
        self.context = _server_context()
        _load(self.context, cert, key)

    def reload(self) -> None:
        """Reads the files again; a bad pair is refused first, on a context of its own (a failed
        load can leave a context holding the new certificate without its key)."""
        _load(_server_context(), self.cert, self.key)
        _load(self.context, self.cert, self.key)

    def reload_on_sighup(self) -> None:
        """SIGHUP would end the process (uvicorn handles only SIGINT and SIGTERM): it reloads."""
        signal.signal(signal.SIGHUP, self._hangup)

    def factory(self, *_: Any) -> ssl.SSLContext:
        """For uvicorn.Config(ssl_context_factory=...)."""
        return self.context

    def _hangup(self, _signum: int, _frame: FrameType | None) -> None:
        try:
            self.reload()
        except ApplianceError as exc:
            log.error(
                "TLS certificate not reloaded, the one loaded before is still served: %s", exc
            )
        else:
            log.info("TLS certificate reloaded from %s and %s", self.cert, self.key)


def _server_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)  # OpenSSL prefers TLS 1.3 itself
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _load(context: ssl.SSLContext, cert: str, key: str) -> None:
    _pem(cert, "web.tls_cert", _CERTIFICATE, "a certificate (-----BEGIN CERTIFICATE-----)")
    pem_key = _pem(key, "web.tls_key", _KEY, "a private key (-----BEGIN PRIVATE KEY-----)")
    if _ENCRYPTED.search(pem_key):
        raise ApplianceError(
            f"web.tls_key {key} is encrypted; the appliance starts unattended and needs it "
            f"unencrypted (openssl pkey -in {key} -out new.pem), readable by its user alone"
        )
    try:  # the password callback only keeps OpenSSL from asking for one on the terminal
        context.load_cert_chain(cert, key, password=lambda: b"")
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise ApplianceError(
                f"web.tls_key {key} is not the key of the certificate in web.tls_cert {cert}; "
                "set the two files that were made together"
            ) from None
        raise ApplianceError(
            f"web.tls_cert {cert} or web.tls_key {key} cannot be used: {exc.reason or exc}; "
            "both must be PEM files (the certificate chain, the server's first; its key)"
        ) from None


def _pem(path: str, setting: str, marker: re.Pattern[bytes], kind: str) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ApplianceError(
            f"{setting} {path} cannot be read: {exc.strerror or exc}; "
            "point it at a PEM file readable by the appliance's user"
        ) from None
    if not marker.search(data):
        raise ApplianceError(f"{setting} {path} is not PEM with {kind}")
    return data


def serving(web: WebSettings) -> Certificate | None:
    """The certificate to serve HTTPS with, reloaded on SIGHUP from now on; None: plain HTTP,
    where SIGHUP (`systemctl reload appliance`) is logged and changes nothing, rather than
    ending the process."""
    if not web.tls_cert:
        signal.signal(signal.SIGHUP, _nothing_to_reload)
        return None
    certificate = Certificate(web.tls_cert, web.tls_key)
    certificate.reload_on_sighup()
    return certificate


def _nothing_to_reload(_signum: int, _frame: FrameType | None) -> None:
    log.info("SIGHUP: nothing to reload (no web.tls_cert; other settings need a restart)")
