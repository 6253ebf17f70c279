"""`appliance exec`: run scenarios in one throwaway session, to test them offline.

The session runs on a virtual clock unless --real-time is given: time jumps to the next timer when
nothing else is pending, so a 60 s idle timeout costs no wall time. Standard output carries only
the scenario's Logger.write / console.log lines, verbatim; everything else goes to standard error.
Exit status: 0 when the session ended normally, 1 when it ended with a system error (script error,
limit, timeout), 2 on a usage error.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from pathlib import Path

from appliance.clock import Clock, RealClock, VirtualClock
from appliance.engine.engine import Engine, check_script
from appliance.engine.errors import ScriptSyntaxError
from appliance.engine.session import ScriptSource, Session, SessionSpec
from appliance.store.catalog import Catalog
from appliance.store.db import Database

EXIT_OK = 0
EXIT_SYSTEM_ERROR = 1
EXIT_USAGE = 2


@dataclass(frozen=True)
class HarnessOptions:
    scripts: tuple[Path, ...]
    custom_data: str = ""
    real_time: bool = False
    timeout: float = 3600.0


def _print_line(text: str, system: bool) -> None:
    stream = sys.stderr if system else sys.stdout
    stream.write(f"engine: {text}\n" if system else f"{text}\n")
    stream.flush()


async def drive_virtual(clock: VirtualClock, session: Session, deadline: float) -> None:
    """Run the virtual clock until the session ends; past `deadline` the session is terminated."""
    while not session.ended.done():
        await clock.settle()
        if session.ended.done():
            return
        upcoming = clock.next_time()
        if upcoming is not None and upcoming > deadline and not session.system_error:
            clock.jump_to(deadline)
            _timeout(session)
            continue
        if not await clock.advance():
            # Nothing scheduled and nothing held: only a real event can move the session on.
            await asyncio.wait([session.ended], timeout=0.05)


def _timeout(session: Session) -> None:
    _print_line("the session did not end within the --timeout; terminating it", True)
    session.terminate(system_error=True, reason="Timeout")


async def run(options: HarnessOptions) -> int:
    sources = []
    for path in options.scripts:
        try:
            source = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            print(f"appliance exec: cannot read {path}: {exc}", file=sys.stderr)
            return EXIT_USAGE
        try:
            check_script(str(path), source)
        except ScriptSyntaxError as exc:
            print(f"appliance exec: {exc}", file=sys.stderr)
            return EXIT_SYSTEM_ERROR
        sources.append(ScriptSource(str(path), source))

    loop = asyncio.get_running_loop()
    clock: Clock = RealClock(loop) if options.real_time else VirtualClock()
    db = Database(":memory:")
    application = Catalog(db, check_script).add_application("harness")
    engine = Engine(db, clock, workers=1, base_url="http://127.0.0.1", log_dir=None)
    try:
        spec = SessionSpec(
            scripts=tuple(sources),
            application_id=application.id,
            application_name=application.name,
            rule_name="harness",
            custom_data=options.custom_data,
            initiator="appliance exec",
        )
        session = engine.start_session(spec, sink=_print_line)
        deadline = clock.time() + options.timeout
        if isinstance(clock, VirtualClock):
            await drive_virtual(clock, session, deadline)
        else:
            try:
                await asyncio.wait_for(asyncio.shield(session.ended), options.timeout)
            except TimeoutError:
                _timeout(session)
                await session.ended
    finally:
        await engine.stop()
        db.close()
    return EXIT_SYSTEM_ERROR if session.system_error else EXIT_OK
