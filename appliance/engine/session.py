"""One JS session: its life from Started to Terminated, its timers, requests and HTTP replies.

The session object lives on the event loop; its QuickJS context lives on its worker thread. Every
piece of JS work is a *turn* submitted to the worker; the commands the turn queued come back to
the loop and are applied here, in order. The lifecycle is reference section 4.1:

    STARTING  -> init (on a context with the prelude loaded), the scenarios' top-level code, then
                 AppEvents.Started
    RUNNING   -> events, timers, requests
    STOPPING  -> terminate() was called (or an error, or idle): timers gone, queued requests dropped,
                 running HTTP/SMTP requests awaited (at most 90 s) with their callbacks run
    TERMINATING -> AppEvents.Terminating delivered; one more HTTP request allowed
    FINISHING -> AppEvents.Terminated delivered; only Logger.write works
    ENDED     -> the context is freed
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import logging
import secrets
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appliance.clock import Timer
from appliance.engine import limits, netio
from appliance.engine.calls import SessionCalls
from appliance.engine.errors import ScriptSyntaxError
from appliance.engine.jsruntime import Command, JsContext, ScriptFailure
from appliance.engine.media import SessionMedia, UnitService
from appliance.engine.players import SessionPlayers
from appliance.engine.recognizers import SessionRecognizers
from appliance.engine.recorders import SessionRecorders
from appliance.engine.sessionlog import LineSink, SessionLog
from appliance.engine.websockets import SessionWebSockets
from appliance.engine.worker import EngineWorker
from appliance.legs.leg import Leg
from appliance.store.db import StoreError
from appliance.tasks import TaskSet

if TYPE_CHECKING:
    from appliance.engine.engine import Engine

log = logging.getLogger(__name__)

FINISH_NORMAL = "Normal termination"
FINISH_ERROR = "JS session error"
FINISH_ADMIN = "Terminated administratively"


class Phase(enum.Enum):
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    TERMINATING = "terminating"
    FINISHING = "finishing"
    ENDED = "ended"


LIVE = (Phase.STARTING, Phase.RUNNING)


@dataclass(frozen=True)
class ScriptSource:
    filename: str  # as errors name it: the scenario's name or file path
    source: str


@dataclass(frozen=True)
class SessionSpec:
    """What a session runs and on whose behalf."""

    scripts: tuple[ScriptSource, ...]
    application_id: int | None = None
    application_name: str = ""
    rule_id: int | None = None
    rule_name: str = ""
    custom_data: str = ""
    secrets: Mapping[str, str] = field(default_factory=dict)
    initiator: str = ""


Turn = Callable[[JsContext], tuple[ScriptFailure | None, list[Command]]]


class Session:
    def __init__(
        self,
        engine: Engine,
        session_id: int,
        spec: SessionSpec,
        worker: EngineWorker,
        base_url: str,
        log_path: Path | None,
        sink: LineSink | None,
    ) -> None:
        self.engine = engine
        self.id = session_id
        self.spec = spec
        self.secret = secrets.token_hex(16)
        # The log's own link outlives the session (call history's log_file_url); the access secret does not.
        self.log_secret = secrets.token_hex(16)
        self.phase = Phase.STARTING
        self.custom_data = spec.custom_data
        self.system_error = False
        self.finish_reason = ""
        self.failure: ScriptFailure | None = None
        self.legs = SessionCalls(self, self._unit_event, self._legs_changed, self.note)
        self.players = SessionPlayers(session_id, engine.plane, engine.sources, engine.clock, self._unit_event)
        self.recorders = SessionRecorders(session_id, engine.plane, engine.recordings, engine.clock, self.deliver,
                                          self.legs.unit_of, engine.record_recording)
        self.recognizers = SessionRecognizers(session_id, engine.plane, engine.asr_thread, engine.clock, self.deliver)
        self.websockets = SessionWebSockets(session_id, engine.plane, self.deliver)
        # The media units scripts create, by the command op that drives them.
        self._units: dict[str, UnitService] = {
            "player": self.players, "recorder": self.recorders, "asr": self.recognizers, "ws": self.websockets,
        }
        self.media = SessionMedia(session_id, engine.plane, self._unit_of)
        self.hide_tones = False
        self.started_at = engine.clock.time()
        self.access_url = f"{base_url}/request/{session_id}/{self.secret}"
        self.log_url = f"{base_url}/logs/session/{session_id}/{self.log_secret}"
        self.log_path = log_path
        self.ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._loop = asyncio.get_running_loop()
        self._worker = worker
        self._ctx: JsContext | None = None  # touched only on the worker thread
        self._log = SessionLog(log_path, sink)  # touched only on the worker thread
        self._timers: dict[int, Timer] = {}
        self._idle: Timer | None = None
        self._deadline: Timer | None = None
        self._replies: dict[int, asyncio.Future[tuple[int, str]]] = {}
        self._reply_ids = itertools.count(1)
        self._ops = TaskSet(f"session {session_id}")
        self._active_ops = 0
        self._http_queue: deque[Command] = deque()
        self._http_running = 0
        self._mail_queue: deque[Command] = deque()
        self._mail_running = 0
        self._last_http_id: int | None = None  # the one request allowed after Terminating
        self._terminating_done = False

    # Turns

    def _turn(self, work: Turn, then: Callable[[], None] | None = None, create: bool = False) -> None:
        """Run `work` on the worker, apply what it queued on the loop, then call `then`.

        `create` takes the session's context first, on the thread that will run it for life.
        """
        clock = self.engine.clock
        clock.hold()

        def job() -> None:
            failure: ScriptFailure | None = None
            commands: list[Command] = []
            try:
                if create:
                    self._ctx = self._worker.new_context()
                ctx = self._ctx
                if ctx is not None and not ctx.dead:
                    failure, commands = work(ctx)
            except Exception:
                log.exception("session %d: engine failure in a turn", self.id)
                failure = ScriptFailure("error", "internal engine error", "", "")
            commands = self._write_logs(commands)
            self._loop.call_soon_threadsafe(self._after_turn, failure, commands, then)

        self._worker.submit(job)

    def _write_logs(self, commands: list[Command]) -> list[Command]:
        """Worker side: log lines go to the session log now; the rest goes back to the loop."""
        rest = []
        for cmd in commands:
            if cmd.get("op") == "log":
                self._log.write(str(cmd.get("text", "")), bool(cmd.get("system")), self.engine.clock.time())
            else:
                rest.append(cmd)
        return rest

    def _after_turn(
        self, failure: ScriptFailure | None, commands: list[Command], then: Callable[[], None] | None
    ) -> None:
        self.engine.clock.release()
        if self.phase is Phase.ENDED:
            return
        for cmd in commands:
            self._apply(cmd)
        if failure is not None:
            self._on_failure(failure)
        if then is not None and not self.ended.done() and self.phase.value != Phase.ENDED.value:
            then()

    def _event(self, event: Command, then: Callable[[], None] | None = None) -> None:
        event["now"] = self.engine.clock.time() * 1000.0
        self._turn(lambda ctx: ctx.dispatch(event), then)

    def note(self, text: str) -> None:
        """An engine line in the session log (written on the worker, in order with the script's)."""
        at = self.engine.clock.time()
        self._worker.submit(lambda: self._log.write(text, True, at))

    # Start

    def start(self, started: dict[str, Any]) -> None:
        init = {"type": "init", "now": self.engine.clock.time() * 1000.0, "session": self._init_data()}

        def work(ctx: JsContext) -> tuple[ScriptFailure | None, list[Command]]:
            failure, commands = ctx.dispatch(init)
            for script in self.spec.scripts:
                if failure is not None:
                    return failure, commands
                try:
                    code = self.engine.bytecode.get(ctx, script.filename, script.source)
                except ScriptSyntaxError as exc:
                    where = f"{exc.filename}:{exc.line}:{exc.column}"
                    return ScriptFailure("error", exc.message, where, ""), commands
                failure, out = ctx.run(code)
                commands += out
            if failure is None:
                failure, out = ctx.dispatch(
                    {"type": "app", "name": "Application.Started", "data": started,
                     "now": self.engine.clock.time() * 1000.0}
                )
                commands += out
            return failure, commands

        self._turn(work, self._running, create=True)

    def _init_data(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "customData": self.custom_data,
            "secrets": dict(self.spec.secrets),
            "applicationId": self.spec.application_id,
            "applicationName": self.spec.application_name,
            "clockRuns": self.engine.clock.runs_during_work,
        }

    def _running(self) -> None:
        if self.phase is Phase.STARTING:
            self.phase = Phase.RUNNING
            self._arm_idle()

    def _arm_idle(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        if not self.legs and self.phase in LIVE:
            self._idle = self.engine.clock.call_later(limits.IDLE_SESSION_SECONDS, self._idle_out)

    def _legs_changed(self, count: int) -> None:
        if count == 0:
            self._arm_idle()
        elif self._idle is not None:
            self._idle.cancel()
            self._idle = None

    def _unit_of(self, js_id: str) -> str | None:
        """The media plane's unit of a JS call, player, recorder, ASR or WebSocket id, once it has one."""
        unit = self.legs.unit_of(js_id)
        for service in self._units.values():
            unit = unit or service.unit_of(js_id)
        return unit

    def _unit_event(self, event: Command) -> None:
        """An event from a leg or player: to JS, then the routing and recordings follow what changed."""
        self.deliver(event)
        self.media.sync()
        self.recorders.sync()

    @property
    def live(self) -> bool:
        return self.phase in LIVE

    def deliver(self, event: Command) -> None:
        """An event into the session's JS, while it is live."""
        if self.phase in LIVE:
            self._event(event)

    def attach_incoming(self, leg: Leg) -> None:
        """An incoming call leg routed to this session: AppEvents.CallAlerting (after Started)."""
        self.legs.attach_incoming(leg)

    def _idle_out(self) -> None:
        self.note(f"no calls for {limits.IDLE_SESSION_SECONDS:g} s: the session ends")
        self.terminate()

    # Commands

    def _apply(self, cmd: Command) -> None:
        op = cmd.get("op")
        if self.phase is Phase.FINISHING:
            return  # in Terminated only Logger.write works, and logs were written on the worker
        if op == "timer":
            if self.phase in LIVE:
                self._set_timer(int(cmd["id"]), float(cmd["ms"]), bool(cmd["repeat"]))
        elif op == "untimer":
            timer = self._timers.pop(int(cmd["id"]), None)
            if timer is not None:
                timer.cancel()
        elif op == "terminate":
            self.terminate()
        elif op == "customData":
            self.custom_data = str(cmd["value"])
        elif op == "hideTones":
            self.hide_tones = bool(cmd["value"])
        elif op == "reply":
            future = self._replies.pop(int(cmd["id"]), None)
            if future is not None and not future.done():
                future.set_result((int(cmd["status"]), str(cmd["body"])))
        elif op == "http":
            self._request_http(cmd)
        elif op == "mail":
            if self.phase in LIVE:
                self._mail_queue.append(cmd)
                self._pump_mail()
        elif op == "storage":
            if self.phase in LIVE:
                self._start_op(int(cmd["id"]), "storage", self._storage(cmd))
        elif op == "call":
            self.legs.apply(cmd)
            self.media.sync()
        elif op == "dial":
            if self.phase in LIVE:
                self.legs.dial(cmd)
                self.media.sync()
        elif op in ("media", "conference"):
            if self.phase in LIVE:
                self.media.apply(cmd)
        elif op in self._units:
            if self.phase in LIVE or cmd.get("action") == "close":  # a WebSocket may be closed in Terminating
                self._units[op].apply(cmd)
                self.media.sync()  # a new unit may be routed at once
        else:
            log.warning("session %d: unknown command %r", self.id, op)

    def _set_timer(self, timer_id: int, ms: float, repeat: bool) -> None:
        def fire() -> None:
            self._timers.pop(timer_id, None)
            if self.phase not in LIVE:
                return
            # An interval is scheduled again once its callback has run, so slow callbacks never
            # pile up events on the worker.
            then = (lambda: self._set_timer(timer_id, ms, True)) if repeat else None
            self._event({"type": "timer", "id": timer_id}, then)

        if repeat and timer_id in self._timers:
            return
        self._timers[timer_id] = self.engine.clock.call_later(ms / 1000.0, fire)

    # Requests: HTTP, SMTP, storage

    def _request_http(self, cmd: Command) -> None:
        if self.phase in LIVE:
            self._http_queue.append(cmd)
            self._pump_http()
        elif self.phase is Phase.TERMINATING and self._last_http_id is None:
            self._last_http_id = int(cmd["id"])
            self._http_running += 1
            self._start_op(int(cmd["id"]), "http", self.engine.http.fetch(cmd))
        elif self.phase is Phase.TERMINATING:
            result = {"code": 0, "error": "only one HTTP request may be made after Terminating"}
            self._event({"type": "result", "id": cmd["id"], "result": result})
        # STOPPING: a request made now would be queued, and queued requests are dropped.

    def _pump_http(self) -> None:
        while self._http_queue and self._http_running < limits.HTTP_ACTIVE:
            cmd = self._http_queue.popleft()
            self._http_running += 1
            if cmd.get("systemLog") and cmd.get("body"):
                self.note(f"HTTP {cmd['method']} {cmd['url']} body: {cmd['body']}")
            self._start_op(int(cmd["id"]), "http", self.engine.http.fetch(cmd))

    def _pump_mail(self) -> None:
        while self._mail_queue and self._mail_running < limits.SMTP_ACTIVE:
            cmd = self._mail_queue.popleft()
            self._mail_running += 1
            self._start_op(int(cmd["id"]), "mail", netio.send_mail(cmd))

    async def _storage(self, cmd: Command) -> Command:
        app_id = self.spec.application_id
        if app_id is None:
            return {"error": "ApplicationStorage needs the session to belong to an application"}
        kv, db, now = self.engine.kv, self.engine.db, self.engine.clock.time()
        try:
            method = cmd["method"]
            if method == "get":
                item = await db.call(kv.get, app_id, cmd["key"], now)
                value = None if item is None else {"key": item.key, "value": item.value, "expireAt": item.expire_at}
            elif method == "put":
                item = await db.call(kv.put, app_id, cmd["key"], cmd["value"], cmd["ttl"], now)
                value = {"key": item.key, "value": item.value, "expireAt": item.expire_at}
            elif method == "remove":
                item = await db.call(kv.remove, app_id, cmd["key"])
                value = {"key": item.key, "value": item.value, "expireAt": 0}
            elif method == "keys":
                value = {"keys": await db.call(kv.keys, app_id, cmd["pattern"], cmd["count"], now)}
            else:
                return {"error": f"unknown storage method {method!r}"}
        except StoreError as exc:
            return {"error": str(exc)}
        return {"value": value}

    def _start_op(self, op_id: int, kind: str, work: Awaitable[Command]) -> None:
        self._active_ops += 1
        clock = self.engine.clock
        clock.hold()

        async def run() -> None:
            try:
                result = await work
            finally:
                clock.release()
            event = {"type": "storage", "id": op_id, **result} if kind == "storage" else {
                "type": "result", "id": op_id, "result": result}
            self._event(event, lambda: self._op_done(op_id, kind))

        self._ops.spawn(run())

    def _op_done(self, op_id: int, kind: str) -> None:
        self._active_ops -= 1
        if kind == "http":
            self._http_running -= 1
            self._pump_http()
        elif kind == "mail":
            self._mail_running -= 1
            self._pump_mail()
        if self.phase is Phase.STOPPING and self._active_ops == 0:
            self._begin_terminating()
        elif self.phase is Phase.TERMINATING and op_id == self._last_http_id:
            self._last_http_id = -1
            self._maybe_terminated()

    # HTTP requests to the session URL

    async def http_request(self, method: str, path: str, content: str, headers: list[dict[str, str]]) -> tuple[
            int, str]:
        """AppEvents.HttpRequest; the handler's return value is the response body."""
        if self.phase not in LIVE:
            return 503, "the session is ending"
        reply_id = next(self._reply_ids)
        future: asyncio.Future[tuple[int, str]] = self._loop.create_future()
        self._replies[reply_id] = future
        data = {"method": method, "path": path, "content": content, "headers": headers}
        self._event({"type": "app", "name": "Application.HttpRequest", "data": data, "reply": reply_id})
        try:
            return await asyncio.wait_for(asyncio.shield(future), limits.HTTP_REQUEST_REPLY_SECONDS)
        except TimeoutError:
            self._replies.pop(reply_id, None)
            return 504, "the scenario did not answer in time"

    # Termination

    def terminate(self, system_error: bool = False, reason: str | None = None) -> None:
        """Start the termination sequence (reference section 4.1, step 5); safe to call again."""
        if self.phase not in LIVE:
            self.system_error = self.system_error or system_error
            return
        self.phase = Phase.STOPPING
        self.legs.hangup_all()  # a session's calls end with it
        self.system_error = system_error
        self.finish_reason = reason or (FINISH_ERROR if system_error else FINISH_NORMAL)
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        if self._idle is not None:
            self._idle.cancel()
        self._http_queue.clear()  # queued, not started: dropped silently
        self._mail_queue.clear()
        if self._active_ops == 0:
            self._begin_terminating()
        else:
            self._deadline = self.engine.clock.call_later(limits.TERMINATION_WAIT_SECONDS, self._give_up_waiting)

    def _give_up_waiting(self) -> None:
        if self.phase is Phase.STOPPING:
            self.note(f"requests still running after {limits.TERMINATION_WAIT_SECONDS:g} s are abandoned")
            self._active_ops = 0
            self._ops.cancel()
            self._begin_terminating()

    def _begin_terminating(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self.phase = Phase.TERMINATING
        self._event(
            {"type": "app", "name": "Application.Terminating", "data": {"systemError": self.system_error}},
            self._terminating_delivered,
        )

    def _terminating_delivered(self) -> None:
        self._terminating_done = True
        self._maybe_terminated()

    def _maybe_terminated(self) -> None:
        # Terminated follows the Terminating handler, and the one request it may have made.
        if self.phase is Phase.TERMINATING and self._terminating_done and self._last_http_id in (None, -1):
            self.phase = Phase.FINISHING
            self._event(
                {"type": "app", "name": "Application.Terminated", "data": {"systemError": self.system_error}},
                self._finish,
            )

    def _on_failure(self, failure: ScriptFailure) -> None:
        self.failure = self.failure or failure
        detail = f"\n{failure.stack.rstrip()}" if failure.stack else ""
        self.note(f"script error ({failure.kind}): {failure}{detail}")
        log.warning("session %d: %s", self.id, failure)
        if failure.kind == "memory":
            # The context must never run again: no Terminating, no Terminated.
            self.system_error = True
            self.finish_reason = FINISH_ERROR
            self._finish()
        elif self.phase in LIVE:
            self.terminate(system_error=True)
        else:
            self.system_error = True

    def _finish(self) -> None:
        if self.phase is Phase.ENDED:
            return
        self.phase = Phase.ENDED
        self.media.close()
        self.recorders.close()
        self.recognizers.close()
        self.players.close()
        for timer in (*self._timers.values(), self._idle, self._deadline):
            if timer is not None:
                timer.cancel()
        self._timers.clear()
        self._ops.cancel()
        self._ops.spawn(self.websockets.close())  # after cancel(): closing sockets takes a moment
        for future in self._replies.values():
            if not future.done():
                future.set_result((503, "the session ended"))
        self._replies.clear()
        self.finish_reason = self.finish_reason or FINISH_NORMAL
        reason = self.finish_reason + (" (system error)" if self.system_error else "")
        at = self.engine.clock.time()
        self.engine.clock.hold()

        def close() -> None:
            self._log.write(f"session ended: {reason}", True, at)
            self._log.close()
            if self._ctx is not None:
                self._ctx.close()
                self._ctx = None
            self._loop.call_soon_threadsafe(self._closed)

        self._worker.submit(close)

    def _closed(self) -> None:
        self.engine.clock.release()
        self.engine.session_ended(self)
        if not self.ended.done():
            self.ended.set_result(None)

    async def close_requests(self) -> None:
        """Cancel and await requests still running (engine shutdown)."""
        await self._ops.close()
