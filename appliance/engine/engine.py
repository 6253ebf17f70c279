"""The session engine: starts sessions on worker threads, finds them, records them, stops them."""

from __future__ import annotations

import asyncio
import hmac
import logging
from pathlib import Path

from appliance.clock import Clock
from appliance.engine import limits
from appliance.engine.calls import Conferences, Dialer
from appliance.engine.errors import EngineError, ScriptSyntaxError
from appliance.engine.jsruntime import BytecodeCache, JsContext
from appliance.engine.netio import HttpClient
from appliance.engine.players import MediaSources
from appliance.engine.recorders import Recordings
from appliance.engine.session import FINISH_ADMIN, Session, SessionSpec
from appliance.engine.sessionlog import LineSink
from appliance.engine.worker import EngineWorker
from appliance.media.asr import AsrThread
from appliance.media.plane import MediaPlane
from appliance.store.db import DEFAULT_ACCOUNT_ID, Database
from appliance.store.history import History, LegRecord, RecordRecord, SessionRecord
from appliance.store.kv import KeyValueStore
from appliance.tasks import TaskSet

log = logging.getLogger(__name__)

STOP_GRACE_SECONDS = 10.0


def check_script(filename: str, source: str) -> None:
    """Refuse a scenario that is too long or does not compile (ScriptSyntaxError with file and line)."""
    if len(source) > limits.SCENARIO_CHARS:
        raise ScriptSyntaxError(filename, 0, 0, f"the scenario is longer than {limits.SCENARIO_CHARS} characters")
    ctx = JsContext()
    try:
        ctx.compile(filename, source)
    finally:
        ctx.close()


class Engine:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        workers: int,
        base_url: str,
        log_dir: Path | None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.kv = KeyValueStore(db)
        self.history = History(db)
        self.bytecode = BytecodeCache()
        self.http = HttpClient()
        self.base_url = base_url
        self.log_dir = log_dir
        self.sessions: dict[int, Session] = {}
        self.calls_started = 0  # legs sessions took since start (the panel's figure)
        self.dialer: Dialer | None = None  # the lines scripts call out through (set once they are up)
        self.conferences: Conferences | None = None  # where callConference goes (the call router)
        self.plane: MediaPlane | None = None  # where calls' audio is routed and mixed (set once it runs)
        self.sources: MediaSources | None = None  # where players get audio (URL fetcher, TTS cache)
        self.recordings: Recordings | None = None  # where recordings are written and served from
        self.asr_thread: AsrThread | None = None  # where speech is recognised
        self.sink: LineSink | None = None  # where session log lines also go when a session has no sink of its own
        self._workers = [EngineWorker(i) for i in range(workers)]
        self._next_id = self.history.next_session_id()
        self._tasks = TaskSet("engine")
        self._stopping = False

    def start_session(self, spec: SessionSpec, base_url: str | None = None, sink: LineSink | None = None) -> Session:
        """Create a session and start it; its JS runs on the least loaded worker."""
        if self._stopping:
            raise EngineError("the engine is stopping")
        session_id = self._next_id
        self._next_id += 1
        worker = min(self._workers, key=lambda w: w.sessions)
        worker.sessions += 1
        log_path = self.log_dir / f"{session_id}.log" if self.log_dir is not None else None
        session = Session(self, session_id, spec, worker, base_url or self.base_url, log_path, sink or self.sink)
        self.sessions[session_id] = session
        record = SessionRecord(
            session_id, spec.application_id, spec.application_name, spec.rule_id, spec.rule_name,
            session.started_at, spec.custom_data, spec.initiator, str(log_path or ""), session.log_secret,
        )
        self._tasks.spawn(self.db.call(self.history.session_started, record))
        session.start(
            {
                "accessURL": session.access_url,
                "accessSecureURL": "",
                "accountId": DEFAULT_ACCOUNT_ID,
                "applicationId": spec.application_id,
                "logURL": session.log_url,
                "sessionId": session_id,
            }
        )
        return session

    def find(self, session_id: int, secret: str) -> Session | None:
        session = self.sessions.get(session_id)
        if session is None or not hmac.compare_digest(session.secret, secret):
            return None
        return session

    def record_leg(self, record: LegRecord) -> None:
        self._tasks.spawn(self.db.call(self.history.leg_ended, record))

    def record_recording(self, record: RecordRecord) -> None:
        self._tasks.spawn(self.db.call(self.history.record_ended, record))

    def session_ended(self, session: Session) -> None:
        self.sessions.pop(session.id, None)
        session._worker.sessions -= 1
        self._tasks.spawn(self._record_end(session))

    async def _record_end(self, session: Session) -> None:
        await session.close_requests()
        await self.db.call(
            self.history.session_ended, session.id, self.clock.time(),
            session.finish_reason + (" (system error)" if session.system_error else ""), session.custom_data,
        )

    async def stop(self) -> None:
        """Terminate every session (they get Terminating and Terminated), then stop the workers."""
        self._stopping = True
        live = list(self.sessions.values())
        for session in live:
            session.terminate(reason=FINISH_ADMIN)
        if live:
            _, late = await asyncio.wait([s.ended for s in live], timeout=STOP_GRACE_SECONDS)
            if late:
                log.warning("%d sessions did not end within %g s", len(late), STOP_GRACE_SECONDS)
        await self._tasks.wait()
        loop = asyncio.get_running_loop()
        for worker in self._workers:
            await loop.run_in_executor(None, worker.stop)
        await self.http.close()
