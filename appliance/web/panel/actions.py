"""POST /panel/do/<Method>: every change the panel makes, as a management API method call.

The form's fields are the method's parameters (Voximplant's names), plus:
* `csrf`: the session's CSRF token (refused with 403 without it);
* `next`: the page to go back to; `{name}` in it is filled from the answer (`/applications/{application_id}`).
A file field is read as UTF-8 text (a scenario), or as base64 for `backup` (a configuration backup).
JavaScript callers that accept JSON get the method's answer, or its error with its HTTP status.
"""

from __future__ import annotations

import base64
import string
from typing import Any

from aiohttp import web

from appliance.web.api import ERR_AUTH, ERR_PARAMETER, ERR_TOO_LARGE, ApiError
from appliance.web.panel import auth
from appliance.web.panel.core import Ctx, back, local_path, page, redirect, set_flash
from appliance.web.platform import error_response

BASE64_FILES = frozenset({"backup"})
MAX_FILE_BYTES = 3 * 1024 * 1024  # base64 of it still fits the API's 4 MiB body limit


async def form_values(request: web.Request) -> dict[str, str]:
    values: dict[str, str] = {}
    try:
        posted_form = await request.post()
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, ERR_PARAMETER, "the form is not UTF-8 form data") from None
    for name, value in posted_form.items():
        if isinstance(value, web.FileField) and not value.filename:
            continue  # a file input left empty: the field's other input (a text box) has the value
        if isinstance(value, web.FileField):
            data = value.file.read(MAX_FILE_BYTES + 1)
            if len(data) > MAX_FILE_BYTES:
                raise ApiError(413, ERR_TOO_LARGE, f"the file {value.filename!r} is over {MAX_FILE_BYTES >> 20} MB")
            if name in BASE64_FILES:
                values[name] = base64.b64encode(data).decode("ascii")
            else:
                try:
                    values[name] = data.decode("utf-8")
                except UnicodeDecodeError:
                    raise ApiError(400, ERR_PARAMETER, f"the file {value.filename!r} is not UTF-8 text") from None
        elif isinstance(value, str):
            values[name] = value  # the last of repeated fields wins: a hidden "false" before a checkbox
    return values


def _next(template: str, result: dict[str, Any]) -> str:
    fields = {k: v for k, v in result.items() if isinstance(v, (int, str))}
    try:
        target = string.Formatter().vformat(template, (), fields)
    except (KeyError, IndexError, ValueError):
        target = "/"
    return local_path(target)


async def posted(ctx: Ctx) -> dict[str, str]:
    """A form posted by the signed-in user, its CSRF token checked (ApiError 403 if wrong) and removed."""
    values = await form_values(ctx.request)
    if not auth.csrf_ok(ctx.visitor.csrf, values.pop(auth.CSRF_FIELD, None)):
        raise ApiError(403, ERR_AUTH, "the form's CSRF token is missing or wrong: reload the page and try again")
    return values


@page
async def do(ctx: Ctx) -> web.StreamResponse:
    method = ctx.request.match_info["method"]
    wants_json = "application/json" in ctx.request.headers.get("Accept", "")
    try:
        values = await posted(ctx)
        target = values.pop("next", "")
        answer = await ctx.call(method, **values)
    except ApiError as exc:
        if wants_json:
            return error_response(exc)
        response = redirect(back(ctx.request))
        set_flash(response, "error", exc.msg)
        return response
    if wants_json:
        return web.json_response(answer)
    response = redirect(_next(target, answer) if target else back(ctx.request))
    set_flash(response, "ok", DONE.get(method, "Saved."))
    return response


DONE = {
    "StartScenarios": "Scenario started.",
    "HangupCall": "Hang-up sent.",
    "RestoreBackup": "Configuration restored.",
}
