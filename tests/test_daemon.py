"""`appliance run` as a process: systemd notifications, start-up failures, persistence, shutdown."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from daemon_helpers import (
    EXAMPLE_VOXFILES,
    HOST,
    client_session,
    create_api_key,
    db_rows,
    free_port,
    http,
    read_text,
    run_appliance,
    running_daemon,
    start_scenarios,
    wait_until,
)

# sd_notify


def _receive_until(sock: socket.socket, done: Callable[[list[str]], bool], timeout: float) -> list[str]:
    """Datagrams received until `done(messages)` is true or `timeout` passed."""
    messages: list[str] = []
    deadline = time.monotonic() + timeout
    while not done(messages):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        sock.settimeout(min(left, 0.2))
        try:
            messages.append(sock.recv(4096).decode("utf-8", errors="replace"))
        except TimeoutError:
            continue
    return messages


def _fields(message: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in message.splitlines() if "=" in line)


def test_sd_notify_ready_watchdog_and_stopping(tmp_path: Path) -> None:
    sock_path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        if len(sock_path) < 100:
            sock.bind(sock_path)
        else:  # a very long tmp_path: an AF_UNIX path is limited to 107 bytes, use the abstract namespace
            name = f"voxgate-test-{os.getpid()}-{time.monotonic_ns()}"
            sock.bind("\0" + name)
            sock_path = "@" + name
        env = {"NOTIFY_SOCKET": sock_path, "WATCHDOG_USEC": "200000"}  # no WATCHDOG_PID
        with running_daemon(tmp_path / "data", env=env, wait_ready=False) as daemon:
            got = _receive_until(sock, lambda ms: any(_fields(m).get("READY") == "1" for m in ms), 15.0)
            assert got, f"no notification at all:\n{daemon.stderr_text()}"
            ready = [m for m in got if _fields(m).get("READY") == "1"]
            assert ready, f"no READY=1 in {got!r}:\n{daemon.stderr_text()}"
            fields = _fields(ready[0])
            assert fields["READY"] == "1"
            assert fields.get("STATUS"), f"READY=1 came without a STATUS=: {ready[0]!r}"
            assert f"{HOST}:{daemon.port}" in fields["STATUS"]
            after_ready = got[got.index(ready[0]) + 1:]

            started = time.monotonic()
            more = _receive_until(
                sock, lambda ms: sum(_fields(m).get("WATCHDOG") == "1" for m in after_ready + ms) >= 3, 2.0
            )
            pings = [m for m in after_ready + more if _fields(m).get("WATCHDOG") == "1"]
            assert len(pings) >= 2, f"expected WATCHDOG=1 pings every 0.1 s, got {after_ready + more!r}"
            assert time.monotonic() - started < 2.5

            daemon.proc.send_signal(signal.SIGTERM)
            tail = _receive_until(sock, lambda ms: any(_fields(m).get("STOPPING") == "1" for m in ms), 5.0)
            assert any(_fields(m).get("STOPPING") == "1" for m in tail), f"no STOPPING=1 in {tail!r}"
            assert wait_until(lambda: daemon.proc.poll() is not None, 5.0), "the daemon did not exit after SIGTERM"
            assert daemon.stop() == 0, daemon.stderr_text()
            assert "Traceback" not in daemon.stderr_text()


def test_no_notify_socket_no_problem(tmp_path: Path) -> None:
    """Outside systemd (no NOTIFY_SOCKET) the daemon runs and stops cleanly just the same."""
    with running_daemon(tmp_path / "data", env={"WATCHDOG_USEC": "200000"}) as daemon:
        time.sleep(0.3)
        assert daemon.proc.poll() is None
        assert daemon.stop() == 0, daemon.stderr_text()


# Start-up failures


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _tree_with_read_problems(root: Path) -> list[tuple[str, str]]:
    """A voxfiles folder with a problem in several files; (file, what the message says) per problem."""
    _write(root / "applications/good/application.config.json", '{"applicationName": "good"}')
    _write(root / "applications/good/rules.config.json",
           json.dumps([{"ruleName": "ok", "rulePattern": ".*", "scenarios": ["fine"]}]))
    _write(root / "applications/broken/application.config.json", '{"applicationName": ')
    _write(root / "applications/rules/application.config.json", '{"applicationName": "rules"}')
    _write(root / "applications/rules/rules.config.json", json.dumps([
        {"ruleName": "bad-pattern", "rulePattern": "(", "scenarios": ["fine"]},
        {"ruleName": "missing-scenario", "rulePattern": ".*", "scenarios": ["nowhere"]},
    ]))
    _write(root / "applications/yaml/application.config.json", '{"applicationName": "yaml"}')
    _write(root / "applications/yaml/rules.config.yml", "rules: [unclosed\n")
    _write(root / "applications/noname/application.config.json", '{"name": "x"}')
    _write(root / "scenarios/src/fine.voxengine.js", "Logger.write('fine');\n")
    return [
        ("applications/broken/application.config.json", "invalid JSON"),
        ("applications/rules/rules.config.json", "invalid rule pattern"),
        ("applications/rules/rules.config.json", "'nowhere' not found"),
        ("applications/yaml/rules.config.yml", "cannot parse"),
        ("applications/noname/application.config.json", "applicationName"),
    ]


def _tree_with_store_problems(root: Path) -> list[tuple[str, str]]:
    """Problems only found when checking scripts and names: syntax error, bad and duplicate app names."""
    _write(root / "applications/a/application.config.json", '{"applicationName": "demo"}')
    _write(root / "applications/a/rules.config.json",
           json.dumps([{"ruleName": "r", "rulePattern": ".*", "scenarios": ["broken", "fine"]}]))
    _write(root / "applications/b/application.config.json", '{"applicationName": "bad name!"}')
    _write(root / "applications/c/application.config.json", '{"applicationName": "demo"}')
    _write(root / "scenarios/src/fine.voxengine.js", "Logger.write('fine');\n")
    _write(root / "scenarios/src/broken.voxengine.js", "// line 1\nlet x = ;\n")
    return [
        ("scenarios/src/broken.voxengine.js:2", "SyntaxError"),
        ("applications/b/application.config.json", "invalid application name"),
        ("applications/c/application.config.json", "'demo'"),
    ]


@pytest.mark.parametrize("make_tree", [_tree_with_read_problems, _tree_with_store_problems],
                         ids=["read-problems", "check-problems"])
def test_malformed_voxfiles_exit_2_listing_every_problem(
    tmp_path: Path, make_tree: Callable[[Path], list[tuple[str, str]]]
) -> None:
    tree = tmp_path / "voxfiles"
    expected: list[tuple[str, str]] = make_tree(tree)
    data_dir = tmp_path / "data"
    result = run_appliance(
        ["run", "--sim", "--data-dir", str(data_dir), "--voxfiles", str(tree), "--http", f"{HOST}:{free_port()}"],
        cwd=tmp_path, timeout=30,
    )
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.splitlines()
    assert f"{len(expected)} problem(s)" in result.stderr, result.stderr
    for path, what in expected:
        assert any(path in line and what in line for line in lines), f"{path}: {what!r} not reported:\n{result.stderr}"
    assert "Traceback" not in result.stderr
    assert "VoxGate ready" not in result.stderr
    # Nothing of the folder reached the store.
    db = data_dir / "voxgate.db"
    assert db.exists()
    assert db_rows(db, "SELECT name FROM applications") == []
    assert db_rows(db, "SELECT name FROM scenarios") == []
    assert db_rows(db, "SELECT name FROM rules") == []


def test_voxfiles_folder_without_applications_exits_2(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = run_appliance(
        ["run", "--sim", "--data-dir", str(tmp_path / "data"), "--voxfiles", str(tmp_path / "empty"),
         "--http", f"{HOST}:{free_port()}"],
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    assert "applications: missing" in result.stderr


@pytest.mark.parametrize(
    ("toml", "named"),
    [
        ('[http]\nlisten = "127.0.0.1:PORT"\nlisen_typo = "x"\n', "'lisen_typo'"),
        ('[engine]\nworkerz = 2\n', "'workerz'"),
        ('[htpp]\nlisten = "127.0.0.1:PORT"\n', "[htpp]"),
    ],
    ids=["key-in-http", "key-in-engine", "section"],
)
def test_config_unknown_key_exits_2_naming_it(tmp_path: Path, toml: str, named: str) -> None:
    config = tmp_path / "voxgate.toml"
    config.write_text(toml.replace("PORT", str(free_port())), encoding="utf-8")
    result = run_appliance(
        ["run", "--sim", "--data-dir", str(tmp_path / "data"), "--config", str(config)], cwd=tmp_path
    )
    assert result.returncode == 2, result.stderr
    assert named in result.stderr, result.stderr
    assert "unknown" in result.stderr
    assert str(config) in result.stderr
    assert "Traceback" not in result.stderr


def test_config_file_is_used(tmp_path: Path) -> None:
    """A valid config file is read: the daemon listens where [http].listen says."""
    port = free_port()
    config = tmp_path / "voxgate.toml"
    config.write_text(f'[http]\nlisten = "{HOST}:{port}"\n[engine]\nworkers = 1\n', encoding="utf-8")
    with running_daemon(tmp_path / "data", extra_args=["--config", str(config)], port=port, http_flag=False) as daemon:
        assert f"HTTP on {HOST}:{port}" in daemon.stderr_text()
        assert daemon.stop() == 0


def test_port_in_use_exits_non_zero_with_cannot_listen(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind((HOST, 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_appliance(
            ["run", "--sim", "--data-dir", str(tmp_path / "data"), "--http", f"{HOST}:{port}"], cwd=tmp_path
        )
    assert result.returncode != 0
    assert "cannot listen" in result.stderr, result.stderr
    assert f"{HOST}:{port}" in result.stderr
    assert "Traceback" not in result.stderr
    assert "VoxGate ready" not in result.stderr


# Persistence


async def test_store_created_and_rules_survive_a_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with running_daemon(data_dir, voxfiles=EXAMPLE_VOXFILES) as daemon:
        assert daemon.db_path.is_file()
        key = create_api_key(data_dir)
        async with client_session() as client:
            first = await start_scenarios(client, daemon, key, "hello", "first run")
        assert daemon.stop() == 0, daemon.stderr_text()
    rules = db_rows(data_dir / "voxgate.db", "SELECT name FROM rules ORDER BY position")
    assert rules == [("remote-control",), ("ivr",), ("forward",), ("conference",), ("conference-room",),
                     ("voicemail",), ("ringgroup",), ("hello",)]

    # Same data dir, no --voxfiles: the rules, the key and the history are still there.
    with running_daemon(data_dir) as daemon:
        async with client_session() as client:
            body = await start_scenarios(client, daemon, key, "remote-control", "second run")
            assert body["call_session_history_id"] == first["call_session_history_id"] + 1
            url = body["media_session_access_url"]
            assert url.startswith(f"{daemon.base_url}/request/")
            reply = await http(client, "GET", url)
            assert reply.status == 200
            assert json.loads(reply.text) == {"requests": 1, "customData": "second run"}
            hello = await start_scenarios(client, daemon, key, "hello", "again")
            assert hello["call_session_history_id"] == first["call_session_history_id"] + 2
        assert daemon.stop() == 0, daemon.stderr_text()
    history = db_rows(data_dir / "voxgate.db", "SELECT id, rule_name, custom_data FROM call_sessions ORDER BY id")
    first_id = first["call_session_history_id"]
    assert history == [
        (first_id, "hello", "first run"),
        (first_id + 1, "remote-control", "second run"),
        (first_id + 2, "hello", "again"),
    ]


# Shutdown


async def test_sigterm_ends_running_sessions_and_exits_0(tmp_path: Path) -> None:
    with running_daemon(tmp_path / "data", voxfiles=EXAMPLE_VOXFILES) as daemon:
        key = create_api_key(daemon.data_dir)
        async with client_session() as client:
            body = await start_scenarios(client, daemon, key, "remote-control", "shutdown")
            reply = await http(client, "POST", body["media_session_access_url"], data="still here")
            assert json.loads(reply.text) == {"requests": 1, "customData": "shutdown"}
        session_id = body["call_session_history_id"]
        log_path = daemon.session_log(session_id)
        assert "session ended" not in read_text(log_path)

        started = time.monotonic()
        assert daemon.stop() == 0, daemon.stderr_text()
        assert time.monotonic() - started < 10
        stderr = daemon.stderr_text()
        assert "stopping" in stderr
        assert "Traceback" not in stderr

    text = read_text(log_path)
    assert "POST " in text and ": still here" in text
    assert text.splitlines()[-1].endswith("engine: session ended: Terminated administratively"), text
    rows = db_rows(tmp_path / "data" / "voxgate.db",
                   "SELECT end_date IS NOT NULL, finish_reason FROM call_sessions WHERE id = ?", (session_id,))
    assert rows == [(1, "Terminated administratively")]
