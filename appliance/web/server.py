"""The appliance's HTTP server: the management API, session URLs, session logs and recordings.

The same application is served over HTTP and HTTPS (appliance run --http / --https).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
from pathlib import Path

from aiohttp import web

from appliance.engine.engine import Engine
from appliance.engine.recorders import RECORDS_PATH
from appliance.engine.session import Session
from appliance.web.api import ApiError
from appliance.web.panel import add_panel
from appliance.web.panel.core import PANEL_KEY
from appliance.web.platform import MAX_BODY_BYTES, PlatformApi, error_response, retry_after

log = logging.getLogger(__name__)

ENGINE_KEY = web.AppKey("engine", Engine)
PLATFORM_KEY = web.AppKey("platform", PlatformApi)
FOLLOW_POLL_SECONDS = 0.25
_RECORDING_SESSION = re.compile(r"s(\d{1,18})-")  # recordings are named s<session id>-... (engine/recorders.py)


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
    """A session's log by its link (call history's log_file_url), during the session and after it.

    With ?follow=1 the answer streams the log as it grows and ends when the session has ended.
    """
    engine = request.app[ENGINE_KEY]
    session_id, secret = int(request.match_info["session_id"]), request.match_info["secret"]
    session = engine.sessions.get(session_id)
    if session is not None and hmac.compare_digest(session.log_secret, secret):
        path = session.log_path
    else:
        record = await engine.db.call(engine.history.session, session_id)
        if record is None or not record.log_secret or not hmac.compare_digest(record.log_secret, secret):
            return web.Response(status=404, text="no such session log")
        path = Path(record.log_file) if record.log_file else None
    follow = request.query.get("follow", "") in ("1", "true")
    if not follow:
        if path is None or not path.is_file():
            return web.Response(text="", content_type="text/plain")
        return web.FileResponse(path, headers={"Content-Type": "text/plain; charset=utf-8"})
    return await _follow(request, engine, session_id, path)


async def _follow(request: web.Request, engine: Engine, session_id: int, path: Path | None) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-cache"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    offset = 0
    while True:
        running = session_id in engine.sessions
        chunk = await asyncio.to_thread(_read_from, path, offset) if path is not None else b""
        if chunk:
            offset += len(chunk)
            await response.write(chunk)
        elif not running:
            break
        else:
            await asyncio.sleep(FOLLOW_POLL_SECONDS)
    await response.write_eof()
    return response


def _read_from(path: Path, offset: int) -> bytes:
    try:
        with path.open("rb") as f:
            f.seek(offset)
            return f.read(1 << 16)
    except FileNotFoundError:
        return b""


async def recording(request: web.Request) -> web.StreamResponse:
    """A recording by the unguessable name in its URL (as Voximplant's record URLs are links). Those of an
    application with secure_record_storage also need a key, as the management API takes it."""
    engine = request.app[ENGINE_KEY]
    name = request.match_info["name"]
    owner = _RECORDING_SESSION.match(name)
    secure = owner is not None and await engine.db.call(engine.history.secure_records, int(owner.group(1)))
    if secure and not await _panel_user(request):
        try:
            await request.app[PLATFORM_KEY].authenticate(request, dict(request.query), f"recording {name}")
        except ApiError as exc:
            return error_response(exc, retry_after(exc))
    recordings = engine.recordings
    path = recordings.store.directory / name if recordings is not None else None
    if path is None or not path.is_file():
        return web.Response(status=404, text="no such recording (it may have expired)")
    return web.FileResponse(path, headers={"Content-Type": "audio/mpeg" if name.endswith(".mp3") else "audio/wav"})


async def _panel_user(request: web.Request) -> bool:
    """Whether a signed-in panel user asks (the panel plays recordings in the page)."""
    return (await request.app[PANEL_KEY].visitor(request)).session is not None


def make_app(engine: Engine, platform: PlatformApi) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[ENGINE_KEY] = engine
    app[PLATFORM_KEY] = platform
    app.router.add_route("*", "/platform_api", platform.handle)
    app.router.add_route("*", "/platform_api/{method}", platform.handle)
    app.router.add_route("*", r"/request/{session_id:\d{1,18}}/{secret:[0-9a-f]{1,64}}{tail:(/.*)?}", session_request)
    app.router.add_get(r"/logs/session/{session_id:\d{1,18}}/{secret:[0-9a-f]{32}}", session_log)
    add_panel(app, platform)
    app.router.add_get(RECORDS_PATH + r"/{name:[A-Za-z0-9_.-]+\.(?:mp3|wav)}", recording)
    return app
