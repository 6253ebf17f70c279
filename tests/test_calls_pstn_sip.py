"""callPSTN on a box: the outbound routes pick a SIP trunk (a sipp UAS on 127.0.0.1), rewrite the number
and set the caller ID; numbers no route takes fail at once with the route's reason. The call history
records the leg with the line it went out through.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from daemon_helpers import (
    async_wait_until,
    client_session,
    create_api_key,
    db_rows,
    free_port,
    running_daemon,
    start_scenarios,
)
from sip_helpers import SIPP, log_lines, sipp_in_background, stop_pid, store_lines, voxfiles

from appliance.store.db import Database
from appliance.store.routes import OutboundRouteStore

pytestmark = pytest.mark.skipif(SIPP is None, reason="sipp (Debian sip-tester) is installed by `make test`")

SCRIPT = """
VoxEngine.addEventListener(AppEvents.Started, () => {
  const numbers = ["+1 (555) 000-1234", "+4930123456", "999", "12"];
  let ended = 0;
  for (const number of numbers) {
    const call = VoxEngine.callPSTN(number, "+15557654321");
    call.addEventListener(CallEvents.Connected, () => {
      Logger.write(`${number}: connected, ${call.clientType()}`);
      setTimeout(() => call.hangup(), 1000);
    });
    const end = (text) => {
      Logger.write(`${number}: ${text}`);
      if (++ended === numbers.length) VoxEngine.terminate();
    };
    call.addEventListener(CallEvents.Failed, (e) => end(`failed ${e.code} ${e.reason}`));
    call.addEventListener(CallEvents.Disconnected, () => end("disconnected"));
  }
});
"""


async def test_call_pstn_goes_out_through_the_route_and_its_trunk(tmp_path: Path) -> None:
    uas_port = free_port()
    data = tmp_path / "data"
    with store_lines(data) as lines:
        lines.add_trunk("itsp", "127.0.0.1", uas_port)
    db = Database(data / "voxgate.db")
    try:
        routes = OutboundRouteStore(db)
        routes.add("north-america", r"\+1\d{10}", "itsp", strip_digits=2, prepend="011",
                   callerid_policy="fixed", callerid_value="7000", international=True)
        routes.add("local", r"\d{3}", "missing-line")
    finally:
        db.close()
    key = create_api_key(data)
    # -aa: the trunk's OPTIONS keep-alives are answered (with -m they would count as calls)
    uas = sipp_in_background("-sn", "uas", "-p", str(uas_port), "-aa", "-trace_msg", cwd=tmp_path)
    try:
        with running_daemon(data, voxfiles=voxfiles(tmp_path / "vox", SCRIPT)) as daemon:
            async with client_session() as client:
                await start_scenarios(client, daemon, key, "in")
            assert await async_wait_until(
                lambda: "engine: session ended: Normal termination" in log_lines(daemon), 20), log_lines(daemon)
            script_lines = [line for line in log_lines(daemon) if not line.startswith("engine: ")]
            assert sorted(script_lines) == sorted([
                "+1 (555) 000-1234: connected, pstn",
                "+4930123456: failed 404 No outbound route for +4930123456",
                "999: failed 503 Line missing-line is not available",
                "12: failed 404 No outbound route for 12",
                "+1 (555) 000-1234: disconnected",
            ]), log_lines(daemon)
            rows = db_rows(daemon.db_path, "SELECT kind, line, caller, destination, code FROM call_legs")
        assert rows == [("pstn", "itsp", "7000", "0115550001234", 200)]
        messages = next(tmp_path.glob("*_messages.log")).read_text()  # noqa: ASYNC240 (a small file, after the run)
        invite = messages[messages.index("INVITE sip:"):]
        assert invite.startswith("INVITE sip:0115550001234@127.0.0.1")
        assert "\nFrom: <sip:7000@" in invite, invite[:800]
    finally:
        stop_pid(uas)
