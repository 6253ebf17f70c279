"""The appliance against sipp (Debian sip-tester), on 127.0.0.1: sipp calls in, and is called.

Each test starts a daemon with a trunk on 127.0.0.1 (so sipp's calls are accepted without a
password), runs sipp to completion with bounded time, and reads what the scenario logged.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import pytest
from daemon_helpers import (
    HOST,
    Daemon,
    async_wait_until,
    client_session,
    create_api_key,
    free_port,
    read_text,
    running_daemon,
    start_scenarios,
    wait_until,
)

from appliance.store.db import Database
from appliance.store.sip import SipLineStore

SIPP = shutil.which("sipp")
pytestmark = pytest.mark.skipif(SIPP is None, reason="sipp (Debian sip-tester) is installed by `make test`")

ANSWER = """
VoxEngine.addEventListener(AppEvents.CallAlerting, (e) => {
  Logger.write("alerting " + e.callerid + " -> " + e.destination + " " + e.call.state());
  e.call.addEventListener(CallEvents.Connected, () => Logger.write("connected " + e.call.state()));
  e.call.addEventListener(CallEvents.Disconnected, (d) => {
    Logger.write("disconnected " + d.internalCode + " " + e.call.state());
    VoxEngine.terminate();
  });
  e.call.answer();
});
"""

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


def _voxfiles(root: Path, script: str) -> Path:
    (root / "applications" / "t").mkdir(parents=True)
    (root / "scenarios" / "src").mkdir(parents=True)
    (root / "applications" / "t" / "application.config.json").write_text(json.dumps({"applicationName": "t"}))
    rules = [{"ruleName": "in", "rulePattern": ".*", "scenarios": ["main"]}]
    (root / "applications" / "t" / "rules.config.json").write_text(json.dumps(rules))
    (root / "scenarios" / "src" / "main.voxengine.js").write_text(script)
    return root


def _with_local_trunk(data_dir: Path) -> Path:
    data_dir.mkdir(parents=True)
    db = Database(data_dir / "voxgate.db")
    try:
        SipLineStore(db).add_trunk("local", HOST)
    finally:
        db.close()
    return data_dir


def _sipp(*args: str, cwd: Path, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    assert SIPP is not None
    return subprocess.run(
        [SIPP, *args, "-i", HOST, "-nostdin", "-timeout", "20", "-timeout_error", "-trace_err"],
        cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False,
    )


def _log_lines(daemon: Daemon, session_id: int = 1) -> list[str]:
    text = read_text(daemon.session_log(session_id)) if daemon.session_log(session_id).exists() else ""
    return [line.split(" ", 2)[2] for line in text.splitlines() if line.count(" ") >= 2]


def test_sipp_uac_call_is_answered_by_the_scenario(tmp_path: Path) -> None:
    data = _with_local_trunk(tmp_path / "data")
    with running_daemon(data, voxfiles=_voxfiles(tmp_path / "vox", ANSWER)) as daemon:
        result = _sipp("-sn", "uac", f"{HOST}:{daemon.sip_port}", "-s", "service", "-m", "3", "-l", "1",
                       "-p", str(free_port()), cwd=tmp_path)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        assert wait_until(lambda: "engine: session ended: Normal termination" in _log_lines(daemon, 3), 10)
        for session in (1, 2, 3):
            assert _log_lines(daemon, session)[:3] == [
                "alerting sipp -> service ALERTING", "connected CONNECTED", "disconnected 200 TERMINATED",
            ], _log_lines(daemon, session)


def _uas_in_background(port: int, cwd: Path) -> int:
    """sipp's built-in uas for one call, in the background (-bg); its PID."""
    result = subprocess.run(
        [str(SIPP), "-sn", "uas", "-i", HOST, "-p", str(port), "-m", "1", "-nostdin", "-timeout", "20",
         "-timeout_error", "-bg"],
        cwd=cwd, capture_output=True, text=True, timeout=10, check=False,
    )
    assert "PID=[" in result.stdout, result.stdout + result.stderr  # the parent's exit status means nothing
    return int(result.stdout.split("PID=[")[1].split("]")[0])


def _running(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def _stop(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)


async def test_scenario_calls_sipp_uas(tmp_path: Path) -> None:
    uas_port = free_port()
    pid = _uas_in_background(uas_port, tmp_path)
    try:
        data = tmp_path / "data"
        data.mkdir()
        key = create_api_key(data)
        vox = _voxfiles(tmp_path / "vox", DIAL.replace("TARGET_PORT", str(uas_port)))
        with running_daemon(data, voxfiles=vox) as daemon:
            async with client_session() as client:
                await start_scenarios(client, daemon, key, "in")
            assert await async_wait_until(
                lambda: "engine: session ended: Normal termination" in _log_lines(daemon), 15), _log_lines(daemon)
            assert _log_lines(daemon)[:4] == ["dialling PROGRESSING", "ringing", "connected", "disconnected"]
        assert await async_wait_until(lambda: not _running(pid), 15), "sipp uas did not finish its call"
    finally:
        _stop(pid)


def test_garbage_and_malformed_requests_do_not_stop_the_stack(tmp_path: Path) -> None:
    data = _with_local_trunk(tmp_path / "data")
    with running_daemon(data, voxfiles=_voxfiles(tmp_path / "vox", ANSWER)) as daemon:
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
        result = _sipp("-sn", "uac", f"{HOST}:{daemon.sip_port}", "-s", "service", "-m", "1",
                       "-p", str(free_port()), cwd=tmp_path)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        assert "Traceback" not in daemon.stderr_text()
