"""The SIP side of the daemon: guard, transports, stack, user agent and lines, started and stopped.

    INVITE bytes -> Transports -> SipStack (guard, parse, transactions) -> UserAgent (dialogs)
      -> SipLines.admit_invite (trunk or authenticated user) -> CallRouter -> a session's CallAlerting
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import secrets
from pathlib import Path

from appliance.clock import Clock
from appliance.config import SipSection, parse_address
from appliance.errors import ApplianceError, ConfigError
from appliance.media.plane import MediaPlane
from appliance.sip.digest import DigestServer, DigestUnsupported
from appliance.sip.dns import SipResolver
from appliance.sip.guard import GuardLimits, SourceGuard
from appliance.sip.lines import IncomingCalls, SipLines
from appliance.sip.stack import SipStack
from appliance.sip.trace import SipTrace
from appliance.sip.transport import Transports
from appliance.sip.useragent import UserAgent
from appliance.store.sip import SipLineStore
from appliance.tls import server_context

log = logging.getLogger(__name__)

SECRET_FILE = "sip-digest.secret"


class SipService:
    def __init__(self, config: SipSection, clock: Clock, store: SipLineStore, data_dir: Path, realm: str,
                 plane: MediaPlane) -> None:
        try:
            trusted = [ipaddress.ip_network(n, strict=False) for n in config.trusted]
        except ValueError as exc:
            raise ConfigError(f"[sip].trusted: {exc}") from None
        self.config = config
        self.store = store
        self.data_dir = data_dir
        self.name = realm
        self.guard = SourceGuard(GuardLimits(
            requests_per_window=config.flood_requests, window_seconds=config.flood_seconds,
            ban_seconds=config.ban_seconds, register_failures=config.register_failures,
            lockout_seconds=config.lockout_seconds, trusted=trusted,
        ), clock)
        self.stack = SipStack(clock, self.guard)
        try:
            auth = DigestServer(realm, _secret(data_dir / SECRET_FILE), clock.time, algorithms=config.digest_algorithms)
        except DigestUnsupported as exc:
            raise ConfigError(f"[sip].digest_algorithms: {exc}") from None
        self.lines = SipLines(clock, self.guard, auth, SipResolver())
        self.ua = UserAgent(self.stack, clock, plane, self.lines)
        self.lines.ua = self.ua
        self.transports: Transports = self.stack.transports
        self.trace = SipTrace(clock.time)  # the recent messages by Call-ID (GetSipTrace)
        self.transports.trace = self.trace

    async def start(self, incoming: IncomingCalls) -> None:
        self.lines.incoming_calls = incoming
        host, port = parse_address(self.config.listen, "--sip")
        tls = server_context(self.data_dir / "tls", self.name) if self.config.tls else None
        try:
            await self.transports.listen(host, port, tls)
        except OSError as exc:
            raise ApplianceError(f"cannot listen for SIP on {self.config.listen}: {exc.strerror or exc}") from None
        await self.reload()  # after listening: trunks start registering at once

    async def reload(self) -> None:
        """Take SIP users (the active ones) and trunks as the store now has them."""
        users, trunks = await self.store.db.call(lambda: (self.store.users(), self.store.trunks()))
        self.lines.load([u for u in users if u.active], trunks)

    async def close(self) -> None:
        self.ua.hangup_all()
        self.lines.stop()
        await asyncio.sleep(0.05)  # the BYEs and un-REGISTERs just sent leave before the sockets close
        self.stack.end_all()
        await self.transports.close()


def _secret(path: Path) -> bytes:
    """The digest nonce secret, kept so nonces issued before a restart still verify."""
    if path.exists():
        data = path.read_bytes()
        if len(data) >= 32:
            return data
    data = secrets.token_bytes(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_bytes(data)
    return data
