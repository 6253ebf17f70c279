"""Key-value storage browser: an application's keys (as scenarios' ApplicationStorage sees them)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from appliance.web.api import ApiError
from appliance.web.panel.core import Ctx, page

PAGE_ROWS = 100


@page
async def storage(ctx: Ctx) -> web.StreamResponse:
    apps = await ctx.result("GetApplications") or []
    wanted = ctx.request.query.get("application_id", "")
    app = next((a for a in apps if str(a["application_id"]) == wanted), apps[0] if apps else None)
    prefix = ctx.request.query.get("key", "")[:200]
    items: list[dict[str, Any]] = []
    total = 0
    if app is not None:
        try:
            answer = await ctx.call("GetKeyValueItems", application_id=app["application_id"], key=prefix,
                                    count=PAGE_ROWS)
            items, total = answer["result"], answer["total_count"]
        except ApiError as exc:
            ctx.flash.append(("error", exc.msg))
    return ctx.render("storage.html", applications=apps, app=app, items=items, total=total, prefix=prefix)


ROUTES = [("GET", "/storage", storage)]
