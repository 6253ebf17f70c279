"""The same sipp call over each SIP transport the daemon listens on: TCP, TLS and UDP over IPv6; and TCP out.

Proven here, on loopback, against a daemon whose trunk is the caller's address (so no password):

* TCP: sipp's built-in `uac` over one TCP connection to the SIP port is answered by the scenario
  (alerting, connected, disconnected), every reply coming back over that connection;
* TLS: the same over TLS to the SIP port + 1, where the daemon serves its self-signed certificate
  (made on first start in the data directory). Debian's sipp is built without OpenSSL ("To use a TLS
  transport you must compile SIPp with OpenSSL"), so sipp speaks TCP to `TlsRelay`, which carries the
  bytes over one TLS connection to the daemon and checks that the certificate it got is the daemon's;
* IPv6: a daemon listening on [::1] takes the same call from sipp on ::1 (skipped without ::1);
* outbound TCP: a scenario's `VoxEngine.callSIP("sip:service@127.0.0.1:PORT;transport=tcp")` reaches a
  sipp `uas` that only listens on TCP, and goes through ringing, connected and disconnected.
"""

from __future__ import annotations

import selectors
import socket
import ssl
import threading
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
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


def _send_all(tls: ssl.SSLSocket, data: bytes, timeout: float = 5.0) -> None:
    """sendall() for a non-blocking TLS socket."""
    deadline = time.monotonic() + timeout
    view = memoryview(data)
    while view:
        try:
            view = view[tls.send(view):]
        except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
            if time.monotonic() > deadline:
                raise TimeoutError("cannot write to the TLS connection") from None
            time.sleep(0.01)


class TlsRelay:
    """Takes one TCP connection on 127.0.0.1 and carries its bytes both ways over TLS to 127.0.0.1:`port`.

    The daemon's certificate is self-signed: it is not verified here, only kept (`server_cert`, DER).
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.listener = socket.create_server((HOST, 0))
        self.listener.settimeout(0.2)
        self.local_port = int(self.listener.getsockname()[1])
        self.server_cert: bytes | None = None
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tls-relay", daemon=True)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    plain, _ = self.listener.accept()
                except TimeoutError:
                    continue
                with plain:
                    self._carry(plain)
                return
        except BaseException as exc:  # reported by the test, not lost in the thread
            self.error = exc

    def _carry(self, plain: socket.socket) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with context.wrap_socket(socket.create_connection((HOST, self.port), 5)) as tls, \
                selectors.DefaultSelector() as selector:
            self.server_cert = tls.getpeercert(binary_form=True)
            plain.settimeout(5)
            tls.setblocking(False)  # readable TLS bytes need not hold application data (session tickets)
            selector.register(plain, selectors.EVENT_READ)
            selector.register(tls, selectors.EVENT_READ)
            while not self._stop.is_set():
                for key, _ in selector.select(0.1):
                    if key.fileobj is plain:
                        data = plain.recv(65535)
                        if not data:
                            return
                        _send_all(tls, data)
                        continue
                    try:
                        data = tls.recv(65535)
                        while tls.pending():
                            data += tls.recv(tls.pending())
                    except ssl.SSLWantReadError:
                        continue
                    if not data:
                        return
                    plain.sendall(data)

    def __enter__(self) -> TlsRelay:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self.listener.close()
        assert not self._thread.is_alive(), "the TLS relay did not stop"


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
        assert "TCP message received" in messages and "UDP message" not in messages, messages


def test_call_over_tls(tmp_path: Path) -> None:
    data = with_local_trunk(tmp_path / "data")
    with running_daemon(data, voxfiles=voxfiles(tmp_path / "vox", ANSWER)) as daemon:
        with TlsRelay(daemon.sip_port + 1) as relay:
            result = sipp("-sn", "uac", f"{HOST}:{relay.local_port}", "-t", "t1", "-s", "service", "-m", "1",
                          "-p", str(free_port()), "-trace_msg", "-message_file", "messages.log", cwd=tmp_path)
        assert relay.error is None, repr(relay.error)
        messages = (tmp_path / "messages.log").read_text(errors="replace")
        assert_answered(daemon, result.stdout[-2000:] + result.stderr[-2000:] + messages[-3000:], result.returncode)
        own = x509.load_pem_x509_certificate((data / "tls" / "cert.pem").read_bytes())
        assert relay.server_cert == own.public_bytes(serialization.Encoding.DER)  # made on first start


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
