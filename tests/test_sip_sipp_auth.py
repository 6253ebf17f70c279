"""Local users authenticate with digest against sipp scenarios: REGISTER, then INVITE, each challenged.

Proven here, on 127.0.0.1 with the daemon's real SIP stack and sipp (tests/sipp/*.xml):

* the simulated phone `100` registers (401, then 200 with its Contact and the time left on it as
  `expires=`), then calls: its INVITE is challenged too (401, which sipp ACKs), the re-sent INVITE
  with credentials is answered by the scenario, which logs alerting, connected and disconnected;
* a wrong password gets 403 to the REGISTER (and no session starts);
* a user added to the store before the start (`201`) registers and calls the same way.

sipp 3.6 computes MD5 digest only, and it answers the first WWW-Authenticate of a 401 whatever its
algorithm; the daemon's default `[sip].digest_algorithms` offers MD5 only, so sipp talks to the daemon's
SIP port directly, and each 401 it gets carries exactly one challenge: WWW-Authenticate with algorithm=MD5.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from daemon_helpers import HOST, Daemon, free_port, read_text, running_daemon, wait_until
from sip_helpers import ANSWER, SIPP, log_lines, sim_user_password, sipp, store_lines, voxfiles

pytestmark = pytest.mark.skipif(SIPP is None, reason="sipp (Debian sip-tester) is installed by `make test`")

SCENARIOS = Path(__file__).resolve().parent / "sipp"
REGISTER_AND_CALL = SCENARIOS / "register_and_call.xml"
REGISTER_FORBIDDEN = SCENARIOS / "register_forbidden.xml"


def register_and_call(daemon: Daemon, cwd: Path, user: str, password: str) -> tuple[int, str]:
    """tests/sipp/register_and_call.xml as `user`, calling `service`; sipp's local port and its message trace."""
    local_port = free_port()
    result = sipp("-sf", str(REGISTER_AND_CALL), f"{HOST}:{daemon.sip_port}", "-s", user, "-au", user, "-ap", password,
                  "-set", "dest", "service", "-m", "1", "-p", str(local_port), "-trace_msg",
                  "-message_file", "messages.log", cwd=cwd)
    messages = read_text(cwd / "messages.log")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:] + messages[-4000:]
    assert_md5_only_challenges(messages)
    return local_port, messages


def replies(messages: str, status: int, method: str) -> list[str]:
    """The replies with `status` to `method` in a sipp message trace."""
    found = []
    for block in re.split(r"\n(?=-{10,})", messages):
        start = block.find(f"SIP/2.0 {status} ")
        if start >= 0 and re.search(rf"^CSeq:\s*\d+ {method}\s*$", block, re.MULTILINE | re.IGNORECASE):
            found.append(block[start:])
    return found


def assert_md5_only_challenges(messages: str) -> None:
    """Each 401 (to REGISTER and to INVITE) holds exactly one challenge: WWW-Authenticate, algorithm=MD5."""
    challenged = replies(messages, 401, "REGISTER") + replies(messages, 401, "INVITE")
    assert challenged, messages
    for reply in challenged:
        challenges = re.findall(r"^((?:www|proxy)-authenticate):(.*)$", reply, re.MULTILINE | re.IGNORECASE)
        assert len(challenges) == 1, reply
        name, value = challenges[0]
        assert name.lower() == "www-authenticate", reply
        assert re.search(r'\balgorithm="?MD5"?\s*(?:,|$)', value, re.IGNORECASE), reply


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
        result = sipp("-sf", str(REGISTER_FORBIDDEN), f"{HOST}:{daemon.sip_port}", "-s", "100", "-au", "100",
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
