"""The panel's plumbing: who the visitor is, calling management API methods as them, rendering pages.

Every page reads through `Ctx.call` and every change goes through POST /panel/do/<Method> (actions.py):
both run the management API's own methods (appliance/web/platform.py PlatformApi.call), audited as
"panel:<user>", so the panel has no second way to change anything.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import jinja2
from aiohttp import web

from appliance import __version__
from appliance.store.admins import AdminUser, AdminUsers
from appliance.web.api import ApiError
from appliance.web.panel import auth, charts
from appliance.web.platform import PlatformApi, base_url

FLASH_COOKIE = "vg_flash"
TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
# A page's response must not be framed (clickjacking) nor run scripts from elsewhere.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; media-src 'self'; style-src 'self'; "
                               "script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
NAV = (  # (path, title, icon letter)
    ("/", "Dashboard"),
    ("/applications", "Applications"),
    ("/scenarios", "Scenarios"),
    ("/history", "Call history"),
    ("/lines", "Lines"),
    ("/routes", "Outbound routes"),
    ("/storage", "Storage"),
    ("/logs", "Logs"),
    ("/settings", "Settings"),
)


def _static_version() -> str:
    """Changes whenever a static file does, so browsers never keep an old script or style sheet."""
    digest = hashlib.sha256()
    for path in sorted(STATIC.iterdir()):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


class Panel:
    def __init__(self, platform: PlatformApi) -> None:
        self.platform = platform
        self.admins: AdminUsers = platform.api.admins
        self.lockout = auth.Lockout()
        self.closing = asyncio.Event()  # set when the box stops: live streams end
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.ChainableUndefined,
            trim_blocks=True, lstrip_blocks=True)
        self.templates.globals.update(nav=NAV, version=__version__, static_version=_static_version(),
                                      sparkline=charts.sparkline, bars=charts.bars)
        # The shared macros are globals: a live block rendered on its own (events.py) sees no page's imports.
        macros = self.templates.get_template("macros.html").module
        self.templates.globals.update({name: getattr(macros, name)
                                       for name in ("hidden", "action", "state", "checkbox", "head")})
        self.templates.filters.update(duration=_duration, size=_size, clock=_clock)

    async def visitor(self, request: web.Request) -> auth.Visitor:
        token = request.cookies.get(auth.SESSION_COOKIE, "")
        session = await self.platform.api.db.call(self.admins.session, token) if 20 <= len(token) <= 100 else None
        if session is None:
            return auth.Visitor(None, "", auth.pre_signin_csrf(request))
        return auth.Visitor(session, token, session.csrf)

    async def has_users(self) -> bool:
        return await self.platform.api.db.call(self.admins.any)


@dataclass
class Ctx:
    """One signed-in request: the user, and the methods they may call."""
    panel: Panel
    request: web.Request
    visitor: auth.Visitor
    flash: list[tuple[str, str]] = field(default_factory=list)

    @property
    def user(self) -> AdminUser:
        return self.visitor.user

    async def call(self, method: str, **values: Any) -> dict[str, Any]:
        """A management API method as this user (ApiError if it fails or the role may not)."""
        texts = {k: _form_value(v) for k, v in values.items() if v is not None}
        role = self.user.role
        return await self.panel.platform.call(
            method, texts, key_id=f"panel:{self.user.name}", source=self.request.remote or "",
            base_url=base_url(self.request), allowed=lambda m: auth.allowed(role, m))

    async def result(self, method: str, **values: Any) -> Any:
        """The `result` of a method, or None with the error shown on the page (a page still renders)."""
        try:
            return (await self.call(method, **values))["result"]
        except ApiError as exc:
            self.flash.append(("error", f"{method}: {exc.msg}"))
            return None

    def _values(self, values: dict[str, Any]) -> dict[str, Any]:
        return {"user": self.user, "csrf": self.visitor.csrf, "path": self.request.path, "flash": self.flash,
                "may": functools.partial(auth.may, self.user), "box_name": self.panel.platform.api.account_name,
                **values}

    def render_text(self, template: str, **values: Any) -> str:
        return self.panel.templates.get_template(template).render(self._values(values))

    def render_blocks(self, template: str, blocks: tuple[str, ...], **values: Any) -> dict[str, str]:
        """Some blocks of a page on their own: what live updates replace (events.py)."""
        page = self.panel.templates.get_template(template)
        context = page.new_context(self._values(values))
        return {name: "".join(page.blocks[name](context)) for name in blocks}

    def render(self, template: str, status: int = 200, **values: Any) -> web.Response:
        flashed = FLASH_COOKIE in self.request.cookies
        self.flash[:0] = _take_flash(self.request)
        response = html_response(self.render_text(template, **values), status)
        if flashed:
            response.del_cookie(FLASH_COOKIE, path="/")
        return response


def _form_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def html_response(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8",
                        headers=SECURITY_HEADERS)


def redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def local_path(target: str) -> str:
    """A path on this box to send the browser to: never another site (no open redirect)."""
    parts = urlsplit(target)
    ok = target.startswith("/") and not target.startswith("//") and not parts.scheme and not parts.netloc
    return target if ok and "\\" not in target else "/"


def back(request: web.Request) -> str:
    """The page a form was posted from (its Referer, when it is this box's)."""
    parts = urlsplit(request.headers.get("Referer", ""))
    if parts.netloc != request.host or not parts.path:
        return "/"
    return local_path(parts.path + (f"?{parts.query}" if parts.query else ""))


def set_flash(response: web.StreamResponse, kind: str, text: str) -> None:
    """A message for the next page shown (after a redirect)."""
    response.set_cookie(FLASH_COOKIE, quote(json.dumps([kind, text[:500]])), httponly=True, samesite="Strict",
                        path="/", max_age=60)


def _take_flash(request: web.Request) -> list[tuple[str, str]]:
    try:
        kind, text = json.loads(unquote(request.cookies.get(FLASH_COOKIE, "")))
    except (ValueError, TypeError):
        return []
    return [(str(kind), str(text))] if kind in ("ok", "error") else []


Handler = Callable[[Ctx], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class LiveView:
    """A page whose blocks are re-rendered and pushed while it is open (a call starting shows at once).

    `data` gives the template's values for the page's query; the page renders them whole, events.py
    renders only `blocks` again, every LIVE_SECONDS, and sends those that changed."""
    template: str
    blocks: tuple[str, ...]
    data: Callable[[Ctx, Mapping[str, str]], Awaitable[dict[str, Any]]]


LIVE_VIEWS: dict[str, LiveView] = {}


def live_page(name: str, view: LiveView) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The GET handler of a live page, registered for events.py under `name`."""
    LIVE_VIEWS[name] = view

    @page
    async def handler(ctx: Ctx) -> web.StreamResponse:
        values = await view.data(ctx, ctx.request.query)
        return ctx.render(view.template, live_view=name, **values)

    return handler


def page(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A signed-in page: before the first user it leads to /setup, signed out to /login."""

    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        panel: Panel = request.app[PANEL_KEY]
        visitor = await panel.visitor(request)
        if visitor.session is None:
            if not await panel.has_users():
                return redirect("/setup")
            target = request.path_qs if request.method == "GET" and request.path != "/" else ""
            return redirect("/login" + (f"?next={quote(target, safe='')}" if target else ""))
        return await handler(Ctx(panel, request, visitor))

    return wrapper


def _duration(seconds: float | int | None) -> str:
    if seconds is None:
        return ""
    seconds = int(seconds)
    if seconds < 3600:
        return f"{seconds // 60}:{seconds % 60:02d}"
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _clock(timestamp: float) -> str:
    """A time of day to the millisecond (UTC), as traces show it."""
    return time.strftime("%H:%M:%S", time.gmtime(timestamp)) + f".{int(timestamp * 1000) % 1000:03d}"


def _size(n: int | None) -> str:
    if not n:
        return ""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n = n / 1024  # type: ignore[assignment]
    return ""


PANEL_KEY = web.AppKey("panel", Panel)
