"""Lines: local SIP users (phones) and SIP trunks with their registration state and last error; and the
outbound routes that send callPSTN() out through them, with their toll-fraud guards."""

from __future__ import annotations

from aiohttp import web

from appliance.web.panel.core import Ctx, page


@page
async def lines(ctx: Ctx) -> web.StreamResponse:
    users = await ctx.result("GetUsers", count=1000) or []
    trunks = await ctx.result("GetSipRegistrations", count=1000) or []
    apps = await ctx.result("GetApplications") or []
    return ctx.render("lines.html", users=users, trunks=trunks, applications=apps)


@page
async def routes(ctx: Ctx) -> web.StreamResponse:
    found = await ctx.result("GetOutboundRoutes", count=1000) or []
    line_names = [line["name"] for line in await ctx.result("GetLines") or []]
    return ctx.render("routes.html", routes=found, line_names=line_names)


ROUTES = [
    ("GET", "/lines", lines),
    ("GET", "/routes", routes),
]
