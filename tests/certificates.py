"""Self-signed certificates for 127.0.0.1, made in the test (cryptography comes with
presidio-anonymizer), and a client context that trusts one."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def make_certificate(cert: Path, key: Path, name: str) -> bytes:
    """Writes a certificate for 127.0.0.1 and localhost (common name `name`) and its key as PEM;
    returns the certificate in DER, as a TLS peer presents it."""
    private = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    names = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
    made = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(private, hashes.SHA256())
    )
    cert.write_bytes(made.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return made.public_bytes(serialization.Encoding.DER)


def trusting(*certs: Path) -> ssl.SSLContext:
    """A client context that verifies the server (name included) against these certificates
    alone."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # checks the name and the chain
    for cert in certs:
        context.load_verify_locations(cafile=str(cert))
    return context
