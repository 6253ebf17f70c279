"""Two appliances on 127.0.0.1: A has a trunk to B that registers as B's user `trunk-a`.

Proven: A's trunk registers (B offers only SHA-256 challenges: RFC 8760 on both sides); a scenario
on A reaches B through the trunk (`callSIP("sip:555@b")`: B challenges the INVITE, A answers it, B's
scenario sees the number 555); a scenario on B reaches A with `callUser("trunk-a")` (A takes it as a
call from its trunk, with the number from To); both sides see Connected and Disconnected; and A
unregisters when it stops.
"""

from __future__ import annotations

from pathlib import Path

from daemon_helpers import (
    HOST,
    Daemon,
    async_wait_until,
    client_session,
    create_api_key,
    running_daemon,
    start_scenarios,
)
from sip_helpers import log_lines, store_lines, voxfiles

SCRIPT = """
VoxEngine.addEventListener(AppEvents.CallAlerting, (e) => {
  Logger.write("alerting " + e.callerid + " -> " + e.destination);
  e.call.addEventListener(CallEvents.Connected, () => Logger.write("connected"));
  e.call.addEventListener(CallEvents.Disconnected, () => { Logger.write("disconnected"); VoxEngine.terminate(); });
  e.call.answer();
});
VoxEngine.addEventListener(AppEvents.Started, () => {
  const target = VoxEngine.customData();
  if (!target) return;
  const call = target.startsWith("user:")
    ? VoxEngine.callUser({username: target.slice(5), callerid: "42"})
    : VoxEngine.callSIP(target, {callerid: "42"});
  call.addEventListener(CallEvents.Connected, () => { Logger.write("dialled: connected"); call.hangup(); });
  call.addEventListener(CallEvents.Disconnected, () => {
    Logger.write("dialled: disconnected");
    VoxEngine.terminate();
  });
  call.addEventListener(CallEvents.Failed, (e) => {
    Logger.write("dialled: failed " + e.code + " " + e.reason);
    VoxEngine.terminate();
  });
});
"""

ENDED = "engine: session ended: Normal termination"


def _ended(daemon: Daemon, session: int) -> bool:
    return ENDED in log_lines(daemon, session)


async def test_a_trunk_registers_to_another_appliance_and_calls_pass_both_ways(tmp_path: Path) -> None:
    b_data = tmp_path / "b"
    with store_lines(b_data) as lines:
        lines.add_user("trunk-a", "s3cret-trunk")
    b_key = create_api_key(b_data)
    b_config = tmp_path / "b.toml"
    b_config.write_text('[sip]\ndigest_algorithms = ["SHA-256"]\n')
    b_vox = voxfiles(tmp_path / "vox-b", SCRIPT)
    with running_daemon(b_data, voxfiles=b_vox, extra_args=["--config", str(b_config)]) as b:
        a_data = tmp_path / "a"
        with store_lines(a_data) as lines:
            lines.add_trunk("b", HOST, b.sip_port, username="trunk-a", password="s3cret-trunk", register=True)
        a_key = create_api_key(a_data)
        with running_daemon(a_data, voxfiles=voxfiles(tmp_path / "vox-a", SCRIPT)) as a:
            assert await async_wait_until(lambda: "SIP user trunk-a registered" in b.stderr_text(), 10), (
                a.stderr_text() + b.stderr_text())
            assert await async_wait_until(lambda: "trunk b registered" in a.stderr_text(), 5), a.stderr_text()
            async with client_session() as client:
                await start_scenarios(client, a, a_key, "in", "sip:555@b")
                assert await async_wait_until(lambda: _ended(a, 1) and _ended(b, 1), 15), (
                    log_lines(a, 1), log_lines(b, 1))
                assert log_lines(a, 1)[:2] == ["dialled: connected", "dialled: disconnected"]
                assert log_lines(b, 1)[:3] == ["alerting 42 -> 555", "connected", "disconnected"]

                await start_scenarios(client, b, b_key, "in", "user:trunk-a")
                assert await async_wait_until(lambda: _ended(a, 2) and _ended(b, 2), 15), (
                    log_lines(a, 2), log_lines(b, 2))
                assert log_lines(b, 2)[:2] == ["dialled: connected", "dialled: disconnected"]
                assert log_lines(a, 2)[:3] == ["alerting 42 -> trunk-a", "connected", "disconnected"]
        assert await async_wait_until(lambda: "SIP user trunk-a unregistered" in b.stderr_text(), 5), b.stderr_text()
        assert "Traceback" not in a.stderr_text() + b.stderr_text()
