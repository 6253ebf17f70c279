"""Settings: network name, time zone and clock, backup and restore, API keys and service accounts, and
the panel's users. Downloads (a backup, a service account's JSON) are the methods' answers as files."""

from __future__ import annotations

import base64
import json

from aiohttp import web

from appliance.web.api import ApiError
from appliance.web.panel.actions import posted
from appliance.web.panel.core import Ctx, back, page, redirect, set_flash


@page
async def settings(ctx: Ctx) -> web.StreamResponse:
    admin = ctx.user.role == "admin"
    return ctx.render(
        "settings.html",
        box=await ctx.result("GetBoxSettings") or {},
        clock=await ctx.result("GetClockStatus") or {},
        account=await ctx.result("GetAccountInfo") or {},
        keys=(await ctx.result("GetKeys", count=1000) or []) if admin else [],
        admins=(await ctx.result("GetAdminUsers", count=1000) or []) if admin else [],
    )


def _attachment(body: bytes, file_name: str, content_type: str) -> web.Response:
    return web.Response(body=body, content_type=content_type, headers={
        "Content-Disposition": f'attachment; filename="{file_name}"', "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff"})


@page
async def backup(ctx: Ctx) -> web.StreamResponse:
    """The whole configuration as one file (POST: a backup holds secrets, so it needs the CSRF token too)."""
    try:
        await posted(ctx)
        answer = await ctx.call("GetBackup")
    except ApiError as exc:
        response = redirect(back(ctx.request))
        set_flash(response, "error", exc.msg)
        return response
    return _attachment(base64.b64decode(answer["backup"]), answer["file_name"], "application/octet-stream")


@page
async def service_account(ctx: Ctx) -> web.StreamResponse:
    """A new service account's credentials file, as Voximplant's clients and voxpush read it (shown once)."""
    try:
        values = await posted(ctx)
        answer = await ctx.call("CreateKey", description=values.get("description", "")[:200] or "panel download")
    except ApiError as exc:
        response = redirect(back(ctx.request))
        set_flash(response, "error", exc.msg)
        return response
    credentials = answer["result"]
    return _attachment(json.dumps(credentials, indent=2).encode(), f"credentials-{credentials['key_id'][:8]}.json",
                       "application/json")


ROUTES = [
    ("GET", "/settings", settings),
    ("POST", "/settings/backup", backup),
    ("POST", "/settings/service-account", service_account),
]
