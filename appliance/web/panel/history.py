"""Call history: filters, live list, CSV export, and one session's calls, recordings, log and SIP trace."""

from __future__ import annotations

import contextlib
import csv
import io
import re
import time
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from appliance.web.api import DATE_FORMAT, MAX_COUNT, ApiError
from appliance.web.panel.core import Ctx, LiveView, live_page, page

DEFAULT_DAYS = 7
PAGE_ROWS = 50
CSV_MAX_SESSIONS = 10_000  # GetCallHistory's offset limit: a wider export needs narrower dates
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}\Z")
# A cell a spreadsheet would run as a formula; a phone number like +4930... is data, not a formula.
_FORMULA = re.compile(r"^[=+\-@\t\r]")
_NUMBER = re.compile(r"^[+\-]?[0-9 ()*#.\-]*\Z")
CSV_COLUMNS = ("session_id", "start (UTC)", "duration_s", "application", "rule", "direction", "caller", "callee",
               "line", "call_duration_s", "result", "end_code", "end_reason", "codec", "loss_percent", "jitter_ms",
               "finish_reason", "recordings")


def filters(query: Mapping[str, str]) -> dict[str, str]:
    """The page's filter fields (as typed) from its query string, with defaults."""
    today = time.strftime("%Y-%m-%d", time.gmtime())
    since = time.strftime("%Y-%m-%d", time.gmtime(time.time() - DEFAULT_DAYS * 86400))
    return {
        "from": query.get("from", "") if _DAY.match(query.get("from", "")) else since,
        "to": query.get("to", "") if _DAY.match(query.get("to", "")) else today,
        "number": query.get("number", "").strip()[:64],
        "application_id": query.get("application_id", "") if query.get("application_id", "").isdigit() else "",
        "min_duration": query.get("min_duration", "") if query.get("min_duration", "").isdigit() else "",
    }


def _params(f: Mapping[str, str]) -> dict[str, Any]:
    return {
        "from_date": f"{f['from']} 00:00:00", "to_date": f"{f['to']} 23:59:59",
        "remote_number": f["number"] or None, "application_id": f["application_id"] or None,
        "min_duration": f["min_duration"] or None, "desc_order": True, "with_calls": True, "with_records": True,
    }


async def data(ctx: Ctx, query: Mapping[str, str]) -> dict[str, Any]:
    f = filters(query)
    offset = int(query["offset"]) if query.get("offset", "").isdigit() else 0
    try:
        answer = await ctx.call("GetCallHistory", **_params(f), count=PAGE_ROWS, offset=offset)
    except ApiError as exc:
        ctx.flash.append(("error", exc.msg))
        answer = {"result": [], "total_count": 0}
    apps = await ctx.result("GetApplications") or []
    await _with_live_calls(ctx, answer["result"])
    return {"filters": f, "sessions": answer["result"], "total": answer.get("total_count", 0), "offset": offset,
            "page_rows": PAGE_ROWS, "applications": apps, "query": "&".join(f"{k}={v}" for k, v in f.items() if v)}


async def _with_live_calls(ctx: Ctx, sessions: list[dict[str, Any]]) -> None:
    """Sessions still running get their calls from GetActiveCalls (the history records a call when it ends),
    so a call shows with its numbers while it is up."""
    if not any(s["duration"] is None for s in sessions):
        return
    live = {s["call_session_history_id"]: s["calls"] for s in await ctx.result("GetActiveCalls") or []}
    for s in sessions:
        if s["duration"] is None and not s.get("calls"):
            s["calls"] = [{"incoming": c["direction"] == "incoming", "remote_number": c["remote_number"],
                           "local_number": c["local_number"], "line": c["line"], "successful": False}
                          for c in live.get(s["call_session_history_id"], [])]


history = live_page("history", LiveView("history.html", ("sessions",), data))


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if _FORMULA.match(text) and not _NUMBER.match(text) else text


@page
async def history_csv(ctx: Ctx) -> web.StreamResponse:
    """Every session the filters select, one row per call (CSV, UTF-8, a row for a session without calls)."""
    f = filters(ctx.request.query)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    offset = 0
    while offset < CSV_MAX_SESSIONS:
        try:
            answer = await ctx.call("GetCallHistory", **_params(f), count=MAX_COUNT, offset=offset)
        except ApiError as exc:
            return web.Response(status=exc.status, text=exc.msg)
        for s in answer["result"]:
            records = " ".join(r["record_url"] for r in s.get("records", []))
            for c in s.get("calls") or [{}]:
                writer.writerow([_cell(v) for v in (
                    s["call_session_history_id"], s["start_date"], s["duration"], s["application_name"],
                    s["rule_name"], ("in" if c.get("incoming") else "out") if c else "",
                    c.get("remote_number") if c.get("incoming") else c.get("local_number"),
                    c.get("local_number") if c.get("incoming") else c.get("remote_number"),
                    c.get("line"), c.get("duration"),
                    ("answered" if c.get("successful") else "not answered") if c else "",
                    (c.get("end_reason") or {}).get("code"), (c.get("end_reason") or {}).get("description"),
                    c.get("codec"), c.get("lost_percent"), c.get("jitter_ms"), s["finish_reason"], records)])
        offset += len(answer["result"])
        if not answer["result"] or offset >= answer.get("total_count", 0):
            break
    name = f"voxgate-calls-{f['from']}-{f['to']}.csv"
    return web.Response(body=out.getvalue().encode("utf-8"), content_type="text/csv", charset="utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


@page
async def session(ctx: Ctx) -> web.StreamResponse:
    session_id = ctx.request.match_info["id"]
    answer = await ctx.result("GetCallHistory", call_session_history_id=session_id, with_calls=True,
                              with_records=True, from_date="1970-01-01 00:00:00",
                              to_date=time.strftime(DATE_FORMAT, time.gmtime(time.time() + 86400)))
    if not answer:
        return ctx.render("not_found.html", 404, what="session")
    trace: list[dict[str, Any]] = []
    with contextlib.suppress(ApiError):  # no SIP call in this session, or its messages have left the trace
        trace = (await ctx.call("GetSipTrace", call_session_history_id=session_id))["result"]
    return ctx.render("session.html", s=answer[0], trace=trace)


ROUTES = [
    ("GET", "/history", history),
    ("GET", "/history.csv", history_csv),
    ("GET", r"/history/{id:\d{1,18}}", session),
]
