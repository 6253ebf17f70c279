"""GET /panel/events?view=<live view>&<its query>: Server-Sent Events that keep an open page current.

Every LIVE_SECONDS the view's blocks are rendered again as the signed-in user; those that changed are sent
as `event: block` with {"id", "html"} (panel.js swaps them in). The stream ends when the user signs out
or the box stops; the browser's EventSource reconnects by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

from aiohttp import web

from appliance.web.panel.core import LIVE_VIEWS, Ctx, LiveView, page

LIVE_SECONDS = 1.0
KEEPALIVE_SECONDS = 15.0  # a comment line, so idle proxies and phones keep the connection


@page
async def events(ctx: Ctx) -> web.StreamResponse:
    view = LIVE_VIEWS.get(ctx.request.query.get("view", ""))
    if view is None:
        return web.Response(status=404, text="no such live view")
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                           "X-Accel-Buffering": "no"})
    await response.prepare(ctx.request)
    await response.write(b"retry: 2000\n\n")
    with contextlib.suppress(ConnectionResetError):  # the page was closed or left: nothing to tell
        await _stream(ctx, view, response)
    return response


async def _stream(ctx: Ctx, view: LiveView, response: web.StreamResponse) -> None:
    panel = ctx.panel
    sent: dict[str, str] = {}
    quiet_since = time.monotonic()
    while not panel.closing.is_set():
        if await panel.platform.api.db.call(panel.admins.session, ctx.visitor.token) is None:
            break  # signed out (or the user was removed) meanwhile
        ctx.flash.clear()
        blocks = ctx.render_blocks(view.template, view.blocks, **await view.data(ctx, ctx.request.query))
        changed = [(name, html) for name, html in blocks.items() if sent.get(name) != html]
        for name, html in changed:
            sent[name] = html
            await response.write(f"event: block\ndata: {json.dumps({'id': name, 'html': html})}\n\n".encode())
        if changed:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > KEEPALIVE_SECONDS:
            await response.write(b": keep-alive\n\n")
            quiet_since = time.monotonic()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(panel.closing.wait(), LIVE_SECONDS)
