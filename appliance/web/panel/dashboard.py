"""The dashboard: lines with their state, calls in progress (with hang-up and RTCP quality), the box's
health and the last hour drawn as charts. Live: events.py pushes its blocks again as they change."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from appliance.web.panel.core import Ctx, LiveView, live_page


def line_state(line: Mapping[str, Any]) -> tuple[str, str]:
    """A line's state as a label and a colour (ok, warn, bad, or '' for idle)."""
    if "registration" in line:  # a SIP trunk
        state = str(line.get("registration") or "")
        if state == "registered":
            return "registered", "ok"
        if state in ("failed", "rejected"):
            return state, "bad"
        if state in ("", "none", "off", "disabled"):
            return ("reachable", "ok") if line.get("reachable") else ("no registration", "")
        return state, "warn"
    if "registered" in line:  # a local SIP user (a phone)
        return ("registered", "ok") if line.get("registered") else ("not registered", "")
    state = str(line.get("state", "unknown"))
    return state, "ok" if state in ("idle", "registered", "on-hook", "ready") else "warn"


async def data(ctx: Ctx, query: Mapping[str, str]) -> dict[str, Any]:
    lines = await ctx.result("GetLines") or []
    calls = await ctx.result("GetActiveCalls") or []
    health = await ctx.result("GetHealth") or {}
    samples = await ctx.result("GetHealthHistory") or []
    return {
        "lines": [{**line, "state": line_state(line)} for line in lines],
        "sessions": calls,
        "health": health,
        "samples": samples,
        "series": {name: [float(s.get(name) or 0) for s in samples]
                   for name in ("cpu_percent", "loop_lag_ms", "calls", "calls_started")},
    }


dashboard = live_page("dashboard", LiveView("dashboard.html", ("stats", "lines", "calls", "charts"), data))
