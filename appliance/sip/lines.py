"""SIP lines: local users (phones that register here) and trunks, the registrar, and call routing.

This is the user agent's `Directory` and the engine's `Dialer` for SIP. An INVITE from a trunk's
address belongs to that trunk; any other INVITE must come from a local user who answers a digest
challenge (unknown users and wrong passwords get the same replies, and the guard locks an account
name after repeated failures). Accepted calls go to the router, which starts their session.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass
from typing import Protocol

from appliance.clock import Clock
from appliance.engine.calls import DialError
from appliance.legs.leg import Leg, Party
from appliance.lines.line import LineIdentity, Originate
from appliance.sip import digest
from appliance.sip.account import Account
from appliance.sip.call import SipCall
from appliance.sip.dns import DnsError, SipResolver, as_transport
from appliance.sip.errors import SipParseError
from appliance.sip.guard import SourceGuard
from appliance.sip.headers import NameAddr
from appliance.sip.message import Request, Response
from appliance.sip.transaction import ServerTransaction
from appliance.sip.transport import Peer, is_ip
from appliance.sip.trunk import TrunkLine
from appliance.sip.uri import SipUri
from appliance.sip.useragent import UserAgent
from appliance.store.sip import SipTrunk, SipUser

log = logging.getLogger(__name__)

DEFAULT_EXPIRES = 3600
MIN_EXPIRES = 60  # shorter registrations get 423 Interval Too Brief
MAX_EXPIRES = 7200
MAX_CONTACTS = 10  # bindings per user


@dataclass
class Binding:
    contact: NameAddr
    peer: Peer  # where the REGISTER came from: the phone's address behind NAT
    expires_at: float


class UserLine:
    """A local phone: reachable at its live registrations, its calls authenticated by its password."""

    kind = "sip-user"

    def __init__(self, user: SipUser, ua: UserAgent, bindings: list[Binding]) -> None:
        self.user = user
        self.ua = ua
        self.bindings = bindings

    @property
    def name(self) -> str:
        return self.user.name

    @property
    def application_id(self) -> int | None:
        return self.user.application_id

    @property
    def rule_id(self) -> int | None:
        return None

    def live(self) -> list[Binding]:
        now = self.ua.clock.monotonic()
        return [b for b in self.bindings if b.expires_at > now]

    def originate(self, destination: str, options: Originate) -> Leg:
        """Call the phone (its latest registration; `destination` is not used: the user is the address)."""
        live = self.live()
        if not live:
            raise DialError(480, "Temporarily Unavailable")
        binding = live[-1]
        return self.ua.originate(binding.contact.uri, _caller(options), dict(options.headers), Account.given(options),
                                 [binding.peer], line=self.name)

    def status(self) -> dict[str, object]:
        now = self.ua.clock.monotonic()
        return {
            "name": self.name,
            "kind": self.kind,
            "registered": bool(self.live()),
            "contacts": [{"uri": b.contact.uri.serialize(), "from": f"{b.peer.transport}:{b.peer.host}:{b.peer.port}",
                          "expires_in": round(b.expires_at - now)} for b in self.live()],
        }


SipLine = UserLine | TrunkLine


class IncomingCalls(Protocol):
    """Where accepted incoming calls go (the router, which starts their sessions)."""

    def route(self, line: LineIdentity, leg: Leg) -> None: ...


class SipLines:
    def __init__(self, clock: Clock, guard: SourceGuard, auth: digest.DigestServer, resolver: SipResolver) -> None:
        self.clock = clock
        self.guard = guard
        self.resolver = resolver
        self.auth = auth
        self.users: dict[str, UserLine] = {}
        self.trunks: dict[str, TrunkLine] = {}
        self.ua: UserAgent | None = None
        self.incoming_calls: IncomingCalls | None = None
        self._resolving: set[asyncio.Task[None]] = set()

    def load(self, users: list[SipUser], trunks: list[SipTrunk]) -> None:
        """Take the lines from the store: registrations of users that remain are kept, and trunks whose
        settings did not change go on as they are; the others stop (unregister) and start anew."""
        assert self.ua is not None
        old = self.users
        self.users = {u.name: UserLine(u, self.ua, old[u.name].bindings if u.name in old else []) for u in users}
        running, self.trunks = self.trunks, {}
        for trunk in trunks:
            line = running.pop(trunk.name, None)
            if line is None or line.trunk != trunk:
                if line is not None:
                    line.stop()
                line = TrunkLine(trunk, self.ua, self.resolver)
                line.start()
            self.trunks[trunk.name] = line
        for line in running.values():
            line.stop()

    def stop(self) -> None:
        for line in self.trunks.values():
            line.stop()

    # Directory

    def admit_invite(self, invite: Request, tx: ServerTransaction, peer: Peer) -> object | None:
        """A trunk's call (by its source address; the port decides between trunks on one host), else a user's."""
        from_host = [t for t in self.trunks.values() if peer.host in t.addresses]
        if from_host:
            return next((t for t in from_host if peer.port in {p.port for p in t.targets}), from_host[0])
        return self._authenticate(invite, tx, peer)

    def _authenticate(self, request: Request, tx: ServerTransaction, peer: Peer) -> UserLine | None:
        """The local user who sent `request`, or None after answering 401 or 403."""
        header = request.headers.get("authorization")
        if header is None:
            self._challenge(request, tx, stale=False)
            return None
        try:
            creds = digest.Credentials.parse(header)
        except SipParseError:
            tx.respond(self.ua_response(request, 400, "Bad Authorization"))
            return None
        name = creds.username
        line = self.users.get(name)
        locked = self.guard.accounts.locked(name)

        def lookup(username: str, family: str) -> str | None:
            if line is None or locked:
                return None
            return digest.ha1(username, self.auth.realm, line.user.password, family)

        verdict = self.auth.check(creds, request.method, lookup)
        if verdict is digest.Verdict.OK and line is not None:
            self.guard.accounts.succeeded(name)
            return line
        if verdict in (digest.Verdict.STALE, digest.Verdict.REPLAY):
            self._challenge(request, tx, stale=True)
            return None
        if verdict is digest.Verdict.WRONG:
            self.guard.accounts.failed(name, peer.host)
        tx.respond(self.ua_response(request, 403))
        return None

    def _challenge(self, request: Request, tx: ServerTransaction, stale: bool) -> None:
        response = self.ua_response(request, 401)
        for challenge in self.auth.challenges(stale=stale):
            response.headers.add("www-authenticate", challenge.serialize())
        tx.respond(response)

    def ua_response(self, request: Request, status: int, reason: str | None = None) -> Response:
        assert self.ua is not None
        response = self.ua.stack.response(request, status, reason)
        if request.to_addr.tag is None:
            response.headers.set("to", request.to_addr.with_tag(secrets.token_hex(6)).serialize())
        return response

    def incoming(self, line: object, call: SipCall) -> None:
        assert isinstance(line, (UserLine, TrunkLine))
        call.line = line.name
        if isinstance(line, TrunkLine) and line.trunk.register and call.callee.number == line.trunk.username:
            # A call to our registration's Contact: the number dialled (the DID) is in To.
            call.callee = Party(_user_of(call.callee.uri) or call.callee.number, "", call.callee.uri)
        if self.incoming_calls is None:
            call.reject(503)
            return
        self.incoming_calls.route(line, call)

    def register(self, request: Request, tx: ServerTransaction, peer: Peer) -> None:
        """The registrar (RFC 3261 section 10.3): bindings of a local user's contacts."""
        line = self._authenticate(request, tx, peer)
        if line is None:
            return
        to_user = request.to_addr.uri.user or ""
        if to_user != line.name:
            tx.respond(self.ua_response(request, 403, "Forbidden (To is another user)"))
            return
        now = self.clock.monotonic()
        line.bindings = [b for b in line.bindings if b.expires_at > now]
        had_bindings = bool(line.bindings)
        default = request.int_header("expires")
        contacts = request.contacts
        if any(c.wildcard for c in contacts):
            if len(contacts) > 1 or default != 0:
                tx.respond(self.ua_response(request, 400, "Bad Request (Contact: * needs Expires: 0)"))
                return
            line.bindings = []
        for contact in contacts if not any(c.wildcard for c in contacts) else []:
            expires_text = contact.param("expires")
            expires = int(expires_text) if expires_text and expires_text.isdigit() else default
            expires = DEFAULT_EXPIRES if expires is None else expires
            line.bindings = [b for b in line.bindings if not b.contact.uri.matches(contact.uri)]
            if expires == 0:
                continue
            if expires < MIN_EXPIRES:
                response = self.ua_response(request, 423)
                response.headers.set("min-expires", str(MIN_EXPIRES))
                tx.respond(response)
                return
            line.bindings.append(Binding(contact, peer, now + min(expires, MAX_EXPIRES)))
            line.bindings = line.bindings[-MAX_CONTACTS:]
        response = self.ua_response(request, 200)
        for b in line.bindings:
            response.headers.add("contact", NameAddr(b.contact.uri, None, {"expires": str(int(b.expires_at - now))})
                                 .serialize())
        tx.respond(response)
        if line.bindings:
            log.info("SIP user %s registered from %s", line.name, peer)
        elif had_bindings:
            log.info("SIP user %s unregistered", line.name)

    # Dialer

    def dial(self, kind: str, to: str, options: Originate, out_proxy: str) -> Leg:
        """An outgoing call: to a local user's phone, through a trunk (`sip:NUMBER@TRUNK-NAME`), or to any
        SIP URI; `out_proxy` (host[:port]) receives the INVITE instead of the URI's host."""
        assert self.ua is not None
        if kind == "user":
            line = self.users.get(to)
            if line is None:
                raise DialError(480, "Temporarily Unavailable")  # as for a user who is not registered
            return line.originate("", options)
        try:
            target = SipUri.parse(to if to.startswith(("sip:", "sips:", "tel:")) else f"sip:{to}")
            proxy = SipUri.parse(f"sip:{out_proxy}") if out_proxy else None
        except SipParseError as exc:
            raise DialError(404, f"Invalid destination ({exc})") from None
        trunk = self.trunks.get(target.host)
        if trunk is not None and proxy is None:
            return trunk.originate(target.user or "", options, target.params)
        caller, headers, account = _caller(options), dict(options.headers), Account.given(options)
        where = proxy or target
        host = "127.0.0.1" if where.host == "localhost" else where.host
        if is_ip(host):
            peer = Peer(where.transport, host, where.port or (5061 if where.transport == "tls" else 5060))
            return self.ua.originate(target, caller, headers, account, [peer], line=f"sip:{where.host}")
        call = self.ua.originate(target, caller, headers, account, line=f"sip:{where.host}")
        self._resolve_then_invite(call, where)
        return call

    def _resolve_then_invite(self, call: SipCall, where: SipUri) -> None:
        """Send a call's INVITE once the destination's name resolves (RFC 3263), or fail the call."""
        assert self.ua is not None
        ua = self.ua

        async def resolve() -> None:
            transport = where.transport if "transport" in where.params else None
            try:
                found = await self.resolver.resolve(where.host, where.port, as_transport(transport),
                                                    secure=where.scheme == "sips")
            except DnsError as exc:
                log.info("%s: %s", call.id, exc)
                call.abandon(404, "Not Found (the destination's host does not resolve)")
                return
            ua.send_invite(call, [Peer(t.transport, t.host, t.port) for t in found])

        task = asyncio.get_running_loop().create_task(resolve())
        self._resolving.add(task)
        task.add_done_callback(self._resolving.discard)


def _caller(options: Originate) -> Party:
    return Party(options.caller, options.display_name)


def _user_of(uri: str) -> str:
    try:
        return SipUri.parse(uri).user or ""
    except SipParseError:
        return ""
