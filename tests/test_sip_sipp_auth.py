"""Local users authenticate with digest against sipp scenarios: REGISTER, then INVITE, each challenged.

Proven here, on 127.0.0.1 with the daemon's real SIP stack and sipp (tests/sipp/*.xml):

* the simulated phone `100` registers (401, then 200 with its Contact and the time left on it as
  `expires=`), then calls: its INVITE is challenged too (401, which sipp ACKs), the re-sent INVITE
  with credentials is answered by the scenario, which logs alerting, connected and disconnected;
* a wrong password gets 403 to the REGISTER (and no session starts);
* a user added to the store before the start (`201`) registers and calls the same way.

sipp 3.6 computes MD5 digest only, and it answers the first WWW-Authenticate of a 401 whatever its
algorithm; the daemon offers SHA-256 first and MD5 second (RFC 8760: strongest first), so sipp would give
up. The tests therefore talk to the daemon through `Md5OnlyRelay`, a loopback UDP relay that removes the
SHA-256 challenges from replies, which is what a phone that only knows MD5 does when it skips them.
"""

from __future__ import annotations

import re
import selectors
import socket
import threading
from pathlib import Path

import pytest
from daemon_helpers import HOST, Daemon, free_port, read_text, running_daemon, wait_until
from sip_helpers import ANSWER, SIPP, log_lines, sim_user_password, sipp, store_lines, voxfiles

pytestmark = pytest.mark.skipif(SIPP is None, reason="sipp (Debian sip-tester) is installed by `make test`")

SCENARIOS = Path(__file__).resolve().parent / "sipp"
REGISTER_AND_CALL = SCENARIOS / "register_and_call.xml"
REGISTER_FORBIDDEN = SCENARIOS / "register_forbidden.xml"
_SHA256_CHALLENGE = re.compile(rb"^(?:www|proxy)-authenticate:[^\r\n]*algorithm=\"?sha-256[^\r\n]*\r\n",
                               re.IGNORECASE | re.MULTILINE)


def without_sha256_challenges(data: bytes) -> bytes:
    return _SHA256_CHALLENGE.sub(b"", data)


class Md5OnlyRelay:
    """A UDP relay on 127.0.0.1 between one client and the daemon that drops SHA-256 challenges from replies.

    The daemon answers where a request came from (RFC 3581), so every reply comes back through here.
    """

    def __init__(self, target_port: int) -> None:
        self.target = (HOST, target_port)
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # where sipp sends
        self.back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # what the daemon sees
        self.front.bind((HOST, 0))
        self.back.bind((HOST, 0))
        self.port = int(self.front.getsockname()[1])
        self.client: tuple[str, int] | None = None
        self.stripped = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="md5-only-relay", daemon=True)

    def _run(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self.front, selectors.EVENT_READ)
            selector.register(self.back, selectors.EVENT_READ)
            while not self._stop.is_set():
                for key, _ in selector.select(0.1):
                    try:
                        if key.fileobj is self.front:
                            data, self.client = self.front.recvfrom(65535)
                            self.back.sendto(data, self.target)
                        else:
                            data, _ = self.back.recvfrom(65535)
                            cleaned = without_sha256_challenges(data)
                            self.stripped += cleaned != data
                            if self.client is not None:
                                self.front.sendto(cleaned, self.client)
                    except OSError:
                        continue  # ICMP port unreachable from the other side: UDP goes on

    def __enter__(self) -> Md5OnlyRelay:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.front.close()
        self.back.close()
        assert not self._thread.is_alive(), "the relay did not stop"


def register_and_call(daemon: Daemon, cwd: Path, user: str, password: str) -> tuple[int, str]:
    """tests/sipp/register_and_call.xml as `user`, calling `service`; sipp's local port and its message trace."""
    local_port = free_port()
    with Md5OnlyRelay(daemon.sip_port) as relay:
        result = sipp("-sf", str(REGISTER_AND_CALL), f"{HOST}:{relay.port}", "-s", user, "-au", user, "-ap", password,
                      "-set", "dest", "service", "-m", "1", "-p", str(local_port), "-trace_msg",
                      "-message_file", "messages.log", cwd=cwd)
    messages = read_text(cwd / "messages.log")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:] + messages[-4000:]
    assert relay.stripped >= 2, "the 401s to REGISTER and INVITE both offered SHA-256 first"
    return local_port, messages


def replies(messages: str, status: int, method: str) -> list[str]:
    """The replies with `status` to `method` in a sipp message trace."""
    found = []
    for block in re.split(r"\n(?=-{10,})", messages):
        start = block.find(f"SIP/2.0 {status} ")
        if start >= 0 and re.search(rf"^CSeq:\s*\d+ {method}\s*$", block, re.MULTILINE | re.IGNORECASE):
            found.append(block[start:])
    return found


def assert_registered_and_called(daemon: Daemon, messages: str, user: str, local_port: int) -> None:
    registered = replies(messages, 200, "REGISTER")
    assert len(registered) == 1, messages
    contacts = re.findall(rf"<sip:{user}@127\.0\.0\.1:{local_port};transport=udp>;expires=(\d+)", registered[0],
                          re.IGNORECASE)
    assert len(contacts) == 1, registered[0]
    assert 0 < int(contacts[0]) <= 300, registered[0]  # the phone asked for 300 s
    assert len(replies(messages, 401, "REGISTER")) == 1, messages
    assert len(replies(messages, 401, "INVITE")) + len(replies(messages, 407, "INVITE")) == 1, messages
    assert len(replies(messages, 200, "INVITE")) >= 1, messages
    assert len(replies(messages, 200, "BYE")) >= 1, messages
    assert wait_until(lambda: any(line.startswith("disconnected") for line in log_lines(daemon, 1)), 10), \
        log_lines(daemon, 1)
    assert log_lines(daemon, 1)[:3] == [
        f"alerting {user} -> service ALERTING", "connected CONNECTED", "disconnected 200 TERMINATED",
    ], log_lines(daemon, 1)
    assert f"SIP user {user} registered from udp:" in daemon.stderr_text()


def test_sim_phone_registers_and_calls_with_digest(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    with running_daemon(data, voxfiles=voxfiles(tmp_path / "vox", ANSWER)) as daemon:
        local_port, messages = register_and_call(daemon, tmp_path, "100", sim_user_password(daemon))
        assert_registered_and_called(daemon, messages, "100", local_port)
        assert "Traceback" not in daemon.stderr_text()


def test_wrong_password_gets_403(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    with running_daemon(data, voxfiles=voxfiles(tmp_path / "vox", ANSWER)) as daemon:
        password = sim_user_password(daemon)
        with Md5OnlyRelay(daemon.sip_port) as relay:
            result = sipp("-sf", str(REGISTER_FORBIDDEN), f"{HOST}:{relay.port}", "-s", "100", "-au", "100",
                          "-ap", password + "x", "-m", "1", "-p", str(free_port()), "-trace_msg",
                          "-message_file", "messages.log", cwd=tmp_path)
        messages = read_text(tmp_path / "messages.log")
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:] + messages[-4000:]
        assert len(replies(messages, 403, "REGISTER")) == 1, messages
        assert "Authorization: Digest" in messages  # it did answer the challenge, wrongly
        assert "SIP user 100 registered" not in daemon.stderr_text()
        assert not daemon.session_log(1).exists()


def test_user_added_to_the_store_registers_and_calls(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with store_lines(data) as lines:
        lines.add_user("201", "secret")
    with running_daemon(data, voxfiles=voxfiles(tmp_path / "vox", ANSWER)) as daemon:
        local_port, messages = register_and_call(daemon, tmp_path, "201", "secret")
        assert_registered_and_called(daemon, messages, "201", local_port)
