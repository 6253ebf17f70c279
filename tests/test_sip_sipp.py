"""The appliance against sipp (Debian sip-tester), on 127.0.0.1: sipp calls in, presses keys as SIP INFO, and is called.

Each test starts a daemon with a trunk on 127.0.0.1 (so sipp's calls are accepted without a
password), runs sipp to completion with bounded time, and reads what the scenario logged.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from daemon_helpers import (
    HOST,
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
    voxfiles,
    with_local_trunk,
)

pytestmark = pytest.mark.skipif(SIPP is None, reason="sipp (Debian sip-tester) is installed by `make test`")

DIAL = """
VoxEngine.addEventListener(AppEvents.Started, () => {
  const call = VoxEngine.callSIP("sip:service@127.0.0.1:TARGET_PORT", {callerid: "42"});
  Logger.write("dialling " + call.state());
  call.addEventListener(CallEvents.Ringing, () => Logger.write("ringing"));
  call.addEventListener(CallEvents.Connected, () => { Logger.write("connected"); call.hangup(); });
  call.addEventListener(CallEvents.Disconnected, () => { Logger.write("disconnected"); VoxEngine.terminate(); });
  call.addEventListener(CallEvents.Failed, (e) => { Logger.write("failed " + e.code); VoxEngine.terminate(); });
});
"""


def test_sipp_uac_call_is_answered_by_the_scenario(tmp_path: Path) -> None:
    data = with_local_trunk(tmp_path / "data")
    with running_daemon(data, voxfiles=voxfiles(tmp_path / "vox", ANSWER)) as daemon:
        result = sipp("-sn", "uac", f"{HOST}:{daemon.sip_port}", "-s", "service", "-m", "3", "-l", "1",
                       "-p", str(free_port()), cwd=tmp_path)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        assert wait_until(lambda: "engine: session ended: Normal termination" in log_lines(daemon, 3), 10)
        for session in (1, 2, 3):
            assert log_lines(daemon, session)[:3] == [
                "alerting sipp -> service ALERTING", "connected CONNECTED", "disconnected 200 TERMINATED",
            ], log_lines(daemon, session)


async def test_scenario_calls_sipp_uas(tmp_path: Path) -> None:
    uas_port = free_port()
    pid = sipp_in_background("-sn", "uas", "-p", str(uas_port), "-m", "1", cwd=tmp_path)
    try:
        data = tmp_path / "data"
        data.mkdir()
        key = create_api_key(data)
        vox = voxfiles(tmp_path / "vox", DIAL.replace("TARGET_PORT", str(uas_port)))
        with running_daemon(data, voxfiles=vox) as daemon:
            async with client_session() as client:
                await start_scenarios(client, daemon, key, "in")
            assert await async_wait_until(
                lambda: "engine: session ended: Normal termination" in log_lines(daemon), 15), log_lines(daemon)
            assert log_lines(daemon)[:4] == ["dialling PROGRESSING", "ringing", "connected", "disconnected"]
        assert await async_wait_until(lambda: not running(pid), 15), "sipp uas did not finish its call"
    finally:
        stop_pid(pid)


def test_garbage_and_malformed_requests_do_not_stop_the_stack(tmp_path: Path) -> None:
    data = with_local_trunk(tmp_path / "data")
    with running_daemon(data, voxfiles=voxfiles(tmp_path / "vox", ANSWER)) as daemon:
        bad_cseq = (
            b"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKbad\r\n"
            b"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: bad@x\r\n"
            b"CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
        )
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(5)
            sock.bind((HOST, 0))
            for junk in (b"\x00" * 3000, b"INVITE\r\n\r\n", b"SIP/2.0 999 x\r\n\r\n", os.urandom(1400)):
                sock.sendto(junk, (HOST, daemon.sip_port))
            sock.sendto(bad_cseq.replace(b"127.0.0.1:9", f"{HOST}:{sock.getsockname()[1]}".encode()),
                        (HOST, daemon.sip_port))
            reply = sock.recv(65535)
        assert reply.startswith(b"SIP/2.0 400 "), reply[:200]
        assert b"CSeq method INVITE does not match" in reply
        result = sipp("-sn", "uac", f"{HOST}:{daemon.sip_port}", "-s", "service", "-m", "1",
                       "-p", str(free_port()), cwd=tmp_path)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        assert "Traceback" not in daemon.stderr_text()


TONES = """
VoxEngine.addEventListener(AppEvents.CallAlerting, (e) => {
  e.call.handleTones(true);
  e.call.addEventListener(CallEvents.ToneReceived, (t) => Logger.write("tone " + t.tone + " type " + t.type));
  e.call.addEventListener(CallEvents.Disconnected, () => VoxEngine.terminate());
  e.call.answer();
});
"""


def test_keys_sent_as_sip_info_reach_the_scenario(tmp_path: Path) -> None:
    data = with_local_trunk(tmp_path / "data")
    with running_daemon(data, voxfiles=voxfiles(tmp_path / "vox", TONES)) as daemon:
        scenario = Path(__file__).parent / "sipp" / "info_dtmf.xml"
        result = sipp("-sf", str(scenario), f"{HOST}:{daemon.sip_port}", "-s", "service", "-m", "1",
                      "-p", str(free_port()), cwd=tmp_path)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        assert wait_until(lambda: "engine: session ended: Normal termination" in log_lines(daemon), 10)
        assert [line for line in log_lines(daemon) if line.startswith("tone")] == ["tone 5 type 3", "tone # type 3"]
