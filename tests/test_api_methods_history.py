"""Management API, what happened: GetCallHistory (filters, order, paging, with_calls, with_records),
DeleteRecord, the session log behind log_file_url (after the session and, with ?follow=1, while it
runs) and GetSessionLog, against the real daemon.

The calls are ones the box completes on its own: a session started by StartScenarios calls
VoxEngine.callConference(ROOM), a rule of the same application matching ROOM answers it in a
conference, and the caller hangs up after a while (recording the call when asked).

One daemon serves this module; every test makes its own application and filters the history by it.
"""

from __future__ import annotations

import calendar
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from api_helpers import (
    DATE_RE,
    ERR_NOT_FOUND,
    ERR_PARAMETER,
    Api,
    api_daemon,
    api_date,
    ask_session,
    caller_scenario,
    get_url,
    post_url,
    room_scenario,
    unique,
)
from daemon_helpers import Daemon, wait_until

MISSING_ID = 987654

HELLO = """\
VoxEngine.addEventListener(AppEvents.Started, (e) => {
  Logger.write("hello " + VoxEngine.customData());
  VoxEngine.terminate();
});
"""

# Logs what each HttpRequest carries; "stop" ends the session.
LOGGER = """\
VoxEngine.addEventListener(AppEvents.Started, () => Logger.write("logger started"));
VoxEngine.addEventListener(AppEvents.HttpRequest, (e) => {
  Logger.write("got " + e.content);
  if (e.content === "stop") VoxEngine.terminate();
  return JSON.stringify("ok");
});
"""


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    with api_daemon(tmp_path_factory.mktemp("api-history")) as d:
        yield d


@pytest.fixture(scope="module")
def api(daemon: Daemon) -> Iterator[Api]:
    client = Api(daemon)
    yield client
    client.close()


def unix(date: str) -> float:
    return float(calendar.timegm(time.strptime(date, "%Y-%m-%d %H:%M:%S")))


def window(seconds: float = 600) -> dict[str, str]:
    now = time.time()
    return {"from_date": api_date(now - seconds), "to_date": api_date(now + 60)}


def history(api: Api, **params: object) -> dict[str, Any]:
    return api.ok("GetCallHistory", **{**window(), **params})


def session_ids(api: Api, **params: object) -> list[int]:
    return [s["call_session_history_id"] for s in history(api, **params)["result"]]


def calling_app(api: Api, *, record: bool = False, hold_ms: int = 1000) -> tuple[int, int, str, str]:
    """An application where the rule it returns calls a conference room: (app id, rule id, rule name, room)."""
    app_id, _ = api.application("calls")
    room = unique("room")
    caller, _ = api.scenario(caller_scenario(room, record=record, hold_ms=hold_ms))
    answering, _ = api.scenario(room_scenario())
    api.rule(app_id, room, scenario_id=answering, prefix="room-rule")
    rule_id, rule_name = api.rule(app_id, "^never-dialled$", scenario_id=caller, prefix="caller")
    return app_id, rule_id, rule_name, room


# GetCallHistory


def test_a_call_in_the_history_with_its_legs(api: Api) -> None:
    app_id, rule_id, rule_name, room = calling_app(api)
    started = time.time()
    session_id, _ = api.start(rule_id, "my data")
    entry = api.wait_ended(session_id)
    assert {k: entry[k] for k in ("call_session_history_id", "account_id", "application_id", "rule_name",
                                  "initiator_address", "custom_data", "finish_reason")} == {
        "call_session_history_id": session_id, "account_id": 1, "application_id": app_id, "rule_name": rule_name,
        "initiator_address": "StartScenarios from 127.0.0.1", "custom_data": "my data",
        "finish_reason": "Normal termination"}
    assert re.fullmatch(DATE_RE, entry["start_date"]) and abs(unix(entry["start_date"]) - started) < 5
    assert 1 <= entry["duration"] <= 5
    assert entry["log_file_url"].startswith(f"{api.daemon.base_url}/logs/session/{session_id}/")

    plain = api.history(session_id)
    assert "calls" not in plain and "records" not in plain
    [call] = entry["calls"]
    assert {k: call[k] for k in ("incoming", "successful", "local_number", "remote_number")} == {
        "incoming": False, "successful": True, "local_number": "5551234", "remote_number": room}
    assert call["end_reason"]["code"] == 200 and call["end_reason"]["description"]
    assert 1 <= call["duration"] <= 5 and re.fullmatch(DATE_RE, call["start_time"])
    assert call["call_id"] and entry["records"] == []

    # The room's own session: the same call, incoming.
    others = [s for s in history(api, application_id=app_id, with_calls=True)["result"]
              if s["call_session_history_id"] != session_id]
    assert [s["initiator_address"] for s in others] == [f"conference {room}"]
    [incoming] = others[0]["calls"]
    assert (incoming["incoming"], incoming["remote_number"], incoming["local_number"]) == (True, "5551234", room)


def test_a_recorded_call_and_delete_record(api: Api) -> None:
    _, rule_id, _, _ = calling_app(api, record=True)
    first, _ = api.start(rule_id, "first")
    second, _ = api.start(rule_id, "second")
    records = []
    for session_id in (first, second):
        entry = api.wait_ended(session_id)
        [record] = entry["records"]
        assert record["call_id"] == entry["calls"][0]["call_id"]
        assert record["file_size"] > 0 and 1 <= record["duration"] <= 5
        assert re.fullmatch(DATE_RE, record["start_time"]) and record["record_name"]
        reply = get_url(record["record_url"])
        assert reply.status_code == 200 and len(reply.content) == record["file_size"]
        records.append(record)

    assert api.ok("DeleteRecord", record_id=records[0]["record_id"])["result"] == 1
    assert get_url(records[0]["record_url"]).status_code == 404
    assert api.history(first, with_records=True)["records"] == []
    api.fails("DeleteRecord", 404, ERR_NOT_FOUND, record_id=records[0]["record_id"])
    api.fails("DeleteRecord", 404, ERR_NOT_FOUND, record_url=records[0]["record_url"])
    # By its URL, as Voximplant's record_url.
    assert get_url(records[1]["record_url"]).status_code == 200
    api.ok("DeleteRecord", record_url=records[1]["record_url"])
    assert get_url(records[1]["record_url"]).status_code == 404
    assert api.history(second, with_records=True)["records"] == []
    # The calls stay in the history.
    assert len(api.history(second, with_calls=True)["calls"]) == 1


def test_delete_record_errors(api: Api) -> None:
    api.fails("DeleteRecord", 400, ERR_PARAMETER)
    api.fails("DeleteRecord", 400, ERR_PARAMETER, record_id=1, record_url="http://x/records/a.mp3")
    api.fails("DeleteRecord", 400, ERR_PARAMETER, record_id="first")
    api.fails("DeleteRecord", 404, ERR_NOT_FOUND, record_id=MISSING_ID)
    api.fails("DeleteRecord", 404, ERR_NOT_FOUND, record_url=f"{api.daemon.base_url}/records/nothing.mp3")


def test_history_filters_order_and_paging(api: Api) -> None:
    app_id, app_name = api.application()
    hello, _ = api.scenario(HELLO)
    r1, n1 = api.rule(app_id, scenario_id=hello)
    r2, n2 = api.rule(app_id, scenario_id=hello)
    started = []
    for rule_id, data in ((r1, "a"), (r2, "b"), (r1, "c"), (r2, "a")):
        session_id, _ = api.start(rule_id, data)
        started.append(session_id)
        time.sleep(0.01)
    for session_id in started:
        api.wait_ended(session_id)
    mine = {"application_id": app_id}

    assert session_ids(api, **mine) == started
    assert session_ids(api, application_name=app_name) == started
    assert session_ids(api, **mine, desc_order=True) == list(reversed(started))
    assert session_ids(api, **mine, rule_name=n1) == [started[0], started[2]]
    assert session_ids(api, rule_name=n2) == [started[1], started[3]]  # rule names are unique here
    assert session_ids(api, **mine, call_session_history_custom_data="a") == [started[0], started[3]]
    assert session_ids(api, **mine, call_session_history_id=started[2]) == [started[2]]
    assert session_ids(api, call_session_history_id=started[2], rule_name=n2) == []
    assert session_ids(api, application_name=unique("nope")) == []
    assert session_ids(api, **mine, remote_number="5551234") == []  # no calls in these sessions
    assert session_ids(api, **mine, max_duration=60) == started
    assert session_ids(api, **mine, min_duration=60) == []

    page = history(api, **mine, count=2, offset=1)
    assert [s["call_session_history_id"] for s in page["result"]] == started[1:3]
    assert (page["total_count"], page["count"], page["offset"]) == (4, 2, 1)
    assert "total_count" not in history(api, **mine, with_total_count=False)
    assert history(api, **mine, offset=4)["result"] == []

    # The dates bound the sessions' start.
    first = history(api, call_session_history_id=started[0])["result"][0]["start_date"]
    start = unix(first)
    assert session_ids(api, **mine, from_date=api_date(start - 3600), to_date=api_date(start - 1)) == []
    assert session_ids(api, **mine, from_date=api_date(time.time() + 5), to_date=api_date(time.time() + 60)) == []
    assert session_ids(api, **mine, from_date=api_date(start), to_date=api_date(time.time() + 1)) == started


def test_history_filters_on_calls(api: Api) -> None:
    app_id, rule_id, _, room = calling_app(api, hold_ms=50)
    session_id, _ = api.start(rule_id, "caller")
    api.wait_ended(session_id)
    mine = {"application_id": app_id}
    everything = session_ids(api, **mine)
    assert session_id in everything and len(everything) == 2  # with the room's session
    room_session = next(i for i in everything if i != session_id)
    assert session_ids(api, **mine, remote_number=room) == [session_id]
    assert session_ids(api, **mine, remote_number="5551234") == [room_session]
    assert session_ids(api, **mine, remote_number_list=f"{room};5551234") == everything
    assert session_ids(api, **mine, local_number="5551234") == [session_id]
    assert session_ids(api, **mine, local_number=room) == [room_session]
    assert session_ids(api, **mine, remote_number="0000") == []
    # Calls of a SIP user: these are none.
    assert session_ids(api, **mine, user_id=1) == []
    assert session_ids(api, **mine, user_id=MISSING_ID) == []


def test_history_takes_a_list_of_session_ids(api: Api) -> None:
    app_id, _ = api.application()
    hello, _ = api.scenario(HELLO)
    rule_id, _ = api.rule(app_id, scenario_id=hello)
    ids = [api.start(rule_id)[0] for _ in range(3)]
    assert session_ids(api, call_session_history_id=f"{ids[0]};{ids[2]}") == [ids[0], ids[2]]


def test_history_takes_a_list_of_remote_numbers(api: Api) -> None:
    app_id, rule_id, _, room = calling_app(api, hold_ms=50)
    session_id, _ = api.start(rule_id)
    api.wait_ended(session_id)
    everything = session_ids(api, application_id=app_id)
    assert session_ids(api, application_id=app_id, remote_number=f"{room};5551234") == everything


@pytest.mark.parametrize("params", [
    {"from_date": None},
    {"to_date": None},
    {"from_date": "2024-02-30 00:00:00"},
    {"to_date": "tomorrow"},
    {"from_date": "2030-01-01 00:00:00", "to_date": "2029-01-01 00:00:00"},
    {"count": "0"},
    {"count": "1001"},
    {"offset": "-1"},
    {"offset": "10001"},
    {"with_calls": "2"},
    {"with_records": "yes!"},
    {"desc_order": "up"},
    {"call_session_history_id": "x"},
    {"user_id": "x"},
    {"min_duration": "-1"},
    {"remote_number_list": "1;;2"},
    {"application_id": "1", "application_name": "a"},
], ids=["no-from", "no-to", "bad-from", "bad-to", "to-before-from", "count-0", "count-1001", "offset-negative",
        "offset-10001", "bad-with_calls", "bad-with_records", "bad-desc_order", "bad-session-id", "bad-user-id",
        "negative-duration", "empty-list-item", "both-application"])
def test_history_bad_parameters(api: Api, params: dict[str, str | None]) -> None:
    api.fails("GetCallHistory", 400, ERR_PARAMETER, **{**window(), **params})


def test_history_limits_that_are_fine(api: Api) -> None:
    assert history(api, count=1000, offset=10000)["result"] == []
    today = time.strftime("%Y-%m-%d", time.gmtime())  # a date alone: midnight, UTC
    assert api.ok("GetCallHistory", from_date=today, to_date="2100-01-01")["count"] >= 0


# Session logs


def test_log_file_url_outlives_the_session(api: Api) -> None:
    app_id, _ = api.application()
    hello, _ = api.scenario(HELLO)
    rule_id, _ = api.rule(app_id, scenario_id=hello)
    session_id, _ = api.start(rule_id, "for the log ü")
    entry = api.wait_ended(session_id)
    url = entry["log_file_url"]
    assert re.fullmatch(rf"{re.escape(api.daemon.base_url)}/logs/session/{session_id}/[0-9a-f]{{32}}", url)
    reply = get_url(url)
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/plain")
    lines = reply.text.splitlines()
    assert any(line.endswith("hello for the log ü") for line in lines), lines
    assert lines[-1].endswith("engine: session ended: Normal termination")
    assert get_url(url + "?follow=1").text == reply.text  # an ended session: the whole log, at once
    secret = url.rsplit("/", 1)[1]
    flipped = ("0" if secret[0] != "0" else "1") + secret[1:]
    for wrong in (url.replace(secret, flipped), url.replace(f"/{session_id}/", f"/{session_id + 1000}/"),
                  url[:-1]):
        assert get_url(wrong).status_code == 404, wrong
    assert api.ok("GetSessionLog", call_session_history_id=session_id)["result"] == reply.text


def test_log_file_url_follows_a_running_session(api: Api) -> None:
    app_id, _ = api.application()
    scenario_id, _ = api.scenario(LOGGER)
    rule_id, _ = api.rule(app_id, scenario_id=scenario_id)
    session_id, access_url = api.start(rule_id)
    url = api.history(session_id)["log_file_url"]
    assert api.history(session_id)["finish_reason"] == "in progress"
    received: list[str] = []
    done = threading.Event()

    def follow() -> None:
        try:
            with httpx.Client(timeout=httpx.Timeout(20.0)) as client, \
                    client.stream("GET", url, params={"follow": "1"}) as reply:
                assert reply.status_code == 200
                for chunk in reply.iter_text():
                    received.append(chunk)
        finally:
            done.set()

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    try:
        assert ask_session(access_url, "first mark") == "ok"
        assert wait_until(lambda: "got first mark" in "".join(received), 5), received
        assert not done.is_set(), "the stream ended while the session runs"
        assert ask_session(access_url, "second mark") == "ok"
        assert wait_until(lambda: "got second mark" in "".join(received), 5), received
    finally:
        post_url(access_url, "stop")
    assert done.wait(10), "the stream did not end with the session"
    reader.join(5)
    text = "".join(received)
    assert text.index("logger started") < text.index("got first mark") < text.index("got second mark")
    assert text.rstrip().endswith("engine: session ended: Normal termination")
    assert text == get_url(url).text


def test_get_session_log_in_pieces(api: Api) -> None:
    app_id, _ = api.application()
    scenario_id, _ = api.scenario(LOGGER)
    rule_id, _ = api.rule(app_id, scenario_id=scenario_id)
    session_id, access_url = api.start(rule_id)
    ask_session(access_url, "piece one")
    running = api.ok("GetSessionLog", call_session_history_id=session_id)
    assert running["finished"] is False and "got piece one" in running["result"]
    assert running["next_offset"] == len(running["result"].encode())
    post_url(access_url, "stop")
    api.wait_ended(session_id)
    whole = api.ok("GetSessionLog", call_session_history_id=session_id)
    assert whole["finished"] is True and whole["result"].startswith(running["result"])
    size = len(whole["result"].encode())
    assert whole["next_offset"] == size
    rest = api.ok("GetSessionLog", call_session_history_id=session_id, offset=running["next_offset"])
    assert running["result"] + rest["result"] == whole["result"] and rest["next_offset"] == size
    piece = api.ok("GetSessionLog", call_session_history_id=session_id, offset=5, count=10)
    assert piece["result"] == whole["result"].encode()[5:15].decode() and piece["next_offset"] == 15
    end = api.ok("GetSessionLog", call_session_history_id=session_id, offset=size + 100)
    assert end["result"] == "" and end["next_offset"] == size + 100

    api.fails("GetSessionLog", 400, ERR_PARAMETER)
    api.fails("GetSessionLog", 400, ERR_PARAMETER, call_session_history_id="x")
    api.fails("GetSessionLog", 404, ERR_NOT_FOUND, call_session_history_id=MISSING_ID)
    for bad in ({"offset": "-1"}, {"count": "0"}, {"count": str((1 << 20) + 1)}, {"offset": "x"}):
        api.fails("GetSessionLog", 400, ERR_PARAMETER, call_session_history_id=session_id, **bad)
