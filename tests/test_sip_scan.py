"""The SIP guard against sipvicious (Debian package: svmap, svwar) and a REGISTER password guesser, on loopback.

What is proven, with the real daemon:

* svmap finds the stack (Server: VoxGate); svwar enumerating extensions 100-199 with REGISTER and
  INVITE finds nothing, because user 100 (which exists) gets the same 401 challenge as any made-up
  name; the svwar OPTIONS sweep then gets its source banned, logged once. Afterwards that source
  gets no answer at all, while a phone at another address still registers with its password and a
  trunk's call is still answered by the scenario.
* Password guessing: `register_failures` wrong passwords for user 100 lock the account name for
  every source, so even the right password is refused until `lockout_seconds` have passed; the
  replies for an unknown user, a wrong password and a locked account are the same.

svwar 0.3.3 ignores its -b option (its main() never passes bindingip on), so the scanners send from
127.0.0.1, the loopback's default source, and the legitimate phone and trunk bind to 127.0.0.2.
Nothing leaves 127.0.0.0/8.
"""

from __future__ import annotations

import re
import secrets
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from daemon_helpers import HOST, Daemon, free_port, running_daemon, wait_until
from sip_helpers import ANSWER, SIPP, log_lines, sim_user_password, store_lines, voxfiles

from appliance.sip import digest

pytestmark = pytest.mark.skipif(
    shutil.which("svmap") is None or shutil.which("svwar") is None or SIPP is None,
    reason="sipvicious (svmap, svwar) and sipp (Debian sip-tester) are installed by `make test`",
)

SCANNER = HOST  # where sipvicious sends from (see the module docstring)
PHONE = "127.0.0.2"  # the legitimate phone and trunk
GUESSER = "127.0.0.3"  # guesses user 100's password
OTHER = "127.0.0.4"  # another source, to show the lock is on the account name
LOCKOUT_SECONDS = 4.0
TOOL_TIMEOUT = 40.0
THROTTLE = "0.2"  # svwar -t: seconds without a reply before it sends the next request


def udp_port() -> int:
    """A UDP port free on all addresses right now (sipvicious binds the wildcard address)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("", 0))
        return int(sock.getsockname()[1])


def sipvicious(tool: str, *args: str, cwd: Path) -> str:
    """Run svmap or svwar to completion, never reading stdin; what it printed (stdout, then stderr)."""
    result = subprocess.run(
        [tool, "-x", SCANNER, "-P", str(udp_port()), *args], cwd=cwd, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=TOOL_TIMEOUT, check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Traceback" not in output and "Unhandled exception" not in output, output
    return output


def ask(source: str, port: int, message: str, timeout: float = 5.0) -> bytes | None:
    """Send `message` from `source` (a socket of its own) and return the first reply, None if none came."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        sock.settimeout(timeout)
        local_port = sock.getsockname()[1]
        sock.sendto(message.replace("LOCAL", f"{source}:{local_port}").encode(), (HOST, port))
        try:
            return sock.recv(65535)
        except TimeoutError:
            return None


def options(port: int) -> str:
    return (
        f"OPTIONS sip:{HOST}:{port} SIP/2.0\r\nVia: SIP/2.0/UDP LOCAL;branch=z9hG4bK{secrets.token_hex(8)};rport\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:probe@{HOST}>;tag={secrets.token_hex(4)}\r\nTo: <sip:{HOST}>\r\n"
        f"Call-ID: {secrets.token_hex(8)}@probe\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )


def register(port: int, user: str, call_id: str, cseq: int, authorization: str = "") -> str:
    auth = f"Authorization: {authorization}\r\n" if authorization else ""
    return (
        f"REGISTER sip:{HOST}:{port} SIP/2.0\r\nVia: SIP/2.0/UDP LOCAL;branch=z9hG4bK{secrets.token_hex(8)};rport\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:{user}@{HOST}>;tag={call_id[:8]}\r\nTo: <sip:{user}@{HOST}>\r\n"
        f"Call-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:{user}@LOCAL>\r\nExpires: 300\r\n"
        f"{auth}Content-Length: 0\r\n\r\n"
    )


def try_password(source: str, port: int, user: str, password: str) -> tuple[bytes, bytes]:
    """A REGISTER from `source` answered with digest credentials: (the 401 challenge, the final reply)."""
    call_id = secrets.token_hex(8)
    challenge = ask(source, port, register(port, user, call_id, 1))
    assert challenge is not None and challenge.startswith(b"SIP/2.0 401 "), challenge
    offered = [digest.Challenge.parse(value) for value in
               re.findall(r"^WWW-Authenticate: (.*?)\r$", challenge.decode(), re.MULTILINE)]
    chosen = digest.first_supported(offered)
    assert chosen is not None, challenge
    creds = digest.answer(chosen, "REGISTER", f"sip:{HOST}:{port}", user, password)
    final = ask(source, port, register(port, user, call_id, 2, creds.serialize()))
    assert final is not None, f"no reply to the REGISTER with credentials for {user!r} from {source}"
    return challenge, final


def shape(reply: bytes) -> list[str]:
    """A reply without what differs between any two requests (Via, tags, Call-ID, CSeq, nonces)."""
    head, _, body = reply.decode().partition("\r\n\r\n")
    lines = []
    for line in head.split("\r\n"):
        name = line.partition(":")[0].lower()
        kept = name if name in ("via", "from", "to", "call-id", "cseq") else line
        lines.append(re.sub(r'nonce="[^"]*"', 'nonce="..."', kept))
    return [*lines, body]


def status(reply: bytes) -> str:
    return reply.split(b"\r\n", 1)[0].decode()


def ban_lines(daemon: Daemon, source: str) -> list[str]:
    return [line for line in daemon.stderr_text().splitlines() if f"banning {source} " in line]


def test_sipvicious_scan_is_banned_and_learns_nothing_while_a_phone_still_works(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with store_lines(data) as lines:
        lines.add_trunk("phone", PHONE)
    with running_daemon(data, voxfiles=voxfiles(tmp_path / "vox", ANSWER)) as daemon:
        port = daemon.sip_port
        target = f"udp://{HOST}:{port}"

        found = sipvicious("svmap", "-b", SCANNER, "-p", str(port), HOST, cwd=tmp_path)
        assert re.search(rf"{re.escape(HOST)}:{port}\s*\|\s*VoxGate\s", found), found

        # svwar first asks for a made-up extension: a challenge there means it cannot tell users apart.
        # These runs wait THROTTLE s for a reply before each next request, under the flood limit even when
        # the daemon is slow to answer, so what they prove is the enumeration and not the ban.
        refused = sipvicious("svwar", "-t", THROTTLE, "-e", "100-199", "-m", "REGISTER", target, cwd=tmp_path)
        assert "authentication request for an unknown extension" in refused, refused
        for method in ("REGISTER", "INVITE"):
            forced = sipvicious("svwar", "-t", THROTTLE, "-e", "100-199", "-m", method, "--force", target,
                                cwd=tmp_path)
            assert "found nothing" in forced, forced
            # It did ask about 100 and got the 401 it got for the made-up name, which makes it give up.
            assert "Bad user = SIP/2.0 401 " in forced, forced
            assert re.search(r"Response: 'SIP/2\.0 401 Unauthorized\\r\\n.*From: \"100\"<sip:100@", forced), forced
            assert "exists" not in forced and "| reqauth" not in forced, forced
        assert ban_lines(daemon, SCANNER) == [], daemon.stderr_text()

        # At full speed (-t 0.005, svwar's default) the OPTIONS sweep goes over the limit.
        swept = sipvicious("svwar", "-e", "100-199", "-m", "OPTIONS", "--force", target, cwd=tmp_path)
        assert "found nothing" in swept, swept
        assert wait_until(lambda: len(ban_lines(daemon, SCANNER)) == 1, 5), daemon.stderr_text()
        assert "for 300 s: 17 requests in" in ban_lines(daemon, SCANNER)[0]

        # The scanner's address gets nothing at all; another address is served as before.
        assert ask(SCANNER, port, options(port), timeout=1.5) is None
        answer = ask(PHONE, port, options(port))
        assert answer is not None and answer.startswith(b"SIP/2.0 200 OK\r\n"), answer
        _, registered = try_password(PHONE, port, "100", sim_user_password(daemon))
        assert status(registered) == "SIP/2.0 200 OK", registered
        assert f"<sip:100@{PHONE}:".encode() in registered, registered

        assert SIPP is not None
        call = subprocess.run(
            [SIPP, "-sn", "uac", f"{HOST}:{port}", "-s", "service", "-m", "1", "-i", PHONE, "-p", str(free_port()),
             "-nostdin", "-timeout", "20", "-timeout_error", "-trace_err"],
            cwd=tmp_path, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30, check=False,
        )
        assert call.returncode == 0, call.stdout[-2000:] + call.stderr[-2000:]
        assert wait_until(lambda: "disconnected 200 TERMINATED" in log_lines(daemon, 1), 10), log_lines(daemon, 1)
        assert log_lines(daemon, 1)[:2] == ["alerting sipp -> service ALERTING", "connected CONNECTED"]

        text = daemon.stderr_text()
        assert "Traceback" not in text, text
        assert len(ban_lines(daemon, SCANNER)) == 1 and ban_lines(daemon, PHONE) == [], text
    assert daemon.exit_status == 0, daemon.stderr_text()


def test_register_password_guessing_locks_the_account_and_unknown_users_look_the_same(tmp_path: Path) -> None:
    config = tmp_path / "voxgate.toml"
    config.write_text(f"[sip]\nregister_failures = 5\nlockout_seconds = {LOCKOUT_SECONDS}\n")
    with running_daemon(tmp_path / "data", extra_args=["--config", str(config)]) as daemon:
        port = daemon.sip_port
        password = sim_user_password(daemon)

        # 2 requests per guess, 12 in all: under the flood limit, so this is the lockout, not a ban.
        unknown_challenge, unknown = try_password(GUESSER, port, "199", "guess-0")
        guesses = [try_password(GUESSER, port, "100", f"guess-{n}") for n in range(1, 6)]
        assert status(unknown) == "SIP/2.0 403 Forbidden", unknown
        for challenge, wrong in guesses:
            assert shape(challenge) == shape(unknown_challenge), (challenge, unknown_challenge)
            assert shape(wrong) == shape(unknown), (wrong, unknown)
        locks = [line for line in daemon.stderr_text().splitlines() if "locking account '100'" in line]
        assert len(locks) == 1 and f"5 failed REGISTERs, the last from {GUESSER}" in locks[0], daemon.stderr_text()

        # Locked for every source: the right password gets what a wrong one or an unknown user gets.
        _, locked = try_password(OTHER, port, "100", password)
        _, still_wrong = try_password(OTHER, port, "100", "guess-6")
        _, still_unknown = try_password(OTHER, port, "198", password)
        assert shape(locked) == shape(still_wrong) == shape(still_unknown) == shape(unknown), locked

        def accepted() -> bool:
            return status(try_password(OTHER, port, "100", password)[1]) == "SIP/2.0 200 OK"

        # Polled once a second (2 requests each), so the poll itself stays far below the flood limit.
        assert wait_until(accepted, LOCKOUT_SECONDS + 10, interval=1.0), daemon.stderr_text()
        text = daemon.stderr_text()
        assert "Traceback" not in text and "banning" not in text, text
    assert daemon.exit_status == 0, daemon.stderr_text()
