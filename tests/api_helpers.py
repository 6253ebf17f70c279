"""Shared helpers of the management API tests (tests/test_api_*.py): a daemon with rate limits the tests
never reach, a small synchronous client of /platform_api, unique object names, and scenarios.

Every test names its own objects with `unique()`, so tests sharing a module's daemon never depend on
each other or on their order.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from daemon_helpers import Daemon, create_api_key, free_port, running_daemon, wait_until
from sip_helpers import running, sipp_in_background, stop_pid

from tools.voxpush.api import form

# Error codes of {"error": {"code", "msg"}} (appliance/web/api.py).
ERR_AUTH, ERR_PARAMETER, ERR_NOT_FOUND, ERR_METHOD, ERR_EXISTS = 100, 101, 102, 103, 104
ERR_SCRIPT, ERR_TOO_LARGE, ERR_UNSUPPORTED = 105, 106, 107

# Far above anything these tests send: the rate limits have their own tests.
GENEROUS_LIMITS = """\
[api]
rate_per_key = 100000.0
burst_per_key = 100000.0
rate_per_source = 100000.0
burst_per_source = 100000.0
auth_failures_per_minute = 100000.0
"""

DATE_RE = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"

_counter = itertools.count(1)


def unique(prefix: str) -> str:
    """A name no other test of this run uses (letters, digits and '-' only: valid for every kind of object)."""
    return f"{prefix}-{os.getpid()}-{next(_counter)}"


def api_date(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(timestamp))


@contextlib.contextmanager
def api_daemon(root: Path, extra_config: str = "") -> Iterator[Daemon]:
    """A daemon (no voxfiles: every object comes through the API) whose rate limits tests never reach."""
    config = root / "voxgate.toml"
    config.write_text(GENEROUS_LIMITS + extra_config)
    with running_daemon(root / "data", extra_args=["--config", str(config)]) as daemon:
        yield daemon


@dataclass
class Answer:
    status: int
    body: Any
    text: str

    @property
    def error(self) -> tuple[int, str]:
        """(code, msg) of an error answer, checking its shape."""
        assert isinstance(self.body, dict) and set(self.body) == {"error"}, self.text
        error = self.body["error"]
        assert isinstance(error, dict) and set(error) == {"code", "msg"}, self.text
        assert isinstance(error["code"], int) and isinstance(error["msg"], str) and error["msg"], self.text
        return int(error["code"]), str(error["msg"])


class Api:
    """/platform_api as a test calls it: `POST /platform_api/<Method>` with account_id and api_key."""

    def __init__(self, daemon: Daemon, key: str | None = None) -> None:
        self.daemon = daemon
        self.key = key if key is not None else create_api_key(daemon.data_dir)
        self.http = httpx.Client(timeout=30)

    def close(self) -> None:
        self.http.close()

    def raw(self, method: str, path: str = "", *, params: dict[str, str] | None = None,
            data: dict[str, str] | str | bytes | None = None, headers: dict[str, str] | None = None) -> Answer:
        url = self.daemon.api_url + path
        if isinstance(data, dict):
            reply = self.http.request(method, url, params=params, data=data, headers=headers)
        else:
            reply = self.http.request(method, url, params=params, content=data, headers=headers)
        try:
            body = reply.json()
        except ValueError:
            body = None
        return Answer(reply.status_code, body, reply.text)

    def call(self, cmd: str, **params: object) -> Answer:
        """The method with these parameters (None: left out; bool: true/false; lists: ';'-joined)."""
        return self.raw("POST", f"/{cmd}", data={"account_id": "1", "api_key": self.key, **form(params)})

    def ok(self, cmd: str, **params: object) -> dict[str, Any]:
        """A successful call's answer."""
        answer = self.call(cmd, **params)
        assert answer.status == 200, (cmd, params, answer.status, answer.text)
        assert isinstance(answer.body, dict) and "error" not in answer.body, answer.text
        assert "result" in answer.body, answer.text
        return answer.body

    def fails(self, cmd: str, status: int, code: int, **params: object) -> str:
        """A refused call (HTTP status and error code as given); its message."""
        answer = self.call(cmd, **params)
        assert answer.status == status, (cmd, params, answer.status, answer.text)
        got, msg = answer.error
        assert got == code, (cmd, params, answer.text)
        return msg

    # Objects, each with a fresh name.

    def application(self, prefix: str = "app") -> tuple[int, str]:
        name = unique(prefix)
        body = self.ok("AddApplication", application_name=name)
        return int(body["application_id"]), name

    def scenario(self, script: str, prefix: str = "scn", **params: object) -> tuple[int, str]:
        name = unique(prefix)
        body = self.ok("AddScenario", scenario_name=name, scenario_script=script, **params)
        return int(body["scenario_id"]), name

    def rule(self, app_id: int, pattern: str = ".*", prefix: str = "rule", **params: object) -> tuple[int, str]:
        name = unique(prefix)
        body = self.ok("AddRule", application_id=app_id, rule_name=name, rule_pattern=pattern, **params)
        return int(body["rule_id"]), name

    def start(self, rule_id: int, custom_data: str = "") -> tuple[int, str]:
        """StartScenarios: (session id, access URL)."""
        body = self.ok("StartScenarios", rule_id=rule_id, script_custom_data=custom_data)
        return int(body["call_session_history_id"]), str(body["media_session_access_url"])

    def history(self, session_id: int, **params: object) -> dict[str, Any]:
        """The call history entry of one session (of the last day)."""
        now = time.time()
        body = self.ok("GetCallHistory", from_date=api_date(now - 86400), to_date=api_date(now + 60),
                       call_session_history_id=session_id, **params)
        assert body["total_count"] == 1, body
        entry = body["result"][0]
        assert isinstance(entry, dict)
        return entry

    def wait_ended(self, session_id: int, timeout: float = 10.0) -> dict[str, Any]:
        """The session's history entry once it has ended (bounded wait)."""
        entry: dict[str, Any] = {}

        def ended() -> bool:
            nonlocal entry
            entry = self.history(session_id, with_calls=True, with_records=True)
            return entry["duration"] is not None

        assert wait_until(ended, timeout), f"session {session_id} did not end within {timeout} s: {entry}"
        return entry


def get_url(url: str, timeout: float = 10.0, **kwargs: Any) -> httpx.Response:
    with httpx.Client(timeout=timeout) as client:
        return client.get(url, **kwargs)


def post_url(url: str, content: str = "", timeout: float = 10.0) -> httpx.Response:
    with httpx.Client(timeout=timeout) as client:
        return client.post(url, content=content)


def ask_session(url: str, content: str = "") -> Any:
    """What a session's HttpRequest handler answers (JSON)."""
    reply = post_url(url, content)
    assert reply.status_code == 200, (url, reply.status_code, reply.text)
    return json.loads(reply.text)


# Scenarios

# Answers every HttpRequest with `VALUE` (JSON) and ends on "stop".
REPLY_SCENARIO = """\
VoxEngine.addEventListener(AppEvents.HttpRequest, (e) => {
  if (e.content === "stop") { VoxEngine.terminate(); return JSON.stringify({stopping: true}); }
  return JSON.stringify(VALUE);
});
"""


def reply_scenario(value: object) -> str:
    return REPLY_SCENARIO.replace("VALUE", json.dumps(value))


# Appends its tag to a global array shared by the session's scenarios; the HttpRequest handler (defined
# by whichever scenario runs first: the others see it is there) answers with the array.
def order_scenario(tag: str) -> str:
    return f"""\
globalThis.order = globalThis.order || [];
globalThis.order.push({json.dumps(tag)});
if (!globalThis.orderHandler) {{
  globalThis.orderHandler = true;
  VoxEngine.addEventListener(AppEvents.HttpRequest, (e) => {{
    if (e.content === "stop") {{ VoxEngine.terminate(); return "{{}}"; }}
    return JSON.stringify(globalThis.order);
  }});
}}
"""


# A StartScenarios session that calls the conference `room` (a rule of the same application matching
# `room` runs the room's session), keeps the call HOLD_MS, optionally recording it, then hangs up and ends.
def caller_scenario(room: str, *, record: bool = False, hold_ms: int = 1000, caller: str = "5551234") -> str:
    return f"""\
VoxEngine.addEventListener(AppEvents.Started, (e) => {{
  const call = VoxEngine.callConference({json.dumps(room)}, {json.dumps(caller)}, "Tester");
  call.addEventListener(CallEvents.Connected, () => {{
    Logger.write("caller: connected");
    {"call.record();" if record else ""}
    setTimeout(() => call.hangup(), {hold_ms});
  }});
  call.addEventListener(CallEvents.Failed, (f) => {{
    Logger.write("caller: failed " + f.code);
    VoxEngine.terminate();
  }});
  call.addEventListener(CallEvents.Disconnected, () => {{
    Logger.write("caller: disconnected");
    setTimeout(() => VoxEngine.terminate(), 200);
  }});
}});
"""


# The conference room: answers each call into a conference, logs TAG, ends when its call leaves.
def room_scenario(tag: str = "room") -> str:
    return f"""\
require(Modules.Conference);
VoxEngine.addEventListener(AppEvents.CallAlerting, (e) => {{
  Logger.write("room " + {json.dumps(tag)} + ": call from " + e.callerid + " to " + e.destination);
  const conference = VoxEngine.createConference();
  e.call.addEventListener(CallEvents.Connected, () => VoxEngine.sendMediaBetween(e.call, conference));
  e.call.addEventListener(CallEvents.Disconnected, () => VoxEngine.terminate());
  e.call.answer();
}});
"""


# A registrar: 200 to every REGISTER or OPTIONS, whatever its order (each is a new sipp "call").
REGISTRAR_XML = """\
<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="registrar answering 200">
  <recv request="REGISTER|OPTIONS" regexp_match="true"/>
  <send>
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      [last_Contact:];expires=300
      Expires: 300
      Content-Length: 0

    ]]>
  </send>
</scenario>
"""


@contextlib.contextmanager
def registrar(work: Path) -> Iterator[int]:
    """sipp answering 200 to REGISTER and OPTIONS on 127.0.0.1: its port."""
    scenario = work / "registrar.xml"
    scenario.write_text(REGISTRAR_XML)
    port = free_port()
    pid = sipp_in_background("-sf", str(scenario), "-p", str(port), cwd=work)
    try:
        yield port
    finally:
        stop_pid(pid)
        assert wait_until(lambda: not running(pid), 10), "sipp did not stop"
