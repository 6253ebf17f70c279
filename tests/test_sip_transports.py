"""The same sipp call over each SIP transport the daemon listens on: TCP, TLS and UDP over IPv6; and TCP out.

Proven here, on loopback, against a daemon whose trunk is the caller's address (so no password):

* TCP: sipp's built-in `uac` over one TCP connection to the SIP port is answered by the scenario
  (alerting, connected, disconnected), every reply coming back over that connection;
* TLS: the same over TLS to the SIP port + 1, where the daemon serves its self-signed certificate
  (made on first start in the data directory; sipp does not verify it);
* IPv6: a daemon listening on [::1] takes the same call from sipp on ::1 (skipped without ::1);
* outbound TCP: a scenario's `VoxEngine.callSIP("sip:service@127.0.0.1:PORT;transport=tcp")` reaches a
  sipp `uas` that only listens on TCP, and goes through ringing, connected and disconnected.
"""

from __future__ import annotations

import datetime
import socket
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from daemon_helpers import (
    HOST,
    Daemon,
    async_wait_until,
    client_session,
    create_api_key,
    free_port,
    running_daemon,
    start_scenarios,
    wait_until,
)
from sip_helpers import (
    ANSWER,
    SIPP,
    log_lines,
    running,
    sipp,
    sipp_in_background,
    stop_pid,
    store_lines,
    voxfiles,
    with_local_trunk,
)

pytestmark = pytest.mark.skipif(SIPP is None, reason="sipp (Debian sip-tester) is installed by `make test`")

HOST6 = "::1"

DIAL_TCP = """
VoxEngine.addEventListener(AppEvents.Started, () => {
  const call = VoxEngine.callSIP("sip:service@127.0.0.1:TARGET_PORT;transport=tcp", {callerid: "42"});
  call.addEventListener(CallEvents.Ringing, () => Logger.write("ringing"));
  call.addEventListener(CallEvents.Connected, () => { Logger.write("connected"); call.hangup(); });
  call.addEventListener(CallEvents.Disconnected, () => { Logger.write("disconnected"); VoxEngine.terminate(); });
  call.addEventListener(CallEvents.Failed, (e) => { Logger.write("failed " + e.code); VoxEngine.terminate(); });
});
"""

ANSWERED = ["alerting sipp -> service ALERTING", "connected CONNECTED", "disconnected 200 TERMINATED"]


def ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind((HOST6, 0))
    except OSError:
        return False
    return True


def free_port6() -> int:
    """A port on ::1 that nothing listens on right now (TCP and UDP)."""
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as tcp, socket.socket(socket.AF_INET6,
                                                                                   socket.SOCK_DGRAM) as udp:
        tcp.bind((HOST6, 0))
        port = int(tcp.getsockname()[1])
        udp.bind((HOST6, port))
        return port


def throwaway_cert(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate and its key, for sipp's TLS side (it loads one even as a client)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sipp")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "sipp-cert.pem", folder / "sipp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def assert_answered(daemon: Daemon, result_text: str, returncode: int) -> None:
    assert returncode == 0, result_text
    assert wait_until(lambda: "disconnected 200 TERMINATED" in log_lines(daemon, 1), 10), log_lines(daemon, 1)
    assert log_lines(daemon, 1)[:3] == ANSWERED, log_lines(daemon, 1)
    assert "Traceback" not in daemon.stderr_text()


def test_call_over_tcp(tmp_path: Path) -> None:
    data = with_local_trunk(tmp_path / "data")
    with running_daemon(data, voxfiles=voxfiles(tmp_path / "vox", ANSWER)) as daemon:
        result = sipp("-sn", "uac", f"{HOST}:{daemon.sip_port}", "-t", "t1", "-s", "service", "-m", "1",
                      "-p", str(free_port()), "-trace_msg", "-message_file", "messages.log", cwd=tmp_path)
        messages = (tmp_path / "messages.log").read_text(errors="replace")
        assert_answered(daemon, result.stdout[-2000:] + result.stderr[-2000:] + messages[-3000:], result.returncode)
        assert "SIP/2.0/TCP" in messages and "SIP/2.0/UDP" not in messages, messages


def test_call_over_tls(tmp_path: Path) -> None:
    data = with_local_trunk(tmp_path / "data")
    cert, key = throwaway_cert(tmp_path)
    with running_daemon(data, voxfiles=voxfiles(tmp_path / "vox", ANSWER)) as daemon:
        result = sipp("-sn", "uac", f"{HOST}:{daemon.sip_port + 1}", "-t", "l1", "-tls_cert", str(cert),
                      "-tls_key", str(key), "-s", "service", "-m", "1", "-p", str(free_port()),
                      "-trace_msg", "-message_file", "messages.log", cwd=tmp_path)
        messages = (tmp_path / "messages.log").read_text(errors="replace")
        assert_answered(daemon, result.stdout[-2000:] + result.stderr[-2000:] + messages[-3000:], result.returncode)
        assert "SIP/2.0/TLS" in messages, messages
        assert (data / "tls" / "sip-tls.crt").exists()  # the daemon's own certificate, made on first start


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback (::1) here")
def test_call_over_ipv6(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with store_lines(data) as lines:
        lines.add_trunk("local6", HOST6)
    port = free_port6()
    with running_daemon(data, voxfiles=voxfiles(tmp_path / "vox", ANSWER),
                        extra_args=["--sip", f"[{HOST6}]:{port}"]) as daemon:
        result = sipp("-sn", "uac", f"[{HOST6}]:{port}", "-s", "service", "-m", "1", "-p", str(free_port6()),
                      "-trace_msg", "-message_file", "messages.log", cwd=tmp_path, host=HOST6)
        messages = (tmp_path / "messages.log").read_text(errors="replace")
        assert_answered(daemon, result.stdout[-2000:] + result.stderr[-2000:] + messages[-3000:], result.returncode)
        assert "[::1]" in messages, messages


async def test_scenario_calls_sipp_uas_over_tcp(tmp_path: Path) -> None:
    uas_port = free_port()
    pid = sipp_in_background("-sn", "uas", "-t", "t1", "-p", str(uas_port), "-m", "1", "-trace_msg",
                             "-message_file", "uas-messages.log", cwd=tmp_path)
    try:
        data = tmp_path / "data"
        data.mkdir()
        key = create_api_key(data)
        vox = voxfiles(tmp_path / "vox", DIAL_TCP.replace("TARGET_PORT", str(uas_port)))
        with running_daemon(data, voxfiles=vox) as daemon:
            async with client_session() as client:
                await start_scenarios(client, daemon, key, "in")
            assert await async_wait_until(
                lambda: "engine: session ended: Normal termination" in log_lines(daemon), 15), log_lines(daemon)
            assert log_lines(daemon)[:3] == ["ringing", "connected", "disconnected"], log_lines(daemon)
            assert "Traceback" not in daemon.stderr_text()
        assert await async_wait_until(lambda: not running(pid), 15), "sipp uas did not finish its call"
        messages = (tmp_path / "uas-messages.log").read_text(errors="replace")
        assert "INVITE sip:service@127.0.0.1" in messages and "SIP/2.0/TCP" in messages, messages
        assert "SIP/2.0/UDP" not in messages, messages
    finally:
        stop_pid(pid)
