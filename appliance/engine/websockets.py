"""A session's WebSockets: `VoxEngine.createWebSocket(url)` and media over them (reference 3.7).

Each socket is a client connection (aiohttp) owned by the session, and a media unit:
- as a sink (`call.sendMediaTo(ws, {encoding, tag, customParameters})`) it sends the audio it hears as
  Voximplant's start / media / stop JSON messages, one media message per 20 ms tick, while the
  graph gives it a source (start when one appears, stop when it goes);
- as a source (`ws.sendMediaTo(call)`) it plays what the peer sends in the same format, buffered and
  re-chunked to real time (media/wsmedia.py), with MEDIA_STARTED / MEDIA_ENDED events.
Other text frames are WebSocket.Message events. Connections are not closed when calls end, only by
`close()` or when the session ends, as on Voximplant.

After `VoxEngine.allowWebSocketConnections()`, WebSockets opened to the session's URL are accepted
(AppEvents.NewWebSocketConnection) up to the session's calls + `EXTRA_INCOMING`; beyond that, or
before allowing, they are refused (AppEvents.NewWebSocketFailed) with 403. Both kinds are served by
the same loop: text and media in, queued messages out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import web

from appliance.media.audio import Frame
from appliance.media.graph import Graph
from appliance.media.plane import MediaPlane
from appliance.media.wsmedia import (
    InboundStream,
    MediaEnded,
    MediaStarted,
    OutboundStream,
    StreamEvent,
    WsMediaError,
)
from appliance.tasks import TaskSet

log = logging.getLogger(__name__)

Command = dict[str, Any]
CONNECT_TIMEOUT_S = 10.0
MEDIA_EVENTS = ('"event":"start"', '"event":"media"', '"event":"stop"')  # cheap test before parsing
SEND_QUEUE_LIMIT = 500  # messages (10 s of media) waiting for a slow peer before audio is dropped
EXTRA_INCOMING = 3  # incoming sockets allowed beyond the session's number of calls (Voximplant's rule)
Connection = aiohttp.ClientWebSocketResponse | web.WebSocketResponse


class SocketUnit:
    """The media side of one WebSocket."""

    def __init__(self, unit_id: str, graph: Graph, now: Callable[[], float], send: Callable[[str], None],
                 on_media: Callable[[StreamEvent], None]) -> None:
        self.id = unit_id
        self._graph = graph
        self._now = now
        self._send = send
        self.outbound: OutboundStream | None = None
        self.params: dict[str, Any] = {}  # of the latest sendMediaTo(ws, params)
        self.inbound = InboundStream(on_event=on_media)

    def output(self) -> Frame | None:
        self.inbound.tick(self._now())  # MEDIA_ENDED after a second without input
        return self.inbound.next_frame()

    def input(self, frame: Frame) -> None:
        if self._graph.source_of(self.id) is None:
            if self.outbound is not None:  # the source went (stopMediaTo): end the stream
                self._send(self.outbound.stop())
                self.outbound = None
            return
        if self.outbound is None:
            p = self.params
            self.outbound = OutboundStream(str(p.get("encoding") or "PCM8"), p.get("tag"), p.get("customParameters"))
            self._send(self.outbound.start())
        self._send(self.outbound.frame(frame))


class Socket:
    def __init__(self, js_id: str, unit: SocketUnit) -> None:
        self.js_id = js_id
        self.unit = unit
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.ws: Connection | None = None
        self.dropped = 0


class SessionWebSockets:
    def __init__(self, session_id: int, plane: MediaPlane | None, deliver: Callable[[Command], None]) -> None:
        self._session_id = session_id
        self._plane = plane
        self._deliver = deliver
        self._sockets: dict[str, Socket] = {}
        self._tasks = TaskSet(f"session {session_id} websockets")
        self._http: aiohttp.ClientSession | None = None
        self.allowed = False  # allowWebSocketConnections() was called
        self._incoming = 0

    def unit_of(self, js_id: str) -> str | None:
        socket = self._sockets.get(js_id)
        return socket.unit.id if socket is not None else None

    def _event(self, js_id: str, name: str, data: dict[str, Any]) -> None:
        self._deliver({"type": "websocket", "id": js_id, "name": f"WebSocket.{name}", "data": data})

    def apply(self, cmd: Command) -> None:
        if cmd.get("action") == "allow":
            self.allowed = True
            return
        js_id, action = str(cmd["id"]), cmd.get("action")
        if action == "connect":
            self._connect(js_id, cmd)
            return
        socket = self._sockets.get(js_id)
        if socket is None:
            return
        if action == "send":
            self._queue(socket, str(cmd.get("text", "")))
        elif action == "params":
            socket.unit.params = dict(cmd.get("params") or {})
        elif action == "clear":
            socket.unit.inbound.clear()
        elif action == "close":
            socket.queue.put_nowait(None)

    def _queue(self, socket: Socket, text: str) -> None:
        if socket.queue.qsize() >= SEND_QUEUE_LIMIT:
            socket.dropped += 1
            return
        socket.queue.put_nowait(text)

    def _socket(self, js_id: str) -> Socket:
        """A new socket's media unit in the graph."""
        assert self._plane is not None
        holder: list[Socket] = []
        unit = SocketUnit(f"s{self._session_id}-{js_id}", self._plane.graph, self._plane.now,
                          lambda text: self._queue(holder[0], text), lambda event: self._media_event(js_id, event))
        socket = Socket(js_id, unit)
        holder.append(socket)
        self._sockets[js_id] = socket
        self._plane.graph.add(unit)
        return socket

    def _connect(self, js_id: str, cmd: Command) -> None:
        if self._plane is None or js_id in self._sockets:
            self._event(js_id, "Error", {})
            return
        socket = self._socket(js_id)
        self._tasks.spawn(self._run(socket, str(cmd.get("url", "")), list(cmd.get("protocols") or []),
                                    [(str(h.get("name")), str(h.get("value"))) for h in cmd.get("headers") or []]))

    def refusal(self, calls: int) -> str | None:
        """Why an incoming socket cannot be accepted now, or None."""
        if self._plane is None:
            return "media is not available in this engine"
        if not self.allowed:
            return "the scenario did not call VoxEngine.allowWebSocketConnections()"
        if self._incoming >= calls + EXTRA_INCOMING:
            return f"at most {calls + EXTRA_INCOMING} incoming WebSockets (calls + {EXTRA_INCOMING})"
        return None

    async def serve(self, ws: web.WebSocketResponse, announce: Callable[[str], None]) -> None:
        """An accepted incoming socket, served until it closes; `announce(js_id)` tells JS about it."""
        self._incoming += 1
        js_id = f"websocket-in-{self._incoming}"
        socket = self._socket(js_id)
        announce(js_id)
        await self._serve(socket, ws)

    def _media_event(self, js_id: str, event: StreamEvent) -> None:
        if isinstance(event, MediaStarted):
            self._event(js_id, "MediaEventStarted", {"tag": event.tag, "encoding": event.encoding,
                                                     "customParameters": event.custom_parameters})
        elif isinstance(event, MediaEnded):
            self._event(js_id, "MediaEventEnded", {"tag": event.tag, "mediaInfo": {"duration": event.duration}})

    async def _run(self, socket: Socket, url: str, protocols: list[str], headers: list[tuple[str, str]]) -> None:
        if self._http is None:
            self._http = aiohttp.ClientSession()
        try:
            ws = await self._http.ws_connect(url, protocols=protocols, headers=headers,
                                             timeout=aiohttp.ClientWSTimeout(ws_close=CONNECT_TIMEOUT_S))
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
            log.info("session %d: WebSocket %s: %s", self._session_id, url, exc)
            self._event(socket.js_id, "Error", {})
            self._event(socket.js_id, "Close", {"code": 1006, "reason": str(exc), "wasClean": False})
            self._forget(socket.js_id)
            return
        self._event(socket.js_id, "Open", {})
        await self._serve(socket, ws)

    async def _serve(self, socket: Socket, ws: Connection) -> None:
        socket.ws = ws
        sender = asyncio.get_running_loop().create_task(self._send_all(socket, ws))
        try:
            async for message in ws:
                if message.type == aiohttp.WSMsgType.TEXT:
                    self._received(socket, str(message.data))
                elif message.type == aiohttp.WSMsgType.ERROR:
                    self._event(socket.js_id, "Error", {})
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
            await ws.close()
            self._event(socket.js_id, "Close", {"code": ws.close_code or 1006, "reason": "",
                                                "wasClean": ws.close_code == 1000})
            self._forget(socket.js_id)

    def _received(self, socket: Socket, text: str) -> None:
        compact = text.replace(" ", "")
        if any(marker in compact for marker in MEDIA_EVENTS):
            try:
                socket.unit.inbound.receive(text)
                return
            except WsMediaError as exc:
                log.info("session %d: WebSocket media refused: %s", self._session_id, exc)
        self._event(socket.js_id, "Message", {"text": text})

    async def _send_all(self, socket: Socket, ws: Connection) -> None:
        while True:
            text = await socket.queue.get()
            if text is None:
                await ws.close()
                return
            await ws.send_str(text)

    def _forget(self, js_id: str) -> None:
        socket = self._sockets.pop(js_id, None)
        if socket is not None and self._plane is not None:
            self._plane.release(socket.unit)

    async def close(self) -> None:
        """The session ended: every connection is closed."""
        for socket in list(self._sockets.values()):
            socket.queue.put_nowait(None)
        await self._tasks.close()
        for js_id in list(self._sockets):
            self._forget(js_id)
        if self._http is not None:
            await self._http.close()
