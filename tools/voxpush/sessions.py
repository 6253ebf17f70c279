"""Sessions on the box: `start` (StartScenarios), `logs` (a session's log, live with --follow), `calls`."""

from __future__ import annotations

import codecs
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from tools.voxpush.api import VoxpushError
from tools.voxpush.remote import Box

DATE = "%Y-%m-%d %H:%M:%S"
HISTORY_FROM = datetime(2000, 1, 1, tzinfo=UTC)
LOG_URL_WAIT = 10.0  # a session just started may take a moment to appear in the call history


def start(box: Box, rule: str, application: str | None, custom_data: str | None) -> dict[str, Any]:
    by_id = rule.isdigit()
    if not by_id and application is None:
        raise VoxpushError("a rule given by name needs --application-name (or give the rule's id)")
    answer = box.client.call(
        "StartScenarios", rule_id=rule if by_id else None, rule_name=None if by_id else rule,
        application_name=application if application and not application.isdigit() else None,
        application_id=application if application and application.isdigit() else None,
        script_custom_data=custom_data)
    print(f"session {answer.get('call_session_history_id')} started")
    print(f"media_session_access_url: {answer.get('media_session_access_url')}")
    if answer.get("media_session_access_secure_url"):
        print(f"media_session_access_secure_url: {answer['media_session_access_secure_url']}")
    return answer


def _history(box: Box, **params: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    return box.client.call("GetCallHistory", from_date=params.pop("from_date", HISTORY_FROM).strftime(DATE),
                           to_date=(now + timedelta(days=1)).strftime(DATE), **params)


def log_url(box: Box, session_id: int) -> str:
    deadline = time.monotonic() + LOG_URL_WAIT
    while True:
        found = _history(box, call_session_history_id=session_id).get("result") or []
        url = found[0].get("log_file_url") if found and isinstance(found[0], dict) else None
        if isinstance(url, str) and url:
            return url
        if time.monotonic() >= deadline:
            raise VoxpushError(f"session {session_id} is not in the box's call history" if not found
                               else f"session {session_id} has no log")
        time.sleep(0.3)


def logs(box: Box, session_id: int, follow: bool) -> None:
    url = log_url(box, session_id)
    if follow:
        url += ("&" if "?" in url else "?") + "follow=1"
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")  # a chunk may end inside a character
    for chunk in box.client.stream(url):
        sys.stdout.write(decoder.decode(chunk))
        sys.stdout.flush()
    sys.stdout.write(decoder.decode(b"", final=True))


def calls(box: Box, count: int) -> list[dict[str, Any]]:
    result = _history(box, from_date=datetime.now(UTC) - timedelta(days=31), with_calls=True, desc_order=True,
                      count=count).get("result") or []
    rows = [["SESSION", "START (UTC)", "DURATION", "APPLICATION", "RULE", "CALLS", "FINISH"]]
    for s in result:
        legs = ", ".join(f"{'<' if c.get('incoming') else '>'}{c.get('remote_number', '')}"
                         + ("" if c.get("successful") else " (failed)") for c in s.get("calls") or [])
        rows.append([str(s.get("call_session_history_id", "")), str(s.get("start_date", "")),
                     f"{s.get('duration') or 0}s", str(s.get("application_name", "")).split(".")[0],
                     str(s.get("rule_name", "")), legs or "-", str(s.get("finish_reason") or "")])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    if not result:
        print("(no calls in the last 31 days)")
    return [s for s in result if isinstance(s, dict)]
