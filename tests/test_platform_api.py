"""The management API (StartScenarios), session URLs and session logs, against the real daemon.

One daemon runs the example voxfiles tree for the whole module, another one a small echo scenario
written to a temporary folder. Tests never rely on each other's sessions: each starts its own and
compares session ids relative to a session it started itself.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from daemon_helpers import (
    EXAMPLE_VOXFILES,
    Daemon,
    async_wait_until,
    client_session,
    create_api_key,
    http,
    read_text,
    run_appliance,
    running_daemon,
    start_scenarios,
)

CUSTOM_DATA_LIMIT = 2000
ERR_AUTH, ERR_PARAMETER, ERR_NOT_FOUND, ERR_METHOD = 100, 101, 102, 103

ECHO_SCENARIO = """\
// Echoes what AppEvents.HttpRequest carries.
let n = 0;
VoxEngine.addEventListener(AppEvents.HttpRequest, (e) => {
  n += 1;
  Logger.write(`echo ${n}: ${e.method} ${e.path}`);
  return JSON.stringify({ n, method: e.method, path: e.path, content: e.content, headers: e.headers });
});
"""


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    root = tmp_path_factory.mktemp("platform")
    # These tests fail authentication on purpose more often than a source may (10 a minute by default).
    config = root / "voxgate.toml"
    config.write_text("[api]\nauth_failures_per_minute = 1000.0\n")
    with running_daemon(root / "data", voxfiles=EXAMPLE_VOXFILES, extra_args=["--config", str(config)]) as d:
        yield d


@pytest.fixture(scope="module")
def key(daemon: Daemon) -> str:
    return create_api_key(daemon.data_dir)


@pytest.fixture(scope="module")
def echo_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    root = tmp_path_factory.mktemp("echo")
    tree = root / "voxfiles"
    (tree / "applications" / "echoapp").mkdir(parents=True)
    (tree / "scenarios" / "src").mkdir(parents=True)
    (tree / "applications" / "echoapp" / "application.config.json").write_text('{"applicationName": "echoapp"}')
    (tree / "applications" / "echoapp" / "rules.config.json").write_text(
        json.dumps([{"ruleName": "echo", "rulePattern": ".*", "scenarios": ["echo"]}])
    )
    (tree / "scenarios" / "src" / "echo.voxengine.js").write_text(ECHO_SCENARIO)
    with running_daemon(root / "data", voxfiles=tree) as d:
        yield d


@pytest.fixture(scope="module")
def echo_key(echo_daemon: Daemon) -> str:
    return create_api_key(echo_daemon.data_dir)


def _error_of(text: str) -> tuple[int, str]:
    body = json.loads(text)
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error, dict) and set(error) == {"code", "msg"}, body
    assert isinstance(error["code"], int) and isinstance(error["msg"], str) and error["msg"], body
    return int(error["code"]), str(error["msg"])


def _check_started(daemon: Daemon, body: dict[str, Any]) -> int:
    """The shape of a StartScenarios answer; the session id."""
    session_id = body["call_session_history_id"]
    assert isinstance(session_id, int) and session_id >= 1, body
    url = body["media_session_access_url"]
    assert isinstance(url, str), body
    assert re.fullmatch(rf"{re.escape(daemon.base_url)}/request/{session_id}/[0-9a-f]{{16,}}", url), body
    return session_id


def _log_files(daemon: Daemon) -> set[str]:
    folder = daemon.sessions_log_dir
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


async def _stop_session(url: str) -> None:
    async with client_session() as client:
        reply = await http(client, "POST", url, data="stop")
        assert reply.status == 200, reply.text
        assert json.loads(reply.text)["stopping"] is True
        assert await _gone(client, url), "the session URL still answers after stop"


async def _gone(client: aiohttp.ClientSession, url: str, timeout: float = 5.0) -> bool:
    """Poll `url` until it answers 404 (the session is gone); bounded. While it ends it says 503."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reply = await http(client, "GET", url)
        if reply.status == 404:
            return True
        assert reply.status == 503, f"unexpected answer {reply.status} {reply.text!r} while the session ends"
        await asyncio.sleep(0.05)
    return False


# API keys


async def test_apikey_create_prints_key_alone_on_last_line_and_it_works_at_once(daemon: Daemon) -> None:
    result = run_appliance(["apikey", "create", "--data-dir", str(daemon.data_dir)], cwd=daemon.data_dir.parent)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) >= 2, result.stdout
    created = lines[-1]
    assert re.fullmatch(r"[A-Za-z0-9_-]{40,}", created), f"not a key alone on the last line: {created!r}"
    assert created not in "\n".join(lines[:-1])
    async with client_session() as client:
        body = await start_scenarios(client, daemon, created, "hello", "fresh key")
        _check_started(daemon, body)
        # Another key is another key: both work, they differ.
        other = create_api_key(daemon.data_dir)
        assert other != created
        body = await start_scenarios(client, daemon, other, "hello")
        _check_started(daemon, body)


# StartScenarios


async def test_start_scenarios_post_form(daemon: Daemon, key: str) -> None:
    async with client_session() as client:
        reply = await http(
            client, "POST", f"{daemon.api_url}/StartScenarios",
            data={"account_id": "1", "api_key": key, "rule_name": "remote-control", "script_custom_data": "form"},
        )
        assert reply.status == 200, reply.text
        assert reply.content_type == "application/json"
        body = reply.json()
        assert body["result"] == 1
        assert body["media_session_access_secure_url"] == ""
        session_id = _check_started(daemon, body)
        answer = await http(client, "GET", body["media_session_access_url"])
        assert answer.status == 200
        assert json.loads(answer.text) == {"requests": 1, "customData": "form"}
    await _stop_session(body["media_session_access_url"])
    assert session_id >= 1


async def test_start_scenarios_get_cmd_and_bearer_variants(daemon: Daemon, key: str) -> None:
    base = {"account_id": "1", "api_key": key, "rule_name": "remote-control"}
    async with client_session() as client:
        first = _check_started(daemon, await start_scenarios(client, daemon, key, "remote-control", "first"))
        variants: list[tuple[str, str, dict[str, str] | None, dict[str, str] | None, dict[str, str] | None]] = [
            ("GET", "/StartScenarios", {**base, "script_custom_data": "get"}, None, None),
            ("POST", "", None, {**base, "cmd": "StartScenarios", "script_custom_data": "cmd-post"}, None),
            ("GET", "", {**base, "cmd": "StartScenarios", "script_custom_data": "cmd-get"}, None, None),
            ("POST", "/StartScenarios", None, {"rule_name": "remote-control", "script_custom_data": "bearer"},
             {"Authorization": f"Bearer {key}"}),
            ("GET", "", {"cmd": "StartScenarios", "rule_name": "remote-control", "script_custom_data": "bearer-get"},
             None, {"Authorization": f"Bearer {key}"}),
        ]
        expected_id = first
        urls = []
        for method, path, params, data, headers in variants:
            reply = await http(client, method, daemon.api_url + path, params=params, data=data, headers=headers)
            assert reply.status == 200, (method, path, reply.text)
            body = reply.json()
            assert body["result"] == 1, body
            expected_id += 1
            assert _check_started(daemon, body) == expected_id, (method, path, body)
            custom = (params or data or {})["script_custom_data"]
            answer = await http(client, "GET", body["media_session_access_url"])
            assert json.loads(answer.text) == {"requests": 1, "customData": custom}
            urls.append(body["media_session_access_url"])
    for url in urls:
        await _stop_session(url)


BAD_CREDENTIALS: list[tuple[str, str, str]] = [
    # id, how the request authenticates ("form" fields or "bearer"), and what it sends
    ("no-credentials", "none", ""),
    ("wrong-key", "form", "1:not-a-key"),
    ("wrong-key-bearer", "bearer", "not-a-key"),
    ("empty-bearer", "bearer", ""),
    ("wrong-account-id", "form", "2:KEY"),
    ("missing-account-id", "form", ":KEY"),
    ("non-numeric-account-id", "form", "one:KEY"),
]


@pytest.mark.parametrize(("how", "what"), [(h, w) for _, h, w in BAD_CREDENTIALS],
                         ids=[i for i, _, _ in BAD_CREDENTIALS])
@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_bad_credentials_401_and_no_session(daemon: Daemon, key: str, how: str, what: str, method: str) -> None:
    params = {"rule_name": "remote-control", "script_custom_data": "must not run"}
    headers: dict[str, str] = {}
    if how == "form":
        account_id, _, api_key = what.partition(":")
        if account_id:
            params["account_id"] = account_id
        params["api_key"] = key if api_key == "KEY" else api_key
    elif how == "bearer":
        headers["Authorization"] = f"Bearer {what}"
    async with client_session() as client:
        before = _check_started(daemon, await start_scenarios(client, daemon, key, "hello", "before"))
        assert await async_wait_until(lambda: daemon.session_log(before).exists(), 5.0)
        logs_before = _log_files(daemon)
        if method == "POST":
            reply = await http(client, "POST", f"{daemon.api_url}/StartScenarios", data=params, headers=headers)
        else:
            reply = await http(client, "GET", f"{daemon.api_url}/StartScenarios", params=params, headers=headers)
        assert reply.status == 401, reply.text
        assert reply.content_type == "application/json"
        code, _ = _error_of(reply.text)
        assert code == ERR_AUTH
        after = _check_started(daemon, await start_scenarios(client, daemon, key, "hello", "after"))
        assert after == before + 1, "a refused request started a session"
        assert await async_wait_until(lambda: daemon.session_log(after).exists(), 5.0)
        # Only the session started after the refusal has a new log (older sessions of other tests may
        # still be writing their first line: they have smaller ids).
        new = {n for n in _log_files(daemon) - logs_before if int(n.split(".")[0]) > before}
        assert new == {f"{after}.log"}, new


REQUEST_ERRORS: list[tuple[str, str, dict[str, str], int, int]] = [
    ("unknown-rule", "/StartScenarios", {"rule_name": "no-such-rule"}, 404, ERR_NOT_FOUND),
    ("unknown-rule-id", "/StartScenarios", {"rule_id": "999999"}, 404, ERR_NOT_FOUND),
    ("unknown-application", "/StartScenarios", {"rule_name": "hello", "application_name": "nope"}, 404,
     ERR_NOT_FOUND),
    ("missing-rule", "/StartScenarios", {"script_custom_data": "x"}, 400, ERR_PARAMETER),
    ("empty-rule", "/StartScenarios", {"rule_name": ""}, 400, ERR_PARAMETER),
    ("non-numeric-rule-id", "/StartScenarios", {"rule_id": "abc"}, 400, ERR_PARAMETER),
    ("custom-data-too-long", "/StartScenarios",
     {"rule_name": "remote-control", "script_custom_data": "x" * (CUSTOM_DATA_LIMIT + 1)}, 400, ERR_PARAMETER),
    ("unknown-method", "/NoSuchMethod", {"rule_name": "remote-control"}, 404, ERR_METHOD),
    ("unknown-cmd", "", {"cmd": "NoSuchMethod", "rule_name": "remote-control"}, 404, ERR_METHOD),
    ("no-method", "", {"rule_name": "remote-control"}, 400, ERR_PARAMETER),
]


@pytest.mark.parametrize(("path", "params", "status", "code"), [e[1:] for e in REQUEST_ERRORS],
                         ids=[e[0] for e in REQUEST_ERRORS])
async def test_request_errors(
    daemon: Daemon, key: str, path: str, params: dict[str, str], status: int, code: int
) -> None:
    async with client_session() as client:
        before = _check_started(daemon, await start_scenarios(client, daemon, key, "hello"))
        reply = await http(
            client, "POST", daemon.api_url + path, data={"account_id": "1", "api_key": key, **params}
        )
        assert reply.status == status, reply.text
        assert reply.content_type == "application/json", reply.text
        assert _error_of(reply.text)[0] == code
        after = _check_started(daemon, await start_scenarios(client, daemon, key, "hello"))
        assert after == before + 1, "a refused request started a session"


async def test_custom_data_at_the_limit_round_trips(daemon: Daemon, key: str) -> None:
    custom = ("é&=+ %/?ß" * 300)[:CUSTOM_DATA_LIMIT]
    assert len(custom) == CUSTOM_DATA_LIMIT
    async with client_session() as client:
        body = await start_scenarios(client, daemon, key, "remote-control", custom)
        url = body["media_session_access_url"]
        reply = await http(client, "GET", url)
        assert reply.status == 200
        assert json.loads(reply.text) == {"requests": 1, "customData": custom}
    await _stop_session(url)


# Session URLs


async def test_session_url_requests_count_and_carry_custom_data(daemon: Daemon, key: str) -> None:
    custom = '{"caller": "+15551234567", "note": "a & b = c"}'
    async with client_session() as client:
        body = await start_scenarios(client, daemon, key, "remote-control", custom)
        session_id = _check_started(daemon, body)
        url = body["media_session_access_url"]
        calls: list[tuple[str, str, str | None]] = [
            ("GET", "", None),
            ("POST", "", "hello"),
            ("PUT", "/extra/path", "put body"),
            ("DELETE", "/x", None),
            ("PATCH", "/deep/er/path?q=1&r=two", "patch"),
            ("POST", "?a=b", "query only"),
            ("OPTIONS", "", None),
        ]
        for count, (method, suffix, content) in enumerate(calls, start=1):
            reply = await http(client, method, url + suffix, data=content)
            assert reply.status == 200, (method, suffix, reply.status, reply.text)
            assert json.loads(reply.text) == {"requests": count, "customData": custom}, (method, suffix)

        stopped = await http(client, "POST", url, data="stop")
        assert stopped.status == 200
        assert json.loads(stopped.text) == {"requests": len(calls) + 1, "stopping": True}
        assert await _gone(client, url), "the session URL still answers after stop"
        # Gone for good, whatever the method and path.
        assert (await http(client, "POST", url + "/extra", data="again")).status == 404

    log_path = daemon.session_log(session_id)
    assert await async_wait_until(lambda: "session ended" in read_text(log_path), 5.0)
    text = read_text(log_path)
    assert f"remote-control session {session_id} listening at {url}" in text
    path = url.removeprefix(daemon.base_url)
    assert f"POST {path}: hello" in text
    assert f"PUT {path}/extra/path: put body" in text
    assert f"PATCH {path}/deep/er/path?q=1&r=two: patch" in text
    assert f"POST {path}: stop" in text
    assert "session ended: Normal termination" in text
    assert "Terminated administratively" not in text


async def test_sessions_are_separate(daemon: Daemon, key: str) -> None:
    async with client_session() as client:
        one = await start_scenarios(client, daemon, key, "remote-control", "one")
        two = await start_scenarios(client, daemon, key, "remote-control", "two")
        url1, url2 = one["media_session_access_url"], two["media_session_access_url"]
        assert url1 != url2
        for _ in range(3):
            await http(client, "GET", url1)
        reply = await http(client, "GET", url2)
        assert json.loads(reply.text) == {"requests": 1, "customData": "two"}
        reply = await http(client, "GET", url1)
        assert json.loads(reply.text) == {"requests": 4, "customData": "one"}
    await _stop_session(url1)
    async with client_session() as client:
        reply = await http(client, "GET", url2)
        assert json.loads(reply.text) == {"requests": 2, "customData": "two"}
    await _stop_session(url2)


async def test_wrong_secret_or_session_id_is_404_and_reaches_no_scenario(daemon: Daemon, key: str) -> None:
    async with client_session() as client:
        body = await start_scenarios(client, daemon, key, "remote-control", "secret")
        session_id = _check_started(daemon, body)
        url = body["media_session_access_url"]
        secret = url.rsplit("/", 1)[1]
        flipped = ("0" if secret[0] != "0" else "1") + secret[1:]
        wrong = [
            f"{daemon.base_url}/request/{session_id}/{flipped}",
            f"{daemon.base_url}/request/{session_id}/{flipped}/suffix",
            f"{daemon.base_url}/request/{session_id}/{secret[:-1]}",
            f"{daemon.base_url}/request/{session_id}/{secret}0",
            f"{daemon.base_url}/request/{session_id}/{secret.upper()}",
            f"{daemon.base_url}/request/{session_id}/not-hex",
            f"{daemon.base_url}/request/{session_id + 1000}/{secret}",
            f"{daemon.base_url}/request/{session_id}",
        ]
        for bad in wrong:
            for method in ("GET", "POST"):
                reply = await http(client, method, bad, data="stop" if method == "POST" else None)
                assert reply.status == 404, (method, bad, reply.status, reply.text)
        # None of them reached the scenario: it counts its first request now, and still runs.
        reply = await http(client, "GET", url)
        assert reply.status == 200
        assert json.loads(reply.text) == {"requests": 1, "customData": "secret"}
    await _stop_session(url)


async def test_x_headers_method_path_and_content_reach_the_scenario(echo_daemon: Daemon, echo_key: str) -> None:
    async with client_session() as client:
        body = await start_scenarios(client, echo_daemon, echo_key, "echo")
        session_id = _check_started(echo_daemon, body)
        url = body["media_session_access_url"]
        path = url.removeprefix(echo_daemon.base_url)
        headers = {"X-Custom-Header": "value one", "X-Trace-Id": "abc-123", "Accept-Language": "fr"}
        cases = [("GET", "", None), ("POST", "/sub/path?x=1", "payload é"), ("PUT", "/p", '{"a": 1}'),
                 ("DELETE", "", None), ("PATCH", "?only=query", "p")]
        for n, (method, suffix, content) in enumerate(cases, start=1):
            reply = await http(client, method, url + suffix, data=content, headers=headers)
            assert reply.status == 200, reply.text
            echo = json.loads(reply.text)
            assert echo["n"] == n
            assert echo["method"] == method
            assert echo["path"] == path + suffix
            assert echo["content"] == (content or "")
            got = {h["key"].lower(): h["value"] for h in echo["headers"]}
            assert got.get("x-custom-header") == "value one", echo["headers"]
            assert got.get("x-trace-id") == "abc-123", echo["headers"]
            assert all(set(h) == {"key", "value"} for h in echo["headers"]), echo["headers"]
        # Without X- headers the scenario gets none of them.
        reply = await http(client, "GET", url, headers={"Accept-Language": "fr"})
        echo = json.loads(reply.text)
        assert not [h for h in echo["headers"] if h["key"].lower().startswith("x-custom")], echo
    log_path = echo_daemon.session_log(session_id)
    text = read_text(log_path)
    assert f"echo 2: POST {path}/sub/path?x=1" in text


# Session logs


async def test_session_log_has_the_scenario_logger_lines(daemon: Daemon, key: str) -> None:
    marker = "log-check 42 ünïcode"
    async with client_session() as client:
        body = await start_scenarios(client, daemon, key, "hello", marker)
    session_id = _check_started(daemon, body)
    log_path: Path = daemon.session_log(session_id)

    def ended() -> bool:
        return "session ended" in read_text(log_path)

    assert await async_wait_until(ended, 5.0), f"no finished log at {log_path}"
    lines = read_text(log_path).splitlines()
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} "
    assert any(re.fullmatch(stamp + re.escape(f"Hello from session {session_id}, custom data: {marker}"), line)
               for line in lines), lines
    assert re.fullmatch(stamp + "engine: session ended: Normal termination", lines[-1]), lines
