"""The box's HTTPS certificate and its mDNS/DNS-SD announcement, against the real daemon.

- the self-signed certificate (DATA_DIR/tls/cert.pem) names localhost, 127.0.0.1 and the host name,
  verifies with Python's ssl given cert.pem as the CA file, is made once and kept across restarts;
  `--https off` means no HTTPS port at all;
- `--mdns 127.0.0.1` announces `_voxgate._tcp` on loopback only (a zeroconf browser bound to loopback
  finds it, TXT name/api/https/http/fp matching the daemon), two boxes under different instance names,
  and the announcement is withdrawn when the daemon stops.

Nothing leaves the loopback interface: the daemons listen on 127.0.0.1 and announce there only.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import json
import os
import re
import socket
import ssl
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from daemon_helpers import (
    HOST,
    Daemon,
    create_api_key,
    port_answers,
    running_daemon,
    wait_until,
)
from zeroconf import IPVersion, ServiceBrowser, ServiceStateChange, Zeroconf

SERVICE_TYPE = "_voxgate._tcp.local."
BOX_NAME = "voxgate"  # [appliance].name by default
DISCOVERY_TIMEOUT = 10.0


def cert_der(daemon: Daemon) -> bytes:
    return x509.load_pem_x509_certificate(daemon.cert_path.read_bytes()).public_bytes(serialization.Encoding.DER)


def fingerprint(der: bytes) -> str:
    return "SHA256:" + hashlib.sha256(der).hexdigest()


def presented_certificate(port: int, server_hostname: str, context: ssl.SSLContext) -> bytes:
    """The DER certificate the server presents in a handshake verified by `context`."""
    with socket.create_connection((HOST, port), timeout=5) as sock, \
            context.wrap_socket(sock, server_hostname=server_hostname) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


def https_get(port: int, server_hostname: str, context: ssl.SSLContext, target: str) -> tuple[int, str]:
    """A GET over a verified TLS connection: (status, body)."""
    with socket.create_connection((HOST, port), timeout=5) as sock, \
            context.wrap_socket(sock, server_hostname=server_hostname) as tls:
        tls.sendall(f"GET {target} HTTP/1.1\r\nHost: {server_hostname}:{port}\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while chunk := tls.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode("utf-8", errors="replace")


def listening_tcp_ports(pid: int) -> set[int]:
    """The TCP ports process `pid` listens on (Linux: its socket inodes in /proc/net/tcp{,6})."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        match = re.fullmatch(r"socket:\[(\d+)\]", target)
        if match:
            inodes.add(match.group(1))
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


# HTTPS


@pytest.fixture(scope="module")
def https_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    with running_daemon(tmp_path_factory.mktemp("https") / "data") as daemon:
        yield daemon


def test_certificate_names_localhost_loopback_and_host_name(https_daemon: Daemon) -> None:
    cert = x509.load_pem_x509_certificate(https_daemon.cert_path.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    dns = names.get_values_for_type(x509.DNSName)
    ips = names.get_values_for_type(x509.IPAddress)
    assert "localhost" in dns, dns
    assert socket.gethostname() in dns, dns
    assert BOX_NAME in dns and f"{BOX_NAME}.local" in dns, dns
    assert ipaddress.ip_address("127.0.0.1") in ips, ips
    now = datetime.datetime.now(datetime.UTC)
    assert cert.not_valid_before_utc <= now < cert.not_valid_after_utc
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.oid.ExtendedKeyUsageOID.SERVER_AUTH in usage
    # The private key is the box's alone.
    key_mode = stat.S_IMODE((https_daemon.cert_path.parent / "key.pem").stat().st_mode)
    assert key_mode & 0o077 == 0, oct(key_mode)


@pytest.mark.parametrize("server_hostname", ["localhost", "127.0.0.1"])
def test_python_ssl_verifies_the_certificate(https_daemon: Daemon, server_hostname: str) -> None:
    context = ssl.create_default_context(cafile=str(https_daemon.cert_path))
    assert presented_certificate(https_daemon.https_port, server_hostname, context) == cert_der(https_daemon)
    key = create_api_key(https_daemon.data_dir)
    status, body = https_get(https_daemon.https_port, server_hostname, context,
                             f"/platform_api/GetAccountInfo?account_id=1&api_key={key}")
    assert status == 200, body
    assert json.loads(body)["api_address"] == f"https://{server_hostname}:{https_daemon.https_port}/platform_api"


def test_certificate_refused_without_it_or_for_another_name(https_daemon: Daemon) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        presented_certificate(https_daemon.https_port, "localhost", ssl.create_default_context())
    with pytest.raises(ssl.SSLCertVerificationError):
        presented_certificate(https_daemon.https_port, "box.example.com",
                              ssl.create_default_context(cafile=str(https_daemon.cert_path)))


async def test_api_over_https_with_aiohttp(https_daemon: Daemon) -> None:
    key = create_api_key(https_daemon.data_dir)
    context = ssl.create_default_context(cafile=str(https_daemon.cert_path))
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as client, client.post(
        f"https://localhost:{https_daemon.https_port}/platform_api/GetAccountInfo",
        data={"account_id": "1", "api_key": key}, ssl=context,
    ) as resp:
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["result"]["account_id"] == 1


def test_certificate_made_once_and_kept_across_restarts(tmp_path: Path) -> None:
    data = tmp_path / "data"
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # only the presented certificate is compared here
    with running_daemon(data) as first:
        pem, key_pem = first.cert_path.read_bytes(), (first.cert_path.parent / "key.pem").read_bytes()
        presented = presented_certificate(first.https_port, "localhost", context)
        assert presented == cert_der(first)
        logged = re.findall(r"certificate (SHA256:[0-9a-f]{64})", first.stderr_text())
        assert logged == [fingerprint(presented)], logged
        assert first.stop() == 0
    with running_daemon(data) as second:
        assert second.cert_path.read_bytes() == pem
        assert (second.cert_path.parent / "key.pem").read_bytes() == key_pem
        again = presented_certificate(second.https_port, "localhost", context)
        assert fingerprint(again) == fingerprint(presented)
        assert fingerprint(presented) in second.stderr_text()


def test_https_off_means_no_https_port(tmp_path: Path) -> None:
    with running_daemon(tmp_path / "data", extra_args=["--https", "off"]) as daemon:
        assert "HTTPS on -," in daemon.stderr_text()
        sip_port = daemon.sip_port
        assert listening_tcp_ports(daemon.proc.pid) <= {daemon.port, sip_port, sip_port + 1}, \
            listening_tcp_ports(daemon.proc.pid)
        assert daemon.port in listening_tcp_ports(daemon.proc.pid)
        assert not port_answers(daemon.https_port)  # the port the helper would have given it


# mDNS


class Browser:
    """A zeroconf browser for _voxgate._tcp bound to the loopback interface; the changes it saw."""

    def __init__(self) -> None:
        self.zeroconf = Zeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
        self._lock = threading.Lock()
        self._events: list[tuple[str, ServiceStateChange]] = []
        self._browser = ServiceBrowser(self.zeroconf, SERVICE_TYPE, handlers=[self._changed])

    def _changed(self, zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange) -> None:
        with self._lock:
            self._events.append((name, state_change))

    def seen(self, name: str, change: ServiceStateChange) -> bool:
        with self._lock:
            return (name, change) in self._events

    def close(self) -> None:
        self._browser.cancel()
        self.zeroconf.close()


@pytest.fixture
def browser() -> Iterator[Browser]:
    b = Browser()
    try:
        yield b
    finally:
        b.close()


def instance_name(daemon: Daemon) -> str:
    """The service name the daemon announces: <box name>-<box id kept in the data directory>."""
    box_id = (daemon.data_dir / "box-id").read_text(encoding="ascii").strip()
    assert re.fullmatch(r"[0-9a-f]{4,}", box_id), box_id
    return f"{BOX_NAME}-{box_id}.{SERVICE_TYPE}"


def check_announcement(browser: Browser, daemon: Daemon) -> None:
    name = instance_name(daemon)
    assert wait_until(lambda: browser.seen(name, ServiceStateChange.Added), DISCOVERY_TIMEOUT), \
        f"{name} not found on loopback within {DISCOVERY_TIMEOUT} s\n{daemon.stderr_text()[-2000:]}"
    info = browser.zeroconf.get_service_info(SERVICE_TYPE, name, timeout=3000)
    assert info is not None, name
    txt = {k.decode(): (v or b"").decode() for k, v in info.properties.items()}
    assert txt["name"] == BOX_NAME, txt
    assert txt["api"] == "/platform_api", txt
    assert txt["https"] == str(daemon.https_port), txt
    assert txt["http"] == str(daemon.port), txt
    assert txt["fp"] == fingerprint(cert_der(daemon)), txt
    assert info.port == daemon.https_port
    assert info.parsed_addresses() == ["127.0.0.1"], info.parsed_addresses()


def test_mdns_announces_on_loopback_and_withdraws_on_stop(tmp_path: Path, browser: Browser) -> None:
    mdns = ["--mdns", "127.0.0.1"]
    for box in ("a", "b"):
        (tmp_path / box).mkdir()
    with running_daemon(tmp_path / "a" / "data", extra_args=mdns) as one, \
            running_daemon(tmp_path / "b" / "data", extra_args=mdns) as two:
        check_announcement(browser, one)
        check_announcement(browser, two)
        assert instance_name(one) != instance_name(two)
        assert two.stop() == 0, two.stderr_text()[-2000:]
        assert wait_until(lambda: browser.seen(instance_name(two), ServiceStateChange.Removed), DISCOVERY_TIMEOUT), \
            "the stopped box is still announced"
        assert not browser.seen(instance_name(one), ServiceStateChange.Removed)
        assert one.stop() == 0, one.stderr_text()[-2000:]
        assert wait_until(lambda: browser.seen(instance_name(one), ServiceStateChange.Removed), DISCOVERY_TIMEOUT)


def test_mdns_instance_name_kept_across_restarts(tmp_path: Path, browser: Browser) -> None:
    data = tmp_path / "data"
    with running_daemon(data, extra_args=["--mdns", "127.0.0.1"]) as first:
        name = instance_name(first)
        check_announcement(browser, first)
    with running_daemon(data, extra_args=["--mdns", "127.0.0.1"]) as second:
        assert instance_name(second) == name
        check_announcement(browser, second)


def test_mdns_off_announces_nothing(tmp_path: Path) -> None:
    with running_daemon(tmp_path / "data") as daemon:  # the helper passes --mdns off
        assert not (daemon.data_dir / "box-id").exists()
        assert "mDNS" not in daemon.stderr_text()
