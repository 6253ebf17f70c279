"""`appliance sip ...`: users and trunks added, listed and removed in the store; SIGHUP makes a running
appliance take them (a trunk added while it runs starts registering to the other appliance)."""

from __future__ import annotations

import signal
from pathlib import Path

from daemon_helpers import HOST, async_wait_until, run_appliance, running_daemon


def _sip(data: Path, *args: str) -> tuple[int, str]:
    result = run_appliance(["sip", "--data-dir", str(data), *args], cwd=data.parent)
    return result.returncode, result.stdout + result.stderr


def test_users_and_trunks_are_added_listed_and_removed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    status, out = _sip(data, "add-user", "201", "--display-name", "Reception")
    assert status == 0 and out.startswith("SIP user 201, password ") and len(out.split()[-1]) >= 12, out
    assert _sip(data, "add-user", "202", "--password", "given-one") == (0, "SIP user 202, password given-one\n")
    status, out = _sip(data, "add-trunk", "itsp", "sip.example.test", "--username", "acct", "--password", "pw",
                       "--register", "--transport", "tcp")
    assert (status, out) == (0, "SIP trunk itsp at sip.example.test\n")
    assert _sip(data, "list") == (0, "user   201 (Reception)\nuser   202\n"
                                     "trunk  itsp -> tcp:sip.example.test, account acct, registers\n")
    assert "password" not in _sip(data, "list")[1]

    status, out = _sip(data, "add-user", "201")
    assert status == 2 and "SIP user '201' already exists" in out
    status, out = _sip(data, "add-trunk", "bad", "h", "--register")
    assert status == 2 and "a trunk that registers needs a username" in out
    status, out = _sip(data, "add-user", "-x")
    assert status != 0
    assert _sip(data, "remove", "202") == (0, "removed SIP user 202\n")
    assert _sip(data, "remove", "itsp") == (0, "removed SIP trunk itsp\n")
    status, out = _sip(data, "remove", "itsp")
    assert status == 2 and "no SIP user or trunk named 'itsp'" in out
    assert _sip(data, "list") == (0, "user   201 (Reception)\n")


async def test_sighup_takes_lines_added_while_running(tmp_path: Path) -> None:
    b_data, a_data = tmp_path / "b", tmp_path / "a"
    b_data.mkdir()
    a_data.mkdir()
    assert _sip(b_data, "add-user", "trunk-a", "--password", "pw-a")[0] == 0
    with running_daemon(b_data) as b, running_daemon(a_data) as a:
        assert _sip(a_data, "add-trunk", "b", HOST, "--port", str(b.sip_port), "--username", "trunk-a",
                    "--password", "pw-a", "--register")[0] == 0
        a.proc.send_signal(signal.SIGHUP)
        reloaded = "lines reloaded: 1 SIP users, 1 trunks, 0 outbound routes"
        assert await async_wait_until(lambda: reloaded in a.stderr_text(), 5), a.stderr_text()
        assert await async_wait_until(lambda: "SIP user trunk-a registered" in b.stderr_text(), 10), (
            a.stderr_text() + b.stderr_text())
        assert _sip(a_data, "remove", "b")[0] == 0
        a.proc.send_signal(signal.SIGHUP)
        assert await async_wait_until(lambda: "SIP user trunk-a unregistered" in b.stderr_text(), 5), b.stderr_text()
        assert a.proc.poll() is None
