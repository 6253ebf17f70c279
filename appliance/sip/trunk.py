"""A SIP trunk: the ITSP, PBX or other appliance upstream, with its registration and keep-alives.

A trunk's host may be a name: it is resolved (RFC 3263) when the trunk starts and again whenever a
registration or keep-alive is due and the answer may have changed, so dialling never waits for DNS.
Calls from the trunk's addresses are accepted without a password.

Registration (RFC 3261 10.2) refreshes before it runs out; failures are retried with the back-off of
RFC 5626 4.5 (30 s doubling up to 10 minutes, each wait drawn from its upper half so many boxes behind
one outage do not come back in step). When the registrar sees us at another address than our Contact
(NAT: Via received/rport), the Contact moves there. OPTIONS every 30 s tell whether the trunk answers.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
from collections.abc import Callable
from typing import TYPE_CHECKING

from appliance.clock import Timer
from appliance.engine.calls import DialError
from appliance.legs.leg import Leg, Party
from appliance.lines.line import Originate
from appliance.sip.account import Account
from appliance.sip.dns import DnsError, SipResolver, as_transport
from appliance.sip.errors import SipParseError
from appliance.sip.headers import NameAddr, param_text
from appliance.sip.message import Request, Response
from appliance.sip.stack import new_tag
from appliance.sip.transport import Peer, is_ip
from appliance.sip.uri import SipUri
from appliance.store.sip import SipTrunk

if TYPE_CHECKING:
    from appliance.sip.useragent import UserAgent

log = logging.getLogger(__name__)

REGISTER_EXPIRES = 600  # what we ask for; the registrar may grant less
RETRY_BASE = 30.0
RETRY_MAX = 600.0
KEEPALIVE_SECONDS = 30.0
REFRESH_MARGIN = 0.5  # re-register when half the granted time is left...
REFRESH_AT_MOST = 60.0  # ...or a minute, whichever comes later


class Registration(enum.Enum):
    OFF = "off"  # the trunk does not register
    REGISTERING = "registering"
    REGISTERED = "registered"
    FAILED = "failed"  # retried after a back-off


class TrunkLine:
    """One trunk: `addresses` identify its calls; `via()` is where ours go; `status()` is for the panel."""

    kind = "sip-trunk"

    def __init__(self, trunk: SipTrunk, ua: UserAgent, resolver: SipResolver) -> None:
        self.trunk = trunk
        self.ua = ua
        self.resolver = resolver
        self.account = Account(trunk.auth_user or trunk.username, trunk.password) if trunk.username else None
        self.targets: list[Peer] = []
        self.addresses: set[str] = {trunk.host} if is_ip(trunk.host) else set()
        self.registration = Registration.REGISTERING if trunk.register else Registration.OFF
        self.detail = ""  # the last answer or problem, as the panel shows it
        self.registered_until: float | None = None
        self.reachable: bool | None = None
        self.rtt_ms: float | None = None
        self._failures = 0
        self._call_id = f"{new_tag()}{new_tag()}@voxgate"
        self._from_tag = new_tag()
        self._cseq = 0
        self._expires = REGISTER_EXPIRES
        self._public: tuple[str, int] | None = None  # our address as the registrar saw it, behind NAT
        self._register_timer: Timer | None = None
        self._keepalive_timer: Timer | None = None
        self._next_attempt: float | None = None
        self._resolving: asyncio.Task[None] | None = None
        self._stopped = False

    @property
    def name(self) -> str:
        return self.trunk.name

    @property
    def application_id(self) -> int | None:
        return self.trunk.application_id

    @property
    def rule_id(self) -> int | None:
        return self.trunk.rule_id

    @property
    def domain(self) -> str:
        """The trunk's SIP domain: the host as configured, for request URIs, To and From."""
        return self.trunk.host

    def start(self) -> None:
        self._refresh_targets(self._begin)

    def _begin(self) -> None:
        if self.trunk.register:
            self._register()
        self._keepalive()

    def via(self) -> list[Peer]:
        """Where calls to the trunk go, best first; empty while its name is not resolved."""
        return list(self.targets)

    # Resolution

    def _refresh_targets(self, then: Callable[[], None]) -> None:
        """Resolve the trunk's host (cached by TTL in the resolver), then call `then`."""
        if is_ip(self.trunk.host) or self.trunk.host == "localhost":
            host = "127.0.0.1" if self.trunk.host == "localhost" else self.trunk.host
            self.targets = [Peer(self.trunk.transport, host, self.trunk.port or self._default_port())]
            self.addresses = {host}
            then()
            return
        if self._resolving is not None and not self._resolving.done():
            return

        async def resolve() -> None:
            try:
                trunk = self.trunk
                found = await self.resolver.resolve(trunk.host, trunk.port, as_transport(trunk.transport))
            except DnsError as exc:
                if self._stopped:
                    return
                self.detail = str(exc)
                log.warning("trunk %s: %s", self.name, exc)
                if not self.targets:
                    self.reachable = False
                    self._failed(str(exc))
                    return
            else:
                if self._stopped:
                    return
                self.targets = [Peer(t.transport, t.host, t.port) for t in found]
                self.addresses = {t.host for t in found}
            then()

        self._resolving = asyncio.get_running_loop().create_task(resolve())

    def _default_port(self) -> int:
        return 5061 if self.trunk.transport == "tls" else 5060

    # Registration

    def _register(self, expires: int | None = None) -> None:
        if not self.targets:
            self._refresh_targets(self._register)
            return
        peer = self.targets[0]
        self._cseq += 1
        request = Request("REGISTER", SipUri("sip", None, self.domain, self.trunk.port))
        aor = SipUri("sip", self.trunk.username, self.domain)
        request.headers.set("from", NameAddr(aor, None, {"tag": self._from_tag}).serialize())
        request.headers.set("to", NameAddr(aor).serialize())
        request.headers.set("call-id", self._call_id)
        request.headers.set("cseq", f"{self._cseq} REGISTER")
        request.headers.set("contact", self._contact(peer))
        request.headers.set("expires", str(self._expires if expires is None else expires))
        if expires is None and self.registration is not Registration.REGISTERED:
            self.registration = Registration.REGISTERING
        self._send_register(request, peer, unregister=expires == 0)

    def _contact(self, peer: Peer) -> str:
        if self._public is None:
            return self.ua.contact_for(peer, self.trunk.username)
        host, port = self._public
        params: dict[str, str | None] = {"transport": peer.transport} if peer.transport != "udp" else {}
        return f"<{SipUri('sip', self.trunk.username, host, port, params).serialize()}>"

    def _send_register(self, request: Request, peer: Peer, unregister: bool = False) -> None:
        def answered(response: Response) -> None:
            if response.status < 200 or (self._stopped and not unregister):
                return
            self._cseq = max(self._cseq, response.cseq.seq)
            if unregister:
                if response.status in (401, 407) and self.account is not None:
                    again = self.account.retry(request, response)
                    if again is not None:
                        self._send_register(again, peer, unregister=True)
                return
            self._register_answered(request, response, peer)

        def failed(code: int, reason: str) -> None:
            if not unregister and not self._stopped:
                self._failed(f"{code} {reason}")

        self.ua.stack.send_request(request, peer, answered, failed)

    def _register_answered(self, request: Request, response: Response, peer: Peer) -> None:
        status = response.status
        if status in (401, 407) and self.account is not None:
            again = self.account.retry(request, response)
            if again is not None:
                self._cseq += 1
                self._send_register(again, peer)
                return
            self._failed(f"{status} {response.reason} (check the trunk's username and password)")
            return
        if status == 423:
            minimum = response.int_header("min-expires")
            if minimum is not None and self._expires < minimum <= 86400:
                self._expires = minimum
                self._register()
                return
        if status >= 300:
            self._failed(f"{status} {response.reason}")
            return
        if self._learn_public_address(response, peer):
            self._register()  # the Contact we registered is not where the registrar can reach us
            return
        granted = self._granted(response, request)
        if granted <= 0:
            self._failed("200 OK without our binding")
            return
        self._failures = 0
        self.registration = Registration.REGISTERED
        self.detail = f"{status} {response.reason}"
        now = self.ua.clock.monotonic()
        self.registered_until = now + granted
        refresh = max(granted * REFRESH_MARGIN, granted - REFRESH_AT_MOST)
        self._schedule_register(refresh)
        log.info("trunk %s registered for %d s", self.name, granted)

    def _granted(self, response: Response, request: Request) -> int:
        """The seconds the registrar granted our binding (its Contact's expires, else Expires)."""
        try:
            ours = NameAddr.parse(request.headers.get("contact") or "", "Contact").uri
            contacts = response.contacts
        except SipParseError:
            return 0
        default = response.int_header("expires")
        for contact in contacts:
            if contact.uri.matches(ours):
                value = contact.param("expires")
                if value is not None and value.isdigit():
                    return int(value)
                return default if default is not None else self._expires
        if not contacts and default is not None:
            return default  # a registrar that lists no bindings: trust Expires
        return 0 if contacts else self._expires

    def _learn_public_address(self, response: Response, peer: Peer) -> bool:
        """Take our address from the registrar's Via received/rport; True when it changed (RFC 3581)."""
        if peer.transport != "udp":
            return False
        try:
            via = response.top_via
        except SipParseError:
            return False
        received = param_text(via.params, "received") or ""
        rport = param_text(via.params, "rport") or ""
        if not received and not rport:
            return False
        local = self._public or self.ua.stack.local_address(peer.transport, peer.host)
        seen = (received or local[0], int(rport) if rport.isdigit() else local[1])
        if seen == local:
            return False
        log.info("trunk %s: the registrar sees us at %s:%d, not %s:%d", self.name, *seen, *local)
        self._public = seen
        return True

    def _failed(self, why: str) -> None:
        self.registration = Registration.FAILED if self.trunk.register else Registration.OFF
        self.registered_until = None
        self.detail = why
        if not self.trunk.register:
            return
        wait = min(RETRY_MAX, RETRY_BASE * 2**self._failures) * random.uniform(0.5, 1.0)
        self._failures += 1
        log.warning("trunk %s: registration failed (%s); next attempt in %.0f s", self.name, why, wait)
        self._schedule_register(wait)

    def _schedule_register(self, delay: float) -> None:
        if self._register_timer is not None:
            self._register_timer.cancel()
        self._next_attempt = self.ua.clock.monotonic() + delay
        self._register_timer = self.ua.clock.call_later(delay, lambda: self._refresh_targets(self._register))

    # Keep-alives

    def _keepalive(self) -> None:
        if self._stopped or not self.targets:
            return
        peer = self.targets[0]
        sent = self.ua.clock.monotonic()
        request = Request("OPTIONS", SipUri("sip", None, self.domain, self.trunk.port))
        address = NameAddr(SipUri("sip", self.trunk.username or "voxgate", self.domain))
        request.headers.set("from", NameAddr(address.uri, None, {"tag": new_tag()}).serialize())
        request.headers.set("to", address.serialize())
        request.headers.set("call-id", f"{new_tag()}{new_tag()}@voxgate")
        request.headers.set("cseq", "1 OPTIONS")

        def answered(response: Response) -> None:
            if response.status >= 200:  # any final answer (even 404 or 405) shows the trunk is there
                self._reachable(True, sent)

        def failed(code: int, reason: str) -> None:
            self._reachable(False, sent)

        self.ua.stack.send_request(request, peer, answered, failed)

    def _reachable(self, answered: bool, sent: float) -> None:
        if self._stopped:
            return
        if self.reachable is not None and answered != self.reachable:
            log.warning("trunk %s is %s", self.name, "reachable again" if answered else "not answering")
        self.reachable = answered
        self.rtt_ms = (self.ua.clock.monotonic() - sent) * 1000 if answered else None
        self._keepalive_timer = self.ua.clock.call_later(
            KEEPALIVE_SECONDS, lambda: self._refresh_targets(self._keepalive))

    # Calls

    def originate(self, number: str, options: Originate, params: dict[str, str | None] | None = None) -> Leg:
        """Call `number` through the trunk, with the script's credentials or else the trunk's account."""
        if not self.targets:
            raise DialError(503, f"Service Unavailable (trunk {self.name} is not resolved yet)")
        target = SipUri("sip", number or None, self.domain, self.trunk.port, dict(params or {}))
        return self.ua.originate(target, Party(options.caller, options.display_name), dict(options.headers),
                                 Account.given(options) or self.account, self.via(), self.domain, line=self.name)

    # Panel and shutdown

    def status(self) -> dict[str, object]:
        now = self.ua.clock.monotonic()
        return {
            "name": self.name,
            "kind": self.kind,
            "host": self.trunk.host,
            "registration": self.registration.value,
            "detail": self.detail,
            "expires_in": None if self.registered_until is None else max(0, round(self.registered_until - now)),
            "next_attempt_in": (None if self.registration is not Registration.FAILED or self._next_attempt is None
                                else max(0, round(self._next_attempt - now))),
            "reachable": self.reachable,
            "rtt_ms": None if self.rtt_ms is None else round(self.rtt_ms, 1),
        }

    def stop(self) -> None:
        """Cancel timers; a registered trunk unregisters (Expires: 0), without waiting for the answer."""
        self._stopped = True
        for timer in (self._register_timer, self._keepalive_timer):
            if timer is not None:
                timer.cancel()
        if self._resolving is not None:
            self._resolving.cancel()
        if self.registration is Registration.REGISTERED and self.targets:
            self._register(expires=0)
        self.registration = Registration.OFF if not self.trunk.register else Registration.REGISTERING
        self.registered_until = None
