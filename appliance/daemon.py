"""`appliance run`: the daemon. Opens the store, loads voxfiles, starts the engine and the HTTP server,
tells systemd it is ready, and shuts everything down in order on SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import socket
import ssl
import sys
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from appliance import tls, voxfiles
from appliance.clock import RealClock
from appliance.config import Config, parse_address, parse_port_range
from appliance.discovery import Announcer
from appliance.engine.engine import Engine, check_script
from appliance.engine.services import MediaServices
from appliance.errors import ApplianceError
from appliance.lines.dialer import LineDialer
from appliance.lines.outbound import OutboundRoutes
from appliance.logs import setup_logging
from appliance.media.ports import RtpPorts
from appliance.media.recording import RecordingStore
from appliance.router import CallRouter, Router
from appliance.sip.service import SipService
from appliance.store.admins import AdminUsers
from appliance.store.apikeys import ApiKeys
from appliance.store.audit import AuditLog
from appliance.store.catalog import Catalog
from appliance.store.db import Database
from appliance.store.kv import KeyValueStore
from appliance.store.routes import OutboundRouteStore
from appliance.store.secrets import SecretStore
from appliance.store.settings import SettingsStore
from appliance.store.sip import SipLineStore, new_password
from appliance.supervisor.metrics import Metrics, engine_counts
from appliance.supervisor.notify import Watchdog, notify
from appliance.tasks import TaskSet
from appliance.web.api import Api, Reload
from appliance.web.platform import PlatformApi, RateLimits
from appliance.web.server import make_app

log = logging.getLogger(__name__)

DB_FILE = "voxgate.db"
KV_PURGE_SECONDS = 3600.0  # also how often expired recordings are looked for

def _advertised_base(config: Config, host: str, port: int) -> str:
    if config.http.public_url:
        return config.http.public_url.rstrip("/")
    if host in ("0.0.0.0", "::"):
        host = socket.gethostname()
    return f"http://{host}:{port}" if ":" not in host else f"http://[{host}]:{port}"


async def _purge_kv(db: Database, clock: RealClock) -> None:
    kv = KeyValueStore(db)
    while True:
        removed = await db.call(kv.purge_expired, clock.time())
        if removed:
            log.info("key-value storage: %d expired keys removed", removed)
        await asyncio.sleep(KV_PURGE_SECONDS)


async def _expire_recordings(store: RecordingStore, clock: RealClock) -> None:
    """Recordings past their `expire` retention are deleted, checked hourly (a local policy)."""
    while True:
        removed = await asyncio.to_thread(store.expire, clock.time())
        if removed:
            log.info("recordings: %d expired recordings deleted", len(removed))
        await asyncio.sleep(KV_PURGE_SECONDS)


SIM_PHONE = "100"


class Reloader:
    """Makes the running box take what the store now holds: on SIGHUP (after `appliance sip ...` or
    `appliance route ...`) and after management API changes."""

    def __init__(self, router: Router, sip: SipService, dialer: LineDialer, routes: OutboundRouteStore) -> None:
        self.router = router
        self.sip = sip
        self.dialer = dialer
        self.routes = routes

    async def reload(self, what: Reload) -> None:
        if what is Reload.ROUTING:
            await self.router.reload()
        elif what is Reload.LINES:
            await self.sip.reload()
        else:
            self.dialer.routes.load(await self.routes.db.call(self.routes.list))

    async def all_lines(self) -> None:
        try:
            await self.reload(Reload.LINES)
            await self.reload(Reload.OUTBOUND)
        except ApplianceError as exc:
            log.error("cannot reload the lines: %s", exc)
            return
        log.info("lines reloaded: %d SIP users, %d trunks, %d outbound routes", len(self.sip.lines.users),
                 len(self.sip.lines.trunks), self.dialer.routes.count)


def _sim_phone(store: SipLineStore) -> None:
    """Simulation mode comes up with one local SIP user to register a softphone as."""
    user = next((u for u in store.users() if u.name == SIM_PHONE), None) or store.add_user(SIM_PHONE, new_password())
    print(f"SIP user {user.name}, password {user.password}", file=sys.stderr, flush=True)


def _health(engine: Engine, sip: SipService, media: MediaServices) -> Callable[[], dict[str, object]]:
    def health() -> dict[str, object]:
        return {
            "sessions": len(engine.sessions),
            "session_calls": sum(len(session.legs) for session in engine.sessions.values()),
            "sip_calls": len(sip.ua.calls),
            "media": media.plane.health,
        }

    return health


def _line_status(sip: SipService) -> list[dict[str, object]]:
    return [u.status() for u in sip.lines.users.values()] + [t.status() for t in sip.lines.trunks.values()]


async def _listen(runner: web.AppRunner, address: str, what: str, ssl_context: ssl.SSLContext | None = None) -> int:
    """Serve the web application on ADDR:PORT; the port it listens on."""
    host, port = parse_address(address, what)
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
    try:
        await site.start()
    except OSError as exc:
        raise ApplianceError(f"cannot listen for {what} on {address}: {exc.strerror or exc}") from None
    return port


async def run(config: Config, *, data_dir: Path, sim: bool, voxfiles_dir: Path | None = None) -> int:
    system_log = setup_logging(config.log.level)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (start-up, before serving anything)
    except OSError as exc:
        raise ApplianceError(f"cannot create the data directory {data_dir}: {exc}") from None
    db = Database(data_dir / DB_FILE, account_name=config.appliance.name)
    name = SettingsStore(db, config.appliance.name).box_name()  # as set in the panel, else the config's
    tasks = TaskSet("daemon")
    watchdog = Watchdog()
    runner: web.AppRunner | None = None
    engine: Engine | None = None
    sip: SipService | None = None
    media: MediaServices | None = None
    call_router: CallRouter | None = None
    dialer: LineDialer | None = None
    announcer: Announcer | None = None
    metrics: Metrics | None = None
    try:
        catalog = Catalog(db, check_script)
        if voxfiles_dir is not None:
            files = voxfiles.load(voxfiles_dir, catalog)
            rules = sum(len(a.rules) for a in files.applications)
            log.info("voxfiles %s: %d applications, %d rules, %d scenarios loaded",
                     voxfiles_dir, len(files.applications), rules, len(files.scenarios))
        loop = asyncio.get_running_loop()
        clock = RealClock(loop)
        host, port = parse_address(config.http.listen, "--http")
        engine = Engine(
            db, clock, workers=config.engine.workers, base_url=_advertised_base(config, host, port),
            log_dir=data_dir / "logs" / "sessions",
        )
        router = Router(catalog, SecretStore(db))
        sip_store = SipLineStore(db)
        if sim:
            _sim_phone(sip_store)
        media = MediaServices(clock, RtpPorts(*parse_port_range(config.sip.rtp_ports, "[sip].rtp_ports")), data_dir)
        await media.start(engine)
        sip = SipService(config.sip, clock, sip_store, data_dir, name, media.plane)
        route_store = OutboundRouteStore(db)
        dialer = LineDialer(sip.lines, OutboundRoutes(route_store.list()))
        engine.dialer = dialer
        call_router = CallRouter(router, engine)
        engine.conferences = call_router
        await sip.start(call_router)
        reloader = Reloader(router, sip, dialer, route_store)
        # Handlers first: from the moment the port is open, SIGTERM must mean a clean stop.
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: tasks.spawn(reloader.all_lines()))
        metrics = Metrics(engine_counts(engine, media.plane), sample_seconds=config.monitor.sample_seconds)
        metrics.start()
        api = Api(
            db=db, account_name=name, catalog=catalog, router=router, engine=engine,
            keys=ApiKeys(db), admins=AdminUsers(db), audit=AuditLog(db), kv=engine.kv, secrets=SecretStore(db),
            sip_lines=sip_store,
            outbound=route_store, history=engine.history, recordings=media.records,
            health=_health(engine, sip, media), line_status=lambda: _line_status(sip), reload=reloader.reload,
            metrics=metrics, sip_trace=sip.trace, system_log=system_log, data_dir=data_dir,
            apply_system_settings=config.appliance.apply_system_settings,
        )
        limits = config.api
        platform = PlatformApi(api, RateLimits(limits.rate_per_key, limits.burst_per_key, limits.rate_per_source,
                                               limits.burst_per_source, limits.auth_failures_per_minute))
        runner = web.AppRunner(make_app(engine, platform), access_log=None)
        await runner.setup()
        await _listen(runner, config.http.listen, "HTTP")
        https_port: int | None = None
        cert = tls.ensure_certificate(data_dir / "tls", name)
        fingerprint = await asyncio.to_thread(tls.fingerprint, cert)
        if config.http.https_listen:
            https_port = await _listen(runner, config.http.https_listen, "HTTPS",
                                       tls.server_context(data_dir / "tls", name))
            log.info("HTTPS on %s, certificate %s (%s)", config.http.https_listen, fingerprint, cert)
        if config.discovery.enabled:
            announcer = Announcer(name, data_dir, https_port=https_port, http_port=port,
                                  fingerprint=fingerprint, interfaces=config.discovery.interfaces)
            await announcer.start()
        tasks.spawn(_purge_kv(db, clock))
        tasks.spawn(_expire_recordings(media.records, clock))
        gc.freeze()  # start-up objects never need collecting: keeps later GC passes short
        mode = "simulation mode" if sim else "hardware mode"
        notify(f"READY=1\nSTATUS=running ({mode}), HTTP on {config.http.listen}")
        watchdog.start(media.plane.ticking)
        log.info("VoxGate ready (%s): HTTP on %s, HTTPS on %s, SIP on %s, data in %s", mode, config.http.listen,
                 config.http.https_listen or "-", config.sip.listen, data_dir)
        await stop.wait()
        log.info("stopping")
        notify("STOPPING=1")
        return 0
    finally:
        if announcer is not None:
            await announcer.close()
        await watchdog.close()
        if metrics is not None:
            await metrics.close()
        await tasks.close()
        if dialer is not None:
            dialer.close()  # the routes' call-duration timers
        if sip is not None:
            await sip.close()
        if media is not None:
            await media.close()
        if call_router is not None:
            await call_router.close()
        if engine is not None:
            await engine.stop()
        if runner is not None:
            await runner.cleanup()
        db.close()
