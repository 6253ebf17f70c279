"""The appliance against a real softphone: baresip (Debian baresip-core), headless, on 127.0.0.1.

baresip runs without a sound card (a sine wave as microphone, a null loudspeaker) and is driven
over its ctrl_tcp module (tests/baresip_helpers.py). Proven here, with the daemon's real SIP stack
and a scenario from voxfiles:

* baresip registers as the simulated user `100` with the password the daemon prints (REGISTER_OK),
  and a wrong password gets REGISTER_FAIL (403);
* baresip calls in: the scenario sees CallAlerting from caller `100` and answers (CALL_ESTABLISHED);
  baresip puts the call on hold (re-INVITE with a=sendonly, answered a=recvonly) and resumes it
  (a=sendrecv): the scenario gets CallEvents.OnHold then OffHold; the scenario's `sendDigits` reach
  baresip as RFC 4733 events in the RTP stream (CALL_DTMF_START 1, 2, #; no SIP INFO); baresip hangs
  up and the scenario gets Disconnected;
* RFC 4733: baresip offers telephone-event, the box's answer keeps it (payload 101), and the keys
  pressed on baresip's console (5, *) reach the scenario as ToneReceived (type 1);
* the box calls baresip: a scenario started through the HTTP API calls `VoxEngine.callUser({username:
  "100"})`; baresip answers (auto answer, or `accept` by hand) and the scenario sees Connected; then
  either the scenario hangs up (baresip: CALL_CLOSED) or baresip does (scenario: Disconnected).

Not provable with this baresip (1.0): it cannot *send* DTMF as SIP INFO (the `dtmfmode` account
parameter came later); INFO digits into the box are proven with sipp (tests/test_sip_sipp.py).

baresip 1.0 (libre 1.x) gives up on a 401 that holds any SHA-256 challenge ("Function not
implemented"); the daemon's default `[sip].digest_algorithms` offers MD5 only, so baresip talks to
the box's SIP port directly.

Every test is bounded (waits of at most a few seconds each), listens on 127.0.0.1 only, and stops
baresip and the daemon whatever happens.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from baresip_helpers import BARESIP, BaresipClient, Event, account_line, running_baresip
from daemon_helpers import (
    HOST,
    Daemon,
    async_wait_until,
    client_session,
    create_api_key,
    running_daemon,
    start_scenarios,
    wait_until,
)
from sip_helpers import log_lines, sim_user_password, voxfiles

pytestmark = pytest.mark.skipif(BARESIP is None, reason="baresip (Debian baresip-core) is not installed")

ENDED = "engine: session ended: Normal termination"

ANSWER = """
VoxEngine.addEventListener(AppEvents.CallAlerting, (e) => {
  const call = e.call;
  Logger.write("alerting " + e.callerid + " -> " + e.destination + " " + call.state());
  call.handleTones(true);
  call.addEventListener(CallEvents.Connected, () => Logger.write("connected " + call.state()));
  call.addEventListener(CallEvents.OnHold, () => Logger.write("on hold " + call.state()));
  call.addEventListener(CallEvents.OffHold, () => {
    Logger.write("off hold " + call.state());
    call.sendDigits("12#");
  });
  call.addEventListener(CallEvents.ToneReceived, (t) => Logger.write("tone " + t.tone + " type " + t.type));
  call.addEventListener(CallEvents.Disconnected, (d) => {
    Logger.write("disconnected " + d.internalCode + " " + call.state());
    VoxEngine.terminate();
  });
  call.answer();
});
"""

CALL_USER = """
VoxEngine.addEventListener(AppEvents.Started, () => {
  const hangUp = VoxEngine.customData() === "hangup";
  const call = VoxEngine.callUser({username: "100", callerid: "42", displayName: "Box"});
  Logger.write("dialling " + call.state());
  call.addEventListener(CallEvents.Ringing, () => Logger.write("ringing"));
  call.addEventListener(CallEvents.Connected, () => {
    Logger.write("connected " + call.state());
    if (hangUp) call.hangup();
  });
  call.addEventListener(CallEvents.Disconnected, (d) => {
    Logger.write("disconnected " + d.internalCode + " " + call.state());
    VoxEngine.terminate();
  });
  call.addEventListener(CallEvents.Failed, (f) => { Logger.write("failed " + f.code); VoxEngine.terminate(); });
});
"""


@dataclass
class BoxAndPhone:
    daemon: Daemon
    phone: BaresipClient
    box_port: int  # where baresip reaches the box: the daemon's SIP port


@contextmanager
def box_and_phone(tmp_path: Path, script: str, *, answermode: str = "auto") -> Iterator[BoxAndPhone]:
    """A daemon running `script` and baresip registered to it as `100`."""
    with running_daemon(tmp_path / "data", voxfiles=voxfiles(tmp_path / "vox", script)) as daemon:
        account = account_line(daemon.sip_port, sim_user_password(daemon), answermode=answermode)
        with running_baresip(tmp_path / "baresip", account) as phone:
            registered = phone.wait_event("REGISTER_OK")
            assert registered["accountaor"] == f"sip:100@{HOST}:{daemon.sip_port}", registered
            yield BoxAndPhone(daemon, phone, daemon.sip_port)


def logged(daemon: Daemon, line: str, timeout: float = 10.0) -> None:
    assert wait_until(lambda: line in log_lines(daemon), timeout), (line, log_lines(daemon))


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_TRACE = re.compile(r"^#\n(?:UDP|TCP) \S+ -> \S+\n(.*?)(?=^#\n(?:UDP|TCP) |\Z)", re.MULTILINE | re.DOTALL)


def sip_messages(phone: BaresipClient) -> list[str]:
    """The SIP messages in baresip's trace (`-s`), sent and received, in order."""
    return [m.group(1) for m in _TRACE.finditer(_ANSI.sub("", phone.output()))]


def key_is(key: str) -> Callable[[Event], bool]:
    return lambda event: event.get("param") == key


def answers_to_invites(phone: BaresipClient) -> list[str]:
    """The 200 OKs to INVITEs that baresip received, in order."""
    return [m for m in sip_messages(phone)
            if m.startswith("SIP/2.0 200 ") and re.search(r"^CSeq: \d+ INVITE", m, re.MULTILINE)]


def test_registers_with_the_printed_password(tmp_path: Path) -> None:
    with box_and_phone(tmp_path, ANSWER) as setup:
        daemon, phone = setup.daemon, setup.phone
        assert wait_until(lambda: "SIP user 100 registered from udp:" in daemon.stderr_text(), 5), \
            daemon.stderr_text()
        assert "REGISTER_FAIL" not in phone.event_types()


def test_a_wrong_password_gets_register_fail(tmp_path: Path) -> None:
    with running_daemon(tmp_path / "data", voxfiles=voxfiles(tmp_path / "vox", ANSWER)) as daemon:
        with running_baresip(tmp_path / "baresip", account_line(daemon.sip_port, "wrong-password")) as phone:
            failed = phone.wait_event("REGISTER_FAIL")
            assert "403" in str(failed.get("param")), failed
            assert "REGISTER_OK" not in phone.event_types()
        assert "SIP user 100 registered" not in daemon.stderr_text()


def test_calls_in_holds_resumes_gets_digits_and_hangs_up(tmp_path: Path) -> None:
    with box_and_phone(tmp_path, ANSWER) as setup:
        daemon, phone = setup.daemon, setup.phone
        target = f"sip:555@{HOST}:{setup.box_port}"
        assert phone.command("dial", target)["ok"]
        established = phone.wait_event("CALL_ESTABLISHED")
        assert established["direction"] == "outgoing", established
        logged(daemon, "connected CONNECTED")
        assert log_lines(daemon)[:2] == ["alerting 100 -> 555 ALERTING", "connected CONNECTED"], log_lines(daemon)

        assert phone.command("hold")["ok"]
        logged(daemon, "on hold CONNECTED")
        assert phone.command("resume")["ok"]
        logged(daemon, "off hold CONNECTED")  # and the scenario sends 1, 2, # (RFC 4733)
        held, resumed = answers_to_invites(phone)[-2:]
        assert "a=recvonly" in held, held  # the answer to a=sendonly
        assert "a=sendrecv" in resumed, resumed

        for digit in "12#":
            phone.wait_event("CALL_DTMF_START", where=key_is(digit))
        infos = [m for m in sip_messages(phone) if m.startswith("INFO ")]
        assert infos == [], infos  # the keys travelled in the media, as the phone negotiated

        assert phone.command("hangup")["ok"]
        phone.wait_event("CALL_CLOSED")
        logged(daemon, ENDED)
        assert log_lines(daemon)[-2:] == ["disconnected 200 TERMINATED", ENDED], log_lines(daemon)
        assert "Traceback" not in daemon.stderr_text()


def test_rfc4733_digits_from_baresip(tmp_path: Path) -> None:
    with box_and_phone(tmp_path, ANSWER) as setup:
        daemon, phone = setup.daemon, setup.phone
        assert phone.command("dial", f"sip:555@{HOST}:{setup.box_port}")["ok"]
        phone.wait_event("CALL_ESTABLISHED")
        offer = next(m for m in sip_messages(phone) if m.startswith("INVITE "))
        assert "a=rtpmap:101 telephone-event/8000" in offer, offer
        answer = answers_to_invites(phone)[0]
        pt = re.search(r"^a=rtpmap:(\d+) telephone-event/8000", answer, re.MULTILINE)
        assert pt is not None, answer  # negotiated: baresip sends its keys as RTP events
        assert re.search(rf"^m=audio \d+ RTP/AVP [\d ]*\b{pt.group(1)}\b", answer, re.MULTILINE), answer
        phone.keys("5*")
        logged(daemon, "tone * type 1")
        assert phone.command("hangup")["ok"]
        logged(daemon, ENDED)
        assert log_lines(daemon)[2:] == ["tone 5 type 1", "tone * type 1", "disconnected 200 TERMINATED", ENDED], \
            log_lines(daemon)


@pytest.mark.parametrize("answermode", ["auto", "manual"])
async def test_box_calls_baresip_and_hangs_up(tmp_path: Path, answermode: str) -> None:
    (tmp_path / "data").mkdir()
    key = create_api_key(tmp_path / "data")
    with box_and_phone(tmp_path, CALL_USER, answermode=answermode) as setup:
        daemon, phone = setup.daemon, setup.phone
        async with client_session() as client:
            await start_scenarios(client, daemon, key, "in", "hangup")
        if answermode == "manual":
            incoming = phone.wait_event("CALL_INCOMING")
            assert incoming["peeruri"] == f"sip:42@{HOST}", incoming
            assert phone.command("accept")["ok"]
        established = phone.wait_event("CALL_ESTABLISHED")
        assert established["direction"] == "incoming", established
        assert established["peeruri"] == f"sip:42@{HOST}", established
        closed = phone.wait_event("CALL_CLOSED")
        assert closed["param"] == "Connection reset by peer", closed  # the box's BYE
        assert await async_wait_until(lambda: ENDED in log_lines(daemon), 10), log_lines(daemon)
        assert log_lines(daemon) == [
            "dialling PROGRESSING", "ringing", "connected CONNECTED", "disconnected 200 TERMINATED", ENDED,
        ], log_lines(daemon)


async def test_box_calls_baresip_which_hangs_up(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    key = create_api_key(tmp_path / "data")
    with box_and_phone(tmp_path, CALL_USER) as setup:
        daemon, phone = setup.daemon, setup.phone
        async with client_session() as client:
            await start_scenarios(client, daemon, key, "in", "stay")
        phone.wait_event("CALL_ESTABLISHED")
        assert await async_wait_until(lambda: "connected CONNECTED" in log_lines(daemon), 10), log_lines(daemon)
        assert phone.command("hangup")["ok"]
        closed = phone.wait_event("CALL_CLOSED")
        assert closed["param"] == "Connection reset by user", closed
        assert await async_wait_until(lambda: ENDED in log_lines(daemon), 10), log_lines(daemon)
        assert log_lines(daemon) == [
            "dialling PROGRESSING", "ringing", "connected CONNECTED", "disconnected 200 TERMINATED", ENDED,
        ], log_lines(daemon)
