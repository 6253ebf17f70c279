"""The appliance's HTTP server: the management API, session URLs and session logs."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from appliance.engine import limits
from appliance.engine.engine import Engine
from appliance.engine.recorders import RECORDS_PATH
from appliance.engine.session import Session
from appliance.router import Router, RoutingError
from appliance.store.apikeys import ApiKeys
from appliance.web.auth import authorized

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
ENGINE_KEY = web.AppKey("engine", Engine)
ROUTER_KEY = web.AppKey("router", Router)
KEYS_KEY = web.AppKey("keys", ApiKeys)
Health = Callable[[], dict[str, object]]
HEALTH_KEY: web.AppKey[Health] = web.AppKey("health")

# Error codes of the management API's {"error": {"code", "msg"}} answers.
ERR_AUTH = 100
ERR_PARAMETER = 101
ERR_NOT_FOUND = 102
ERR_METHOD = 103


def api_error(status: int, code: int, msg: str) -> web.Response:
    return web.json_response({"error": {"code": code, "msg": msg}}, status=status)


def base_url(request: web.Request) -> str:
    """Where the caller reached us: session URLs handed back must work from there."""
    return f"{request.scheme}://{request.host}"


async def _params(request: web.Request) -> dict[str, str]:
    params = dict(request.query)
    if request.method == "POST" and request.can_read_body:
        params.update({k: str(v) for k, v in (await request.post()).items()})
    return params


async def platform_api(request: web.Request) -> web.Response:
    """/platform_api/<Method> or /platform_api with cmd=<Method>, form or query parameters."""
    params = await _params(request)
    method = request.match_info.get("method") or params.get("cmd", "")
    if not await authorized(request, params, request.app[KEYS_KEY]):
        return api_error(401, ERR_AUTH, "Authorization failed: give account_id and api_key, or a Bearer key")
    if not method:
        return api_error(400, ERR_PARAMETER, "Give the method: /platform_api/<Method> or the cmd parameter")
    handler = METHODS.get(method)
    if handler is None:
        return api_error(404, ERR_METHOD, f"Unknown method {method!r}")
    return await handler(request, params)


def _int_param(params: dict[str, str], name: str) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise web.HTTPBadRequest(
            text=f'{{"error":{{"code":{ERR_PARAMETER},"msg":"{name} must be a number"}}}}',
            content_type="application/json",
        ) from None


async def start_scenarios(request: web.Request, params: dict[str, str]) -> web.Response:
    router, engine = request.app[ROUTER_KEY], request.app[ENGINE_KEY]
    if not params.get("rule_id") and not params.get("rule_name"):
        return api_error(400, ERR_PARAMETER, "rule_id or rule_name is required")
    try:
        route = router.table.rule(
            rule_id=_int_param(params, "rule_id"),
            rule_name=params.get("rule_name") or None,
            application_id=_int_param(params, "application_id"),
            application_name=params.get("application_name") or None,
        )
    except RoutingError as exc:
        return api_error(404, ERR_NOT_FOUND, str(exc))
    custom_data = params.get("script_custom_data", "")
    if len(custom_data) > limits.CUSTOM_DATA_CHARS:
        return api_error(400, ERR_PARAMETER, f"script_custom_data is limited to {limits.CUSTOM_DATA_CHARS} characters")
    spec = route.spec(custom_data, await router.secrets(route), initiator=f"StartScenarios from {request.remote}")
    session = engine.start_session(spec, base_url=base_url(request))
    return web.json_response(
        {
            "result": 1,
            "media_session_access_url": session.access_url,
            "media_session_access_secure_url": "",
            "call_session_history_id": session.id,
        }
    )


async def get_health(request: web.Request, params: dict[str, str]) -> web.Response:
    """The box's vital counts (an appliance method): sessions, their calls, lines' calls, the media plane."""
    return web.json_response({"result": request.app[HEALTH_KEY]()})


METHODS: dict[str, Callable[[web.Request, dict[str, str]], Awaitable[web.Response]]] = {
    "StartScenarios": start_scenarios,
    "GetHealth": get_health,
}


async def session_request(request: web.Request) -> web.StreamResponse:
    """Any request to a session's access URL fires AppEvents.HttpRequest in that session."""
    engine = request.app[ENGINE_KEY]
    session = engine.find(int(request.match_info["session_id"]), request.match_info["secret"])
    if session is None:
        return web.Response(status=404, text="no such session")
    headers = [{"key": k, "value": v} for k, v in request.headers.items() if k.lower().startswith("x-")]
    if request.headers.get("Upgrade", "").lower() == "websocket":
        return await session_websocket(request, session, headers)
    content = (await request.read()).decode("utf-8", errors="replace")
    status, body = await session.http_request(request.method, request.path_qs, content, headers)
    return web.Response(status=status, text=body)


async def session_websocket(request: web.Request, session: Session,
                            headers: list[dict[str, str]]) -> web.StreamResponse:
    """A WebSocket to the session's URL: AppEvents.NewWebSocketConnection, or NewWebSocketFailed and 403."""
    info = {"method": request.method, "path": request.path_qs, "content": "", "headers": headers}
    reason = session.websockets.refusal(len(session.legs)) if session.live else "the session is ending"
    if reason is not None:
        session.deliver({"type": "app", "name": "Application.OnNewWebSocketFailed", "data": {**info, "reason": reason}})
        return web.Response(status=403, text=reason)
    ws = web.WebSocketResponse(protocols=("chat",))
    await ws.prepare(request)
    await session.websockets.serve(ws, lambda js_id: session.deliver(
        {"type": "websocket", "event": "incoming", "id": js_id, "url": session.access_url, "data": info}))
    return ws


async def session_log(request: web.Request) -> web.StreamResponse:
    engine = request.app[ENGINE_KEY]
    session_id = int(request.match_info["session_id"])
    session = engine.find(session_id, request.match_info["secret"])
    if session is not None:
        path = session.log_path
    else:
        # An ended session: its log file is in the history, and the secret died with the session.
        return web.Response(status=404, text="the session has ended: read its log through the call history")
    if path is None:
        return web.Response(text="", content_type="text/plain")
    # FileResponse answers 404 itself while the session has written nothing yet.
    return web.FileResponse(path, headers={"Content-Type": "text/plain; charset=utf-8"})


async def recording(request: web.Request) -> web.StreamResponse:
    """A recording by the unguessable name in its URL (as Voximplant's record URLs are links)."""
    recordings = request.app[ENGINE_KEY].recordings
    name = request.match_info["name"]
    path = recordings.store.directory / name if recordings is not None else None
    if path is None or not path.is_file():
        return web.Response(status=404, text="no such recording (it may have expired)")
    return web.FileResponse(path, headers={"Content-Type": "audio/mpeg" if name.endswith(".mp3") else "audio/wav"})


def make_app(engine: Engine, router: Router, keys: ApiKeys, health: Health) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[HEALTH_KEY] = health
    app[ENGINE_KEY] = engine
    app[ROUTER_KEY] = router
    app[KEYS_KEY] = keys
    app.router.add_route("*", "/platform_api", platform_api)
    app.router.add_route("*", "/platform_api/{method}", platform_api)
    app.router.add_route("*", r"/request/{session_id:\d+}/{secret:[0-9a-f]+}{tail:(/.*)?}", session_request)
    app.router.add_get(r"/logs/session/{session_id:\d+}/{secret:[0-9a-f]+}", session_log)
    app.router.add_get(RECORDS_PATH + r"/{name:[A-Za-z0-9_.-]+\.(?:mp3|wav)}", recording)
    return app

