"""The box's TLS certificate, for HTTPS (the management API, the panel) and SIP over TLS.

Self-signed, made on first start (never in the image, so every box has its own key) at
DATA_DIR/tls/cert.pem and key.pem, naming the box's host names and addresses, `localhost` and
127.0.0.1. Clients trust it by its fingerprint (voxpush pins it like SSH) or by adding cert.pem to their
CA bundle (REQUESTS_CA_BUNDLE for Voximplant's Python client).
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import socket
import ssl
from pathlib import Path

import ifaddr
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CERT_DAYS = 3650
CERT_FILE = "cert.pem"
KEY_FILE = "key.pem"


def ensure_certificate(folder: Path, name: str) -> Path:
    """folder/cert.pem, made with its key first if missing; its path."""
    cert, key = folder / CERT_FILE, folder / KEY_FILE
    if not cert.exists() or not key.exists():
        _make(cert, key, name)
    return cert


def server_context(folder: Path, name: str) -> ssl.SSLContext:
    """A TLS server context with the box's certificate (made first if missing)."""
    cert = ensure_certificate(folder, name)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, folder / KEY_FILE)
    return context


def fingerprint(cert_path: Path) -> str:
    """'SHA256:<hex>' of the certificate's DER form: what voxpush pins and the log and mDNS show."""
    der = x509.load_pem_x509_certificate(cert_path.read_bytes()).public_bytes(serialization.Encoding.DER)
    return "SHA256:" + hashlib.sha256(der).hexdigest()


def _names(name: str) -> tuple[list[str], list[ipaddress.IPv4Address | ipaddress.IPv6Address]]:
    host = socket.gethostname()
    dns = list(dict.fromkeys([name, f"{name}.local", host, f"{host}.local", "localhost"]))
    ips: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [ipaddress.ip_address("127.0.0.1"),
                                                                 ipaddress.ip_address("::1")]
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            text = ip.ip if isinstance(ip.ip, str) else ip.ip[0]
            address = ipaddress.ip_address(text.split("%")[0])
            if address not in ips and not address.is_link_local:
                ips.append(address)
    return dns, ips


def _make(cert_path: Path, key_path: Path, name: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    dns, ips = _names(name)
    alt_names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    alt_names += [x509.IPAddress(ip) for ip in ips]
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=CERT_DAYS))
        .add_extension(x509.SubjectAlternativeName(alt_names), False)
        # Its own issuer: clients that add cert.pem to their CA bundle verify it as a root.
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False, key_agreement=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), False)
        .sign(key, hashes.SHA256())
    )
    key_path.parent.mkdir(parents=True, exist_ok=True)
    key_path.touch(mode=0o600)
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
