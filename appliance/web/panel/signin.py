"""First-boot set-up, sign-in and sign-out."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from aiohttp import web

from appliance.store.db import StoreError
from appliance.web.panel import auth
from appliance.web.panel.core import PANEL_KEY, Panel, html_response, local_path, redirect

log = logging.getLogger(__name__)


def _render(panel: Panel, request: web.Request, template: str, csrf: str, status: int = 200,
            **values: Any) -> web.Response:
    text = panel.templates.get_template(template).render(csrf=csrf, **values)
    response = html_response(text, status)
    auth.set_csrf_cookie(request, response, csrf)
    return response


async def _form(request: web.Request, csrf: str) -> dict[str, str] | None:
    """The posted form if its CSRF token matches the pre-sign-in cookie."""
    try:
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
    except (UnicodeDecodeError, ValueError):
        return None
    cookie = request.cookies.get(auth.CSRF_COOKIE, "")
    return form if auth.csrf_ok(cookie, form.get(auth.CSRF_FIELD)) and cookie == csrf else None


async def setup(request: web.Request) -> web.StreamResponse:
    """First boot: make the admin. Gone for good once a user exists."""
    panel = request.app[PANEL_KEY]
    if await panel.has_users():
        return redirect("/login")
    csrf = auth.pre_signin_csrf(request)
    if request.method == "GET":
        return _render(panel, request, "setup.html", csrf, name="admin", error="")
    form = await _form(request, csrf)
    if form is None:
        return _render(panel, request, "setup.html", auth.pre_signin_csrf(request), 403, name="admin",
                       error="The form expired: please try again.")
    name, password = form.get("name", "").strip(), form.get("password", "")
    if password != form.get("confirm", ""):
        return _render(panel, request, "setup.html", csrf, 400, name=name, error="The passwords differ.")
    db = panel.platform.api.db
    try:
        user = await db.call(_first_admin, panel, name, password)
    except StoreError as exc:
        return _render(panel, request, "setup.html", csrf, 400, name=name, error=str(exc).capitalize() + ".")
    await db.call(panel.platform.api.audit.write, time.time(), f"panel:{user.name}", request.remote or "",
                  "AddAdminUser", {"new_admin_user_name": user.name, "admin_role": "admin", "first_boot": "true"},
                  0, "")
    log.info("panel: first admin %r set up from %s", user.name, request.remote)
    token = await db.call(panel.admins.sign_in, user)
    response = redirect("/")
    auth.set_session_cookie(request, response, token)
    return response


def _first_admin(panel: Panel, name: str, password: str) -> Any:
    with panel.platform.api.db.transaction():
        if panel.admins.any():  # two first visits at once: the second one loses
            raise StoreError("the panel was set up a moment ago: sign in")
        return panel.admins.add(name, password, "admin", display_name="Administrator")


async def login(request: web.Request) -> web.StreamResponse:
    panel = request.app[PANEL_KEY]
    if not await panel.has_users():
        return redirect("/setup")
    target = local_path(request.query.get("next", "/"))
    csrf = auth.pre_signin_csrf(request)
    source = request.remote or ""
    if request.method == "GET":
        return _render(panel, request, "login.html", csrf, name="", error="", next=target)
    form = await _form(request, csrf)
    if form is None:
        return _render(panel, request, "login.html", auth.pre_signin_csrf(request), 403, name="", next=target,
                       error="The form expired: please try again.")
    name = form.get("name", "").strip()[:64]
    locked = panel.lockout.remaining(source)
    if locked:
        return _locked(panel, request, csrf, name, target, locked)
    user = await panel.platform.api.db.call(panel.admins.verify, name, form.get("password", "")[:1000])
    if user is None:
        panel.lockout.failed(source)
        log.warning("panel: failed sign-in as %r from %s", name, source)
        locked = panel.lockout.remaining(source)
        if locked:
            log.warning("panel: %s locked out for %d s after %d failed sign-ins", source, locked,
                        auth.LOCKOUT_FAILURES)
            return _locked(panel, request, csrf, name, target, locked)
        return _render(panel, request, "login.html", csrf, 401, name=name, next=target,
                       error="Wrong user name or password.")
    panel.lockout.succeeded(source)
    old = request.cookies.get(auth.SESSION_COOKIE, "")
    if old:
        await panel.platform.api.db.call(panel.admins.sign_out, old)
    token = await panel.platform.api.db.call(panel.admins.sign_in, user)
    log.info("panel: %s signed in from %s", user.name, source)
    response = redirect(local_path(form.get("next", target)))
    auth.set_session_cookie(request, response, token)
    return response


def _locked(panel: Panel, request: web.Request, csrf: str, name: str, target: str, seconds: float) -> web.Response:
    minutes = max(1, math.ceil(seconds / 60))
    return _render(panel, request, "login.html", csrf, 429, name=name, next=target,
                   error=f"Too many failed sign-ins from this address: try again in {minutes} minutes.")


async def logout(request: web.Request) -> web.StreamResponse:
    panel = request.app[PANEL_KEY]
    visitor = await panel.visitor(request)
    try:
        token = str((await request.post()).get(auth.CSRF_FIELD, ""))
    except (UnicodeDecodeError, ValueError):
        token = ""
    if visitor.session is None or not auth.csrf_ok(visitor.csrf, token):
        return redirect("/login")
    await panel.platform.api.db.call(panel.admins.sign_out, visitor.token)
    response = redirect("/login")
    response.del_cookie(auth.SESSION_COOKIE, path="/")
    return response
