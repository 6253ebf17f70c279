"""Running sessions in-process for the engine tests: an Engine over an in-memory store."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from appliance.clock import Clock, RealClock, VirtualClock
from appliance.engine.engine import Engine, check_script
from appliance.engine.session import ScriptSource, Session, SessionSpec
from appliance.harness import drive_virtual
from appliance.store.catalog import Catalog
from appliance.store.db import Database


@dataclass
class Lines:
    """What sessions logged: script lines and engine (system) lines, in order, thread-safe."""

    script: list[str] = field(default_factory=list)
    system: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def sink(self, text: str, system: bool) -> None:
        with self._lock:
            (self.system if system else self.script).append(text)


@dataclass
class Harness:
    engine: Engine
    db: Database
    clock: Clock
    application_id: int

    def start(self, *sources: str, custom_data: str = "", lines: Lines | None = None,
              secrets: dict[str, str] | None = None) -> Session:
        scripts = tuple(ScriptSource(f"s{i}.js", src) for i, src in enumerate(sources))
        spec = SessionSpec(scripts=scripts, application_id=self.application_id, application_name="test",
                           custom_data=custom_data, secrets=secrets or {})
        return self.engine.start_session(spec, sink=lines.sink if lines else None)

    async def finish(self, session: Session, timeout: float = 30.0) -> None:
        """Wait for the session to end: the virtual clock is driven, the real one awaited."""
        if isinstance(self.clock, VirtualClock):
            await asyncio.wait_for(drive_virtual(self.clock, session, self.clock.time() + 7200), timeout)
        else:
            await asyncio.wait_for(asyncio.shield(session.ended), timeout)

    async def run(self, *sources: str, custom_data: str = "", secrets: dict[str, str] | None = None) -> tuple[
            Session, Lines]:
        lines = Lines()
        session = self.start(*sources, custom_data=custom_data, lines=lines, secrets=secrets)
        await self.finish(session)
        return session, lines


@contextlib.asynccontextmanager
async def engine_harness(virtual: bool = True, workers: int = 2) -> AsyncIterator[Harness]:
    clock: Clock = VirtualClock() if virtual else RealClock(asyncio.get_running_loop())
    db = Database(":memory:")
    app = Catalog(db, check_script).add_application("test")
    engine = Engine(db, clock, workers=workers, base_url="http://127.0.0.1:9", log_dir=None)
    try:
        yield Harness(engine, db, clock, app.id)
    finally:
        await engine.stop()
        db.close()
