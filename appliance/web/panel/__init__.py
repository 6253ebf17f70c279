"""The web panel: server-rendered pages over the management API's methods (see core.py).

A page per folder-like path; each module holds one area of the box. The GET handlers read, POST
/panel/do/<Method> (actions.py) changes, GET /panel/events (events.py) keeps live pages current.
"""

from __future__ import annotations

from aiohttp import web

from appliance.web.panel import actions, catalog, dashboard, events, history, lines, logs, settings, signin, storage
from appliance.web.panel.core import PANEL_KEY, STATIC, Panel
from appliance.web.platform import PlatformApi


def add_panel(app: web.Application, platform: PlatformApi) -> Panel:
    panel = Panel(platform)
    app[PANEL_KEY] = panel

    async def closing(app: web.Application) -> None:
        panel.closing.set()

    app.on_shutdown.append(closing)
    router = app.router
    router.add_route("*", "/setup", signin.setup)
    router.add_route("*", "/login", signin.login)
    router.add_post("/logout", signin.logout)
    router.add_get("/", dashboard.dashboard)
    for module in (catalog, history, lines, storage, logs, settings):
        for verb, path, handler in module.ROUTES:
            router.add_route(verb, path, handler)
    router.add_post("/panel/do/{method:[A-Za-z]{1,64}}", actions.do)
    router.add_get("/panel/events", events.events)
    router.add_static("/panel/static", STATIC, append_version=False)
    return panel
