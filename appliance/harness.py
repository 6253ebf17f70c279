"""`appliance exec`: run scenarios in one throwaway session, to test them offline.

With `--call` the session starts with a virtual phone calling it; every number the scenario dials
is another virtual phone (`--peer` says how each behaves), and `--record-to` keeps a WAV of what
each phone heard. Calls to `callConference` start the conference's session from the same scripts.

The session runs on a virtual clock unless --real-time is given: time jumps to the next timer when
nothing else is pending, so a 60 s idle timeout costs no wall time. Standard output carries only
the scenario's Logger.write / console.log lines, verbatim; everything else goes to standard error.
Exit status: 0 when the session ended normally, 1 when it ended with a system error (script error,
limit, timeout), 2 on a usage error.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from appliance.clock import Clock, RealClock, VirtualClock
from appliance.engine.engine import Engine, check_script
from appliance.engine.errors import ScriptSyntaxError
from appliance.engine.services import MediaServices
from appliance.engine.session import ScriptSource, Session
from appliance.legs.leg import Leg, Party
from appliance.legs.local import LocalCall, LocalLeg
from appliance.legs.virtual import Behaviour, VirtualPhone
from appliance.lines.line import Originate
from appliance.media.plane import MediaPlane
from appliance.media.ports import RtpPorts
from appliance.router import CallRouter, Route, Router
from appliance.store.catalog import Catalog
from appliance.store.db import Database
from appliance.store.secrets import SecretStore

EXIT_OK = 0
EXIT_SYSTEM_ERROR = 1
EXIT_USAGE = 2


@dataclass(frozen=True)
class HarnessOptions:
    scripts: tuple[Path, ...]
    custom_data: str = ""
    real_time: bool = False
    timeout: float = 3600.0
    call: str | None = None  # DEST[:CALLERID]: the session starts with a virtual phone calling DEST
    dtmf: str = ""  # keys the calling phone presses once connected
    peers: dict[str, Behaviour] = field(default_factory=dict)  # how dialled numbers behave (default: answer)
    record_to: Path | None = None  # a WAV per virtual phone of what it heard, and the session's recordings


def _print_line(text: str, system: bool) -> None:
    stream = sys.stderr if system else sys.stdout
    stream.write(f"engine: {text}\n" if system else f"{text}\n")
    stream.flush()


def _report(text: str) -> None:
    sys.stderr.write(f"phone: {text}\n")
    sys.stderr.flush()


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


class VirtualLines:
    """The harness's `Dialer`: every number a scenario dials is a virtual phone behaving as `--peer` says."""

    def __init__(self, plane: MediaPlane, clock: Clock, peers: dict[str, Behaviour]) -> None:
        self._plane = plane
        self._clock = clock
        self._peers = peers
        self.phones: list[VirtualPhone] = []

    def dial(self, kind: str, to: str, options: Originate, out_proxy: str) -> Leg:
        call = LocalCall(self._plane, self._clock, Party(options.caller, options.display_name),
                         Party(to, "", to if ":" in to else f"sip:{to}@virtual"), dict(options.headers), kind, kind)
        phone = self.add(to, call.callee)
        phone.behave(self._peers.get(to, Behaviour()))
        call.caller.line = "virtual"
        return call.caller

    def add(self, name: str, leg: LocalLeg) -> VirtualPhone:
        leg.line = "virtual"
        phone = VirtualPhone(name, leg, self._plane, self._clock, _report)
        self.phones.append(phone)
        return phone


def _scenario_names(paths: tuple[Path, ...]) -> list[str]:
    """Store names for the files: their base names, made unique and valid."""
    names: list[str] = []
    for path in paths:
        base = re.sub(r"[^A-Za-z0-9_.\-]", "_", path.name).lstrip(".-") or "scenario"
        name, n = base[:90], 1
        while name in names:
            n += 1
            name = f"{n}-{base}"[:90]
        names.append(name)
    return names


def _save_audio(lines: VirtualLines, records: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    for phone in lines.phones:
        name, n = re.sub(r"[^A-Za-z0-9_.+\-]", "_", phone.name) or "phone", 1
        while name in used:
            n += 1
            name = f"{phone.name}-{n}"
        used.add(name)
        phone.media.write_wav(target / f"{name}.wav")
    for recording in records.glob("*"):
        if recording.suffix in (".wav", ".mp3"):
            shutil.copy(recording, target / recording.name)


class OfflineBox:
    """An engine with virtual lines and a media plane, running given scripts as its only rule."""

    def __init__(self, db: Database, clock: Clock, engine: Engine, media: MediaServices, lines: VirtualLines,
                 route: Route) -> None:
        self.db = db
        self.clock = clock
        self.engine = engine
        self.media = media
        self.lines = lines
        self.route = route

    def start(self, scripts: tuple[ScriptSource, ...], custom_data: str = "") -> Session:
        spec = dataclasses.replace(self.route.spec(custom_data, {}, "appliance exec"), scripts=scripts)
        return self.engine.start_session(spec)

    def call_in(self, session: Session, call: str, keys: str = "") -> VirtualPhone:
        """A virtual phone calls the session: `call` is DEST[:CALLERID]; it presses `keys` once answered."""
        destination, _, callerid = call.partition(":")
        callerid = callerid or "anonymous"
        local = LocalCall(self.media.plane, self.clock, Party(callerid, "", f"sip:{callerid}@virtual"),
                          Party(destination, "", f"sip:{destination}@virtual"))
        caller = self.lines.add("caller", local.caller)
        caller.on_connected = lambda: caller.press(keys)
        local.callee.line = "virtual"
        session.attach_incoming(local.callee)
        return caller

    async def drive(self, session: Session, deadline: float) -> None:
        """Until the session ends, and the conference sessions it called into; past `deadline` (clock
        time) a session is terminated as a system error."""
        while True:
            if isinstance(self.clock, VirtualClock):
                await drive_virtual(self.clock, session, deadline)
            else:
                try:
                    await asyncio.wait_for(asyncio.shield(session.ended), max(0.0, deadline - self.clock.time()))
                except TimeoutError:
                    _timeout(session)
                    await session.ended
            if not self.engine.sessions:
                return
            session = next(iter(self.engine.sessions.values()))


@contextlib.asynccontextmanager
async def offline_box(sources: list[str], names: list[str], clock: Clock, peers: dict[str, Behaviour],
                      scratch: Path, db: Database | None = None) -> AsyncIterator[OfflineBox]:
    """An `OfflineBox` whose one rule (".*", so conference ids match too) runs `sources` stored as
    `names`; caches and recordings go to `scratch`. Everything is stopped on exit."""
    db = db or Database(":memory:")
    catalog = Catalog(db, check_script)
    application = catalog.add_application("harness")
    for name, source in zip(names, sources, strict=True):
        catalog.put_scenario(name, source)
    catalog.put_rule(application.id, "harness", ".*", names)
    router = Router(catalog, SecretStore(db))
    engine = Engine(db, clock, workers=1, base_url="http://127.0.0.1", log_dir=None)
    call_router = CallRouter(router, engine)
    engine.conferences = call_router
    media = MediaServices(clock, RtpPorts(), scratch)
    try:
        await media.start(engine)
        lines = VirtualLines(media.plane, clock, peers)
        engine.dialer = lines
        yield OfflineBox(db, clock, engine, media, lines, router.table.rule(rule_name="harness"))
    finally:
        await call_router.close()
        await engine.stop()
        await media.close()


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
        sources.append(source)

    clock: Clock = RealClock(asyncio.get_running_loop()) if options.real_time else VirtualClock()
    db = Database(":memory:")
    with tempfile.TemporaryDirectory(prefix="voxgate-exec-") as scratch:
        async with offline_box(sources, _scenario_names(options.scripts), clock, options.peers, Path(scratch),
                               db) as box:
            box.engine.sink = _print_line
            # The files by their paths, so errors name them as the user does.
            session = box.start(tuple(ScriptSource(str(path), source)
                                      for path, source in zip(options.scripts, sources, strict=True)),
                                options.custom_data)
            if options.call is not None:
                box.call_in(session, options.call, options.dtmf)
            await box.drive(session, clock.time() + options.timeout)
        db.close()
        if options.record_to is not None:  # now that every recording is finished
            _save_audio(box.lines, box.media.records.directory, options.record_to)
    return EXIT_SYSTEM_ERROR if session.system_error else EXIT_OK
