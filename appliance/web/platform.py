"""/platform_api: the management API's front door. Every request goes through, in this order:

1. the source address's rate limit (and its budget of failed authentications);
2. the parameters (query and form, body at most MAX_BODY_BYTES);
3. authentication (appliance/web/auth.py), then the key's own rate limit;
4. the method (appliance/web/methods/*), in one store transaction if it runs on the store's thread;
5. the reload of what the change touched (routing table, SIP lines, outbound routes);
6. the audit log, for every method that changes something, done or refused.
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from appliance.engine.errors import ScriptSyntaxError
from appliance.store.db import Conflict, NotFound, StoreError
from appliance.web.api import (
    ERR_AUTH,
    ERR_EXISTS,
    ERR_FORBIDDEN,
    ERR_INTERNAL,
    ERR_METHOD,
    ERR_NOT_FOUND,
    ERR_PARAMETER,
    ERR_RATE,
    ERR_SCRIPT,
    ERR_TOO_LARGE,
    Api,
    ApiError,
    Method,
    Params,
)
from appliance.web.auth import AuthError, authenticate
from appliance.web.methods import (
    account,
    admins,
    applications,
    box,
    diagnostics,
    history,
    monitor,
    rules,
    scenarios,
    secrets,
    sessions,
    settings,
    sip_registrations,
    storage,
    users,
)
from appliance.web.ratelimit import RateLimiter

log = logging.getLogger(__name__)

# A 256 K-character scenario, form-encoded: up to 12 bytes a character (a 4-byte UTF-8 one as %XX%XX%XX%XX).
MAX_BODY_BYTES = 4 * 1024 * 1024
METHODS: dict[str, Method] = {
    m.name: m
    for module in (account, applications, rules, scenarios, sessions, users, sip_registrations, history, storage,
                   secrets, box, monitor, diagnostics, settings, admins)
    for m in module.METHODS
}


@dataclass(frozen=True)
class RateLimits:
    per_key: float = 20.0  # requests per second, sustained...
    per_key_burst: float = 100.0  # ...after a burst of this many (voxpush uploads a project in a burst)
    per_source: float = 40.0
    per_source_burst: float = 200.0
    auth_failures_per_minute: float = 10.0  # then the source waits, valid key or not


def error_response(error: ApiError, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": {"code": error.code, "msg": error.msg}}, status=error.status,
                             headers=headers)


def _rate_limited(wait: float, what: str) -> web.Response:
    seconds = max(1, math.ceil(wait))
    return error_response(ApiError(429, ERR_RATE, f"Too many requests {what}: retry in {seconds} s"),
                          {"Retry-After": str(seconds)})


def retry_after(error: ApiError) -> dict[str, str] | None:
    """The Retry-After header of a 429 (its message ends '... retry in N s')."""
    return {"Retry-After": error.msg.split()[-2]} if error.code == ERR_RATE else None


def base_url(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


class PlatformApi:
    def __init__(self, api: Api, limits: RateLimits) -> None:
        self.api = api
        self.per_key = RateLimiter(limits.per_key, limits.per_key_burst)
        self.per_source = RateLimiter(limits.per_source, limits.per_source_burst)
        failures = limits.auth_failures_per_minute
        self.auth_failures = RateLimiter(failures / 60.0, failures)

    async def handle(self, request: web.Request) -> web.Response:
        source = request.remote or ""
        wait = self.per_source.take(source)
        if wait:
            return _rate_limited(wait, "from this address")
        try:
            values = await _params(request)
        except web.HTTPRequestEntityTooLarge:
            return error_response(ApiError(413, ERR_TOO_LARGE, f"the request is over {MAX_BODY_BYTES} bytes"))
        except (UnicodeDecodeError, ValueError):
            return error_response(ApiError(400, ERR_PARAMETER, "the parameters are not UTF-8 form or query data"))
        name = request.match_info.get("method") or values.get("cmd", "")
        try:
            key_id = await self.authenticate(request, values, f"method {name[:60]!r}")
        except ApiError as exc:
            return error_response(exc, retry_after(exc))
        if not name:
            return error_response(ApiError(400, ERR_PARAMETER, "give the method: /platform_api/<Method> or cmd"))
        values = {k: v for k, v in values.items() if k not in ("cmd", "api_key", "account_id")}
        try:
            result = await self.call(name, values, key_id=key_id, source=source, base_url=base_url(request))
        except ApiError as exc:
            return error_response(exc)
        return web.json_response(result, dumps=_dumps)

    async def call(self, name: str, values: dict[str, str], *, key_id: str, source: str, base_url: str,
                   allowed: Callable[[Method], bool] = lambda method: True) -> dict[str, Any]:
        """Run one method for a caller already authenticated as key_id (an API key, or the web panel's
        "panel:<user>"), audit it if it writes; its answer, or ApiError. `allowed` is the caller's role."""
        method = METHODS.get(name)
        if method is None:
            raise ApiError(404, ERR_METHOD, f"unknown method {name[:60]!r}")
        params = Params(values, key_id=key_id, source=source, base_url=base_url)
        requested = time.time()
        error: ApiError | None = None
        result: dict[str, Any] = {}
        try:
            if not allowed(method):
                raise ApiError(403, ERR_FORBIDDEN, f"{name} is not allowed to this user's role")
            result = await self._run(method, params)
        except ApiError as exc:
            error = exc
        if method.writes:
            await self.api.db.call(self.api.audit.write, requested, key_id, source, name, params.values,
                                   error.code if error else 0, error.msg if error else "")
        if error is not None:
            raise error
        return result

    async def authenticate(self, request: web.Request, values: dict[str, str], what: str) -> str:
        """The key_id a request acts with; ApiError 401, or 429 while its source has failed too often or its
        key is over its rate. Also guards what else needs a key (recordings of secure applications)."""
        source = request.remote or ""
        wait = self.auth_failures.waiting(source)
        if wait:
            raise ApiError(429, ERR_RATE, f"Too many failed authentications from this address: retry in "
                           f"{max(1, math.ceil(wait))} s")
        try:
            key_id = await self.api.db.call(authenticate, self.api.keys, values,
                                            request.headers.get("Authorization", ""))
        except AuthError as exc:
            self.auth_failures.take(source)
            log.warning("management API: %s (from %s, %s)", exc, source, what)
            raise ApiError(401, ERR_AUTH, str(exc)) from None
        wait = self.per_key.take(key_id)
        if wait:
            raise ApiError(429, ERR_RATE, f"Too many requests with this key: retry in {max(1, math.ceil(wait))} s")
        return key_id

    async def _run(self, method: Method, params: Params) -> dict[str, Any]:
        try:
            if inspect.iscoroutinefunction(method.handler):
                result: dict[str, Any] = await method.handler(self.api, params)
            else:
                result = await self.api.db.call(self._in_transaction, method, params)
            for what in method.reload:
                await self.api.reload(what)
            return result
        except ApiError:
            raise
        except ScriptSyntaxError as exc:
            raise ApiError(400, ERR_SCRIPT, str(exc)) from None
        except NotFound as exc:
            raise ApiError(404, ERR_NOT_FOUND, str(exc)) from None
        except Conflict as exc:
            raise ApiError(409, ERR_EXISTS, str(exc)) from None
        except StoreError as exc:
            raise ApiError(400, ERR_PARAMETER, str(exc)) from None
        except Exception:
            log.exception("management API method %s failed", method.name)
            raise ApiError(500, ERR_INTERNAL, f"{method.name} failed on the box: its log has the details") from None

    def _in_transaction(self, method: Method, params: Params) -> dict[str, Any]:
        with self.api.db.transaction():
            result = method.handler(self.api, params)
            assert isinstance(result, dict)
            return result


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


async def _params(request: web.Request) -> dict[str, str]:
    params = dict(request.query)
    if request.method == "POST" and request.can_read_body:
        params.update({k: str(v) for k, v in (await request.post()).items()})
    return params
