"""Logs: the box's own log as a live tail, any session's log, the SIP trace of a call, the audit log."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from appliance.web.api import DATE_FORMAT, ApiError
from appliance.web.panel.core import Ctx, page, redirect

LEVELS = ("debug", "info", "warning", "error")
AUDIT_ROWS = 100


@page
async def logs(ctx: Ctx) -> web.StreamResponse:
    query = ctx.request.query
    if query.get("session", "").isdigit():
        return redirect(f"/history/{int(query['session'])}")
    level = query.get("level", "info") if query.get("level") in LEVELS else "info"
    call_id = query.get("sip_call_id", "").strip()[:200]
    trace: list[dict[str, Any]] = []
    if call_id:
        try:
            trace = (await ctx.call("GetSipTrace", sip_call_id=call_id))["result"]
        except ApiError as exc:
            ctx.flash.append(("error", exc.msg))
    audit: list[dict[str, Any]] = []
    if ctx.user.role == "admin":
        audit = await ctx.result("GetAuditLog", from_date="1970-01-01 00:00:00", desc_order=True, count=AUDIT_ROWS,
                                 to_date=time.strftime(DATE_FORMAT, time.gmtime(time.time() + 86400))) or []
    return ctx.render("logs.html", level=level, levels=LEVELS, call_id=call_id, trace=trace, audit=audit)


ROUTES = [("GET", "/logs", logs)]
