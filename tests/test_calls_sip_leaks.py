"""Nothing half-open after real SIP calls that scripts mishandle: sipp calls in, the scenario bridges it
to a sipp UAS, makes mistakes on the way (media to itself, answering an ended call, ending the session
with a call still up or still ringing); afterwards GetHealth shows no session, no call and no RTP port.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest
from daemon_helpers import (
    HOST,
    async_wait_until,
    client_session,
    create_api_key,
    free_port,
    http,
    running_daemon,
)
from sip_helpers import SIPP, log_lines, running, sipp, sipp_in_background, stop_pid, voxfiles, with_local_trunk

pytestmark = pytest.mark.skipif(SIPP is None, reason="sipp (Debian sip-tester) is installed by `make test`")

CALLS = 3

SCRIPT = """
VoxEngine.addEventListener(AppEvents.CallAlerting, (e) => {
  const call = e.call;
  // Never answered: ringing when the session ends, so the box must cancel it.
  VoxEngine.callSIP("sip:nobody@127.0.0.1:SILENT_PORT");
  call.addEventListener(CallEvents.Connected, () => {
    const out = VoxEngine.callSIP("sip:desk@127.0.0.1:UAS_PORT", {callerid: "42"});
    try { call.sendMediaTo(call); } catch (err) { Logger.write(err.message); }
    out.addEventListener(CallEvents.Connected, () => {
      VoxEngine.sendMediaBetween(call, out);
      Logger.write("bridged");
    });
  });
  call.addEventListener(CallEvents.Disconnected, () => {
    try { call.answer(); } catch (err) { Logger.write(err.name); }
    VoxEngine.terminate();  // the bridged call is still up: the session's end hangs it up
  });
  call.answer();
});
"""


def ended(daemon: Any, session: int) -> bool:
    return "engine: session ended: Normal termination" in log_lines(daemon, session)


async def health(daemon: Any, key: str) -> dict[str, Any]:
    async with client_session() as client:
        reply = await http(client, "POST", f"{daemon.api_url}/GetHealth", data={"account_id": "1", "api_key": key})
    assert reply.status == 200, reply.text
    result: dict[str, Any] = reply.json()["result"]
    return result


async def test_mishandled_calls_leave_no_session_call_or_port(tmp_path: Path) -> None:
    uas_port, silent_port = free_port(), free_port()
    script = SCRIPT.replace("UAS_PORT", str(uas_port)).replace("SILENT_PORT", str(silent_port))
    data = with_local_trunk(tmp_path / "data")
    key = create_api_key(data)
    uas = sipp_in_background("-sn", "uas", "-p", str(uas_port), "-m", str(CALLS), "-rtp_echo", cwd=tmp_path)
    try:
        with running_daemon(data, voxfiles=voxfiles(tmp_path / "vox", script)) as daemon:
            result = sipp("-sn", "uac", f"{HOST}:{daemon.sip_port}", "-s", "service", "-m", str(CALLS), "-l", "1",
                          "-d", "2000", "-p", str(free_port()), cwd=tmp_path, timeout=60)
            assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
            for session in range(1, CALLS + 1):
                assert await async_wait_until(functools.partial(ended, daemon, session), 15)
                assert log_lines(daemon, session)[:3] == [
                    "sendMediaTo: a media unit cannot send media to itself", "bridged", "Error"]
            assert await async_wait_until(lambda: not running(uas), 15), "the UAS did not get its BYEs"
            state = await health(daemon, key)
            assert state["sessions"] == 0 and state["session_calls"] == 0 and state["sip_calls"] == 0, state
            assert state["media"]["ports_in_use"] == 0 and state["media"]["units"] == 0, state
    finally:
        stop_pid(uas)
